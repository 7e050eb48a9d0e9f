/**
 * restic as this product drives it (docs/repository.md): the arguments that name a repository
 * (local, or SFTP through `-o sftp.command` built from an argument array), the tags of a snapshot,
 * the JSON lines restic prints with `--json`, and which of the product's exit codes a restic failure
 * is. Pure: adapters/host/restic.ts runs the commands.
 *
 * restic 0.19.1 (built from its Go module, scripts/install-restic.sh): exit codes 10 (no repository),
 * 11 (lock failed), 12 (wrong password) and the JSON `exit_error` line exist since 0.17; `check` of
 * chosen snapshots only since 0.19; Debian 12's 0.14.0 has none of them.
 */
import { Code } from './exit-codes.js';
import type { ResticRepository } from './backup-root.js';

/** The pinned restic release (scripts/install-restic.sh builds it; `doctor` compares). */
export const RESTIC_VERSION = '0.19.1';

/** How this node runs restic ([Backup] RESTIC_* keys, docs/configuration.md). */
export interface ResticSettings {
  /** The restic program ([Backup] RESTIC_BINARY, default `restic` on PATH). */
  binary: string;
  /** File holding the repository password ([Backup] RESTIC_PASSWORD_FILE); read by restic itself, never by us. */
  passwordFile?: string;
  /** SFTP: the SSH private key ([Backup] RESTIC_SSH_IDENTITY_FILE); absent = ssh's defaults. */
  sshIdentityFile?: string;
  /** SFTP: the known_hosts file holding the server's key ([Backup] RESTIC_SSH_KNOWN_HOSTS); absent = ssh's defaults. */
  sshKnownHostsFile?: string;
  /** restic's cache directory ([Backup] RESTIC_CACHE_DIR); absent = restic's default (~/.cache/restic). */
  cacheDir?: string;
  /** KiB/s restic may send to and read from the repository ([Backup] RESTIC_LIMIT_KIB), 0 = no limit: off-site links. */
  limitKiB: number;
  /** `verify`: the share of the snapshot's data `restic check` reads back, e.g. `100%` or `10%` ([Backup] RESTIC_VERIFY_READ_DATA). */
  verifyReadData: string;
}

/** Every tag of a snapshot is `<key>=<value>`, plus this marker tag; values are validated names (no comma). */
export const PRODUCT_TAG = 'kvm-backup';

export interface SnapshotTags {
  vm: string;
  ou: string;
  node: string;
}

/** The tags one iteration's snapshot carries: the product's marker, vm, ou (the leaf) and node. */
export function snapshotTags(t: SnapshotTags): string[] {
  for (const v of [t.vm, t.ou, t.node]) if (/[,\s]/.test(v)) throw new Error(`"${v}" cannot be a restic tag value`);
  return [PRODUCT_TAG, `vm=${t.vm}`, `ou=${t.ou}`, `node=${t.node}`];
}

/** A tag's value (`vm=x` → x) or undefined. */
export function tagValue(tags: readonly string[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1);
}

/** One snapshot as `restic snapshots --json` lists it (the fields this product reads). */
export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  hostname: string;
  tags?: string[];
  paths: string[];
  summary?: {
    total_files_processed?: number;
    total_bytes_processed?: number;
    data_added?: number;
    data_added_packed?: number;
  };
}

/** `restic backup --json` summary line (the fields used). */
export interface BackupSummary {
  snapshot_id?: string;
  data_added: number;
  data_added_packed: number;
  total_bytes_processed: number;
  total_files_processed: number;
  total_duration: number;
}

/** A `status` line of `backup` or `restore` (--json): bytes done of total, the file being read. */
export interface ResticStatus {
  bytes: number;
  total: number;
  file?: string;
}

/** JSON lines of a restic run; lines that are not JSON objects (restic prints a few) are skipped. */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      out.push(JSON.parse(t) as Record<string, unknown>);
    } catch {
      // a partial or foreign line
    }
  }
  return out;
}

/** The progress of one `status` line of `backup` (bytes_done) or `restore` (bytes_restored). */
export function statusOf(line: Record<string, unknown>): ResticStatus | undefined {
  if (line['message_type'] !== 'status') return undefined;
  const total = Number(line['total_bytes'] ?? 0);
  const bytes = Number(line['bytes_done'] ?? line['bytes_restored'] ?? 0);
  const files = line['current_files'];
  return { bytes, total, ...(Array.isArray(files) && typeof files[0] === 'string' ? { file: files[0] } : {}) };
}

/** The message of restic's `exit_error` line (stderr with --json), else the last lines of stderr. */
export function resticMessage(stderr: string): string {
  const exit = jsonLines(stderr).find((l) => l['message_type'] === 'exit_error');
  if (exit && typeof exit['message'] === 'string') return exit['message'];
  return stderr.trim().split('\n').slice(-3).join(' | ') || 'no output';
}

// ---- the repository on the command line -----------------------------------------------------

/**
 * One argument of `sftp.command` as restic splits it (internal/backend/shell_split.go: spaces and
 * backslashes split outside quotes; a quoted part ends at the same quote; no escapes): wrapped in
 * double quotes. An argument restic could not give back unchanged (empty, or holding `"`, `\` or a
 * control character) is refused: ssh is never started with anything but the array built here.
 */
export function sftpCommandArgument(arg: string): string {
  // eslint-disable-next-line no-control-regex
  if (arg === '' || /["\\\u0000-\u001f\u007f]/.test(arg)) throw new Error(`cannot pass ${JSON.stringify(arg)} to ssh through restic's sftp.command`);
  return `"${arg}"`;
}

/** restic's `sftp.command` value for an argument array (see sftpCommandArgument). */
export function sftpCommand(args: readonly string[]): string {
  return args.map(sftpCommandArgument).join(' ');
}

/**
 * The ssh command restic starts for an SFTP repository: batch mode (never a prompt), the server's
 * key checked (StrictHostKeyChecking), keep-alives so a dead link ends the upload within a minute,
 * the configured key and known_hosts, port and login as separate arguments, the host after `--`.
 */
export function sshArguments(repo: ResticRepository, s: Pick<ResticSettings, 'sshIdentityFile' | 'sshKnownHostsFile'>): string[] {
  if (repo.transport !== 'sftp' || !repo.host) throw new Error(`${repo.uri} is not an SFTP repository`);
  return [
    'ssh',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'ServerAliveInterval=15',
    '-o', 'ServerAliveCountMax=3',
    '-o', 'ConnectTimeout=30',
    ...(s.sshKnownHostsFile ? ['-o', `UserKnownHostsFile=${s.sshKnownHostsFile}`] : []),
    ...(s.sshIdentityFile ? ['-o', 'IdentitiesOnly=yes', '-i', s.sshIdentityFile] : []),
    '-p', String(repo.port ?? 22),
    ...(repo.user ? ['-l', repo.user] : []),
    '-s',
    '--',
    repo.host,
    'sftp',
  ];
}

/**
 * A value for restic's `-o` flag: that flag is a list that restic's flag parser (pflag) reads as one
 * CSV record, so the whole `key=value` is one CSV field in double quotes, its quotes doubled.
 */
export function optionValue(keyValue: string): string {
  return `"${keyValue.replace(/"/g, '""')}"`;
}

/** `--repo …` (and for SFTP the `-o sftp.command=…` that starts ssh as sshArguments says). */
export function repositoryArguments(repo: ResticRepository, s: ResticSettings): string[] {
  if (repo.transport === 'local') return ['--repo', repo.path];
  // with sftp.command set, restic takes only the path from the repository string
  return ['--repo', `sftp:${repo.host!.includes(':') ? `[${repo.host}]` : repo.host}:${repo.path}`, '-o', optionValue(`sftp.command=${sftpCommand(sshArguments(repo, s))}`)];
}

// ---- failures --------------------------------------------------------------------------------

/** What went wrong, as far as restic's exit code and text tell. */
export type ResticProblem = 'wrong-password' | 'no-repository' | 'locked' | 'no-space' | 'connection' | 'access' | 'cancelled' | 'other';

/**
 * restic's exit code first (10, 11, 12, 130 since 0.17), then its text: a full filesystem, a lost or
 * refused SSH/SFTP connection, SSH that refused our key or the server's.
 */
export function resticProblem(exitCode: number | undefined, text: string): ResticProblem {
  if (exitCode === 12) return 'wrong-password';
  if (exitCode === 10) return 'no-repository';
  if (exitCode === 11) return 'locked';
  if (exitCode === 130) return 'cancelled';
  if (/no space left on device|disk quota exceeded/i.test(text)) return 'no-space';
  if (/Host key verification failed|Permission denied \((publickey|password)|REMOTE HOST IDENTIFICATION HAS CHANGED|No such file or directory.*identity|Load key/i.test(text)) return 'access';
  if (/wrong password or no key found/i.test(text)) return 'wrong-password';
  if (/repository does not exist|Is there a repository at the following location/i.test(text)) return 'no-repository';
  if (/already locked/i.test(text)) return 'locked';
  if (
    /Connection refused|Connection reset|Connection timed out|connection lost|Broken pipe|No route to host|ssh command exited|unable to start the sftp session|server unexpectedly closed connection|sftp: ssh command exited|Timeout, server .* not responding|kex_exchange_identification|Connection closed by|use of closed network connection|\bEOF\b/i.test(
      text,
    )
  ) {
    return 'connection';
  }
  return 'other';
}

/**
 * The product's exit code for a restic problem (docs/exit-codes.md): wrong password 39, no
 * repository 26, locked by another process 22, no space 47, connection lost or refused 7, SSH
 * refusing key or host 39; anything else the step's own code (`otherwise`).
 */
export function resticProblemCode(problem: ResticProblem, otherwise: number): number {
  switch (problem) {
    case 'wrong-password':
    case 'access':
      return Code.UNSUPPORTED_CONFIGURATION_PARAMETER;
    case 'no-repository':
      return Code.BACKUP_ROOT_DIRECTORY_DOES_NOT_EXIST;
    case 'locked':
      return Code.CANNOT_LOCK_MACHINE;
    case 'no-space':
      return Code.NOT_ENOUGH_DISK_SPACE;
    case 'connection':
      return Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION;
    default:
      return otherwise;
  }
}

/** What each problem means to an operator, for the failure's message. */
export const RESTIC_PROBLEM_TEXT: Record<ResticProblem, string> = {
  'wrong-password': 'the repository password ([Backup] RESTIC_PASSWORD_FILE) does not open the repository',
  'no-repository': 'there is no repository at this location (create it with `kvm-backup repository init`)',
  locked: 'another process holds the repository lock (a prune, check or backup from elsewhere); stale locks of dead processes on this node were removed',
  'no-space': 'the repository filesystem is full',
  connection: 'the connection to the repository was lost or refused',
  access: 'SSH refused the key or the server host key is unknown or changed ([Backup] RESTIC_SSH_IDENTITY_FILE, RESTIC_SSH_KNOWN_HOSTS)',
  cancelled: 'restic was cancelled',
  other: 'restic failed',
};
