/**
 * The product's log for one process: every worker, workflow and activity line (through the
 * Temporal SDK's logger, see runtime.ts) and the watcher's and scheduler's (client/watcher/log.ts)
 * go through `logEvent`, one line per event on stdout, formatted by core/log-format.ts.
 *
 * A process has one log configuration, set once where it starts (`configureLogging` from the
 * global INI: LOG_FORMAT, the LOG_* switches, [Service] SYSLOG); until then the defaults apply
 * (json, info/warning/err on, debug off). KVM_BACKUP_LOG_LEVEL=debug|info|warn|error replaces the
 * switches with a threshold, for a debugging run without editing the INI (the test runner uses
 * warn). The SDK's own worker/core lines stay at KVM_BACKUP_SDK_LOG_LEVEL (default WARN): its INFO
 * lines (worker state changes, bundling) would drown the product's events.
 */
import { fstatSync } from 'node:fs';
import type { LogLevel as TemporalLevel, LogMetadata, Logger } from '@temporalio/common';
import { LogTimestamp } from '@temporalio/worker';
import {
  atLeast, fieldsFromTemporalMeta, formatJournal, formatJson, formatSyslog, levelOfTemporal, LOG_LEVELS, severityOf, switchedOn,
  type LogEvent, type LogFormat, type LogLevel, type LogSwitches,
} from '../core/log-format.js';

export interface LogSettings {
  format: LogFormat;
  switches: LogSwitches;
  /** [Service] SYSLOG. */
  tag: string;
  /** Threshold for the SDK's own lines (components `worker` and `core`). */
  sdkLevel: LogLevel;
  /** stdout is connected to journald: syslog lines carry the journal's level prefix instead. */
  journal: boolean;
  write: (line: string) => void;
}

const DEFAULT_SWITCHES: LogSwitches = { debug: false, info: true, warning: true, err: true };

function envLevel(name: string): LogLevel | undefined {
  const v = process.env[name]?.toLowerCase();
  if (!v) return undefined;
  const level = v === 'warning' ? 'warn' : v === 'err' ? 'error' : v === 'trace' ? 'debug' : v;
  return (LOG_LEVELS as readonly string[]).includes(level) ? (level as LogLevel) : undefined;
}

function thresholdSwitches(minimum: LogLevel): LogSwitches {
  return { debug: atLeast('debug', minimum), info: atLeast('info', minimum), warning: atLeast('warn', minimum), err: true };
}

/**
 * systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected to the journal; it applies
 * only if stdout is still that stream (not redirected by a wrapper).
 */
export function stdoutIsJournal(env: Record<string, string | undefined> = process.env): boolean {
  const stream = env['JOURNAL_STREAM'];
  if (!stream) return false;
  try {
    const st = fstatSync(1);
    return stream === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

let stdoutGuarded = false;

/** A closed stdout (journald restarted, the reading end of a pipe gone) must not crash a worker mid-backup. */
function writeStdout(line: string): void {
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
  process.stdout.write(`${line}\n`);
}

function defaults(): LogSettings {
  const forced = envLevel('KVM_BACKUP_LOG_LEVEL');
  return {
    format: 'json',
    switches: forced ? thresholdSwitches(forced) : DEFAULT_SWITCHES,
    tag: 'Backup-KVM',
    sdkLevel: envLevel('KVM_BACKUP_SDK_LOG_LEVEL') ?? 'warn',
    journal: stdoutIsJournal(),
    write: writeStdout,
  };
}

let settings: LogSettings = defaults();

/** The process's log configuration from the global INI (already validated by core/global-config.ts). */
export function configureLogging(
  config: { log: LogSwitches & { format: LogFormat }; service: { syslogTag: string } },
  overrides: Partial<LogSettings> = {},
): void {
  const base = defaults();
  const forced = envLevel('KVM_BACKUP_LOG_LEVEL');
  const { format, ...switches } = config.log;
  settings = { ...base, format, switches: forced ? thresholdSwitches(forced) : switches, tag: config.service.syslogTag, ...overrides };
}

/** Back to the defaults (tests). */
export function resetLogging(overrides: Partial<LogSettings> = {}): void {
  settings = { ...defaults(), ...overrides };
}

export function formatLine(e: LogEvent, s: Pick<LogSettings, 'format' | 'tag' | 'journal'> = settings): string {
  // on the journal, JSON lines get the level prefix too, so `journalctl -p warning` works for them
  if (s.format === 'json') return s.journal ? `<${severityOf(e.level)}>${formatJson(e)}` : formatJson(e);
  return s.journal ? formatJournal(e) : formatSyslog(e, { tag: s.tag, pid: process.pid });
}

export interface EventOptions {
  time?: Date;
  /** The caller asked for this level explicitly (the watcher's --verbose): printed even if its switch is off. */
  force?: boolean;
  /** Another destination for this line (a test's capture); formatting and filtering stay the same. */
  write?: (line: string) => void;
}

/** Writes one event if its level is switched on. Never throws: a log line is not worth a failed backup. */
export function logEvent(level: LogLevel, msg: string, fields?: Record<string, unknown>, o: EventOptions = {}): void {
  if (!o.force && !switchedOn(level, settings.switches)) return;
  try {
    (o.write ?? settings.write)(formatLine({ time: o.time ?? new Date(), level, msg, ...(fields ? { fields } : {}) }));
  } catch {
    // stdout closed (EPIPE) or a broken formatter: nothing sensible to do with a log line
  }
}

export interface ProductLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A log whose lines all carry `context` (e.g. `{ component: 'worker', node }`). */
export function productLog(context: Record<string, unknown> = {}): ProductLog {
  const at = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => logEvent(level, msg, { ...context, ...fields });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const SDK_COMPONENTS = new Set(['worker', 'core']);

/** Nanoseconds since the epoch the SDK stamps on forwarded core and workflow lines. */
function timeOf(meta: LogMetadata | undefined): Date | undefined {
  const ns = (meta as Record<symbol, unknown> | undefined)?.[LogTimestamp];
  return typeof ns === 'bigint' ? new Date(Number(ns / 1_000_000n)) : undefined;
}

/**
 * The Temporal SDK's logger (Runtime.install): workflow and activity lines follow the LOG_*
 * switches; the SDK's own (components worker and core, or none) also need the SDK threshold.
 */
export function temporalLogger(): Logger {
  const log = (level: TemporalLevel, message: string, meta?: LogMetadata) => {
    const ours = levelOfTemporal(level);
    const component = (meta as { sdkComponent?: unknown } | undefined)?.sdkComponent;
    const fromSdk = component === undefined || SDK_COMPONENTS.has(String(component));
    if (fromSdk && !atLeast(ours, settings.sdkLevel)) return;
    const time = timeOf(meta);
    // SDK lines below warn only get here when KVM_BACKUP_SDK_LOG_LEVEL asked for them: shown whatever LOG_* say
    const force = fromSdk && !atLeast(ours, 'warn');
    logEvent(ours, message, fieldsFromTemporalMeta(meta), { force, ...(time ? { time } : {}) });
  };
  return {
    log,
    trace: (m, meta) => log('TRACE', m, meta),
    debug: (m, meta) => log('DEBUG', m, meta),
    info: (m, meta) => log('INFO', m, meta),
    warn: (m, meta) => log('WARN', m, meta),
    error: (m, meta) => log('ERROR', m, meta),
  };
}
