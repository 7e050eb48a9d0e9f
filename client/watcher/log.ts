/**
 * The watcher's and scheduler's log: one line per event through the product's log
 * (workers/logging.ts: JSON or syslog lines, the LOG_* switches), with `component` set. Never given
 * a secret (the bind password stays in `Secret`, which prints as `***` even if one slipped in).
 */
import { atLeast, type LogLevel } from '../../core/log-format.js';
import { subjectOf } from '../../core/log-subject.js';
import { logEvent } from '../../workers/logging.js';

export type { LogLevel };

export interface Log {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * `minimum` drops the levels below it; `debug` (the watcher's --verbose) also shows debug lines
 * when LOG_DEBUG is off. `write` sends the formatted lines elsewhere (tests).
 */
export function consoleLog(component: string, minimum: LogLevel = 'info', write?: (line: string) => void): Log {
  const emit = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (!atLeast(level, minimum)) return;
    logEvent(level, message, { component, ...withSubject(fields) }, { force: level === 'debug' && minimum === 'debug', ...(write ? { write } : {}) });
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A leaf's `dn` becomes `vm` and `leafDn`, the names every other log line uses. */
function withSubject(fields: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (typeof fields?.['dn'] !== 'string') return fields;
  const subject = subjectOf([fields['dn']]);
  if (!subject.leafDn) return fields;
  const { dn: _dn, ...rest } = fields;
  return { ...subject, ...rest };
}

/** A log that keeps its lines (tests read them) and passes them on. */
export function recordingLog(inner?: Log): Log & { lines: Array<{ level: LogLevel; message: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ level: LogLevel; message: string; fields?: Record<string, unknown> }> = [];
  const keep = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, ...(fields ? { fields } : {}) });
    inner?.[level](message, fields);
  };
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
