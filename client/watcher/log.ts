/**
 * The watcher's and scheduler's log: one line per event, `<time> <level> <component>: <message>`
 * and the fields as JSON. Never given a secret (the bind password stays in `Secret`, which prints
 * as `***` even if one slipped in).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Log {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function consoleLog(component: string, minimum: LogLevel = 'info', write: (line: string) => void = (l) => console.log(l)): Log {
  const emit = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < RANK[minimum]) return;
    const extra = fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
    write(`${new Date().toISOString()} ${level} ${component}: ${message}${extra}`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
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
