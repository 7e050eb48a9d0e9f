/**
 * How the product writes one log event as one line: pure functions, shared by the workers (the
 * Temporal SDK's logger, workflow and activity logs) and the watcher/scheduler.
 *
 *   json     {"ts":"…","level":"info","msg":"…","vm":"…","leafDn":"…","workflowId":"…",…}
 *   syslog   <30>Backup-KVM[4711]: msg vm=… leafDn="…" workflowId=…   (the classic BSD line, RFC 3164
 *            as sent to /dev/log, without the timestamp and host the syslog daemon adds)
 *   journal  <6>msg vm=… …   (sd-daemon(3) prefix: journald takes the level from it, the tag and pid
 *            from the unit's SyslogIdentifier; chosen by the writer when stdout is the journal)
 *
 * Fields go through JSON serialisation first, always: a `Secret` turns into "***" by its own
 * toJSON, an Error into its message. No formatter looks at a value any other way, so none can
 * print what a Secret holds.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export type LogFormat = 'json' | 'syslog';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'syslog'];

/** The seed's [Global] LOG_DEBUG / LOG_INFO / LOG_WARNING / LOG_ERR: one switch per level, not a threshold. */
export interface LogSwitches {
  debug: boolean;
  info: boolean;
  warning: boolean;
  err: boolean;
}

export interface LogEvent {
  time: Date;
  level: LogLevel;
  msg: string;
  fields?: Record<string, unknown>;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function atLeast(level: LogLevel, minimum: LogLevel): boolean {
  return RANK[level] >= RANK[minimum];
}

export function switchedOn(level: LogLevel, switches: LogSwitches): boolean {
  switch (level) {
    case 'debug':
      return switches.debug;
    case 'info':
      return switches.info;
    case 'warn':
      return switches.warning;
    case 'error':
      return switches.err;
  }
}

/** syslog severities (RFC 5424 §6.2.1): err 3, warning 4, info 6, debug 7. */
export function severityOf(level: LogLevel): number {
  return { debug: 7, info: 6, warn: 4, error: 3 }[level];
}

/** Facility `daemon` (3), as a system service logs. */
export const FACILITY_DAEMON = 3;

/** Context fields first, in this order, so lines of one VM or workflow read alike; the rest follow. */
const CONTEXT_ORDER = ['component', 'node', 'vm', 'leafDn', 'operation', 'workflowId', 'runId', 'workflow', 'activity', 'attempt', 'taskQueue', 'code'];

/**
 * The fields as plain JSON values, context fields first. Every value passes JSON.stringify, so
 * toJSON methods (Secret → "***", Date → ISO) apply; Errors become their message (and code);
 * a value that cannot be serialised (a cycle) is replaced, never thrown.
 */
export function plainFields(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!fields) return out;
  const keys = Object.keys(fields);
  const ordered = [...CONTEXT_ORDER.filter((k) => keys.includes(k)), ...keys.filter((k) => !CONTEXT_ORDER.includes(k))];
  for (const key of ordered) {
    const value = fields[key];
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
    try {
      const text = JSON.stringify(value, replacer);
      if (text !== undefined) out[key] = JSON.parse(text) as unknown;
    } catch {
      out[key] = '[not serialisable]';
    }
  }
  return out;
}

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? value.message : { message: value.message, code };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** A message on one line: a newline inside would start a forged event in line-based collectors. */
function oneLine(text: string): string {
  return String(text).replace(/\r?\n/g, '\\n');
}

export function formatJson(e: LogEvent): string {
  // JSON.stringify escapes newlines itself; msg is forced to a string (a Secret prints ***)
  return JSON.stringify({ ts: e.time.toISOString(), level: e.level, msg: String(e.msg), ...plainFields(e.fields) });
}

/** `key=value` pairs, values quoted (JSON string syntax) when they hold spaces, quotes or `=`. */
export function formatPairs(fields: Record<string, unknown> | undefined): string {
  return Object.entries(plainFields(fields))
    .map(([k, v]) => {
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      return `${k}=${text === '' || /[\s"=\\]/.test(text) ? JSON.stringify(text) : text}`;
    })
    .join(' ');
}

function body(e: LogEvent): string {
  const pairs = formatPairs(e.fields);
  return pairs ? `${oneLine(e.msg)} ${pairs}` : oneLine(e.msg);
}

export interface SyslogOptions {
  /** [Service] SYSLOG, the seed's `Backup-KVM`. */
  tag: string;
  pid: number;
  facility?: number;
}

export function formatSyslog(e: LogEvent, o: SyslogOptions): string {
  const pri = (o.facility ?? FACILITY_DAEMON) * 8 + severityOf(e.level);
  return `<${pri}>${o.tag}[${o.pid}]: ${body(e)}`;
}

/** For stdout connected to journald: it reads a `<0>`…`<7>` prefix only (no facility). */
export function formatJournal(e: LogEvent): string {
  return `<${severityOf(e.level)}>${body(e)}`;
}

/** A syslog tag: printable ASCII without the characters that end a tag (`[`, `]`, `:`), at most 48. */
export function isSyslogTag(tag: string): boolean {
  return /^[!-9;-Z\\^-~]{1,48}$/.test(tag);
}

// ---- the Temporal SDK's log calls -------------------------------------------------------------

export type TemporalLogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export function levelOfTemporal(level: TemporalLogLevel): LogLevel {
  return level === 'TRACE' || level === 'DEBUG' ? 'debug' : level === 'INFO' ? 'info' : level === 'WARN' ? 'warn' : 'error';
}

/** The SDK's meta keys under our names; keys that only add noise (task token, namespace) are dropped. */
const TEMPORAL_META: Record<string, string | null> = {
  sdkComponent: 'component',
  workflowRunId: 'runId',
  workflowType: 'workflow',
  activityType: 'activity',
  taskToken: null,
  namespace: null,
  isLocal: null,
  activityId: null,
  activityRunId: null,
};

/**
 * Fields of an SDK log call (workflow, activity, worker or core), renamed: `workflowRunId` →
 * `runId`, `activityType` → `activity`, `sdkComponent` → `component` … Our own fields pass as they are.
 */
export function fieldsFromTemporalMeta(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!meta) return out;
  for (const [key, value] of Object.entries(meta)) {
    const name = key in TEMPORAL_META ? TEMPORAL_META[key] : key;
    if (name && !(name in out)) out[name] = value;
  }
  return out;
}
