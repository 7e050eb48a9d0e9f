/**
 * restic on this node (docs/repository.md): every command with an argument array (never a shell),
 * `--json` so progress and errors come as JSON lines, the password read by restic itself from the
 * file the INI names (it never passes through this process), the child killed with the worker
 * (setpriv PDEATHSIG) and at idle I/O priority for the big reads and writes. Failures become
 * ResticError, classified by core/restic.ts (wrong password, no repository, locked, no space,
 * connection lost); a lock held by a dead restic process of this node is removed once
 * (`restic unlock` removes only stale locks) and the command tried again.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { execa } from 'execa';
import type { ResticRepository } from '../../core/backup-root.js';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import {
  jsonLines,
  repositoryArguments,
  resticMessage,
  resticProblem,
  statusOf,
  type BackupSummary,
  type ResticProblem,
  type ResticSettings,
  type ResticSnapshot,
  type ResticStatus,
} from '../../core/restic.js';
import { guarded } from './run.js';

export class ResticError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | undefined,
    readonly problem: ResticProblem,
    readonly stderr: string,
    message: string,
  ) {
    super(`restic ${command} failed${exitCode === undefined ? '' : ` (exit ${exitCode})`}: ${message}`);
    this.name = 'ResticError';
  }
}

interface RunOptions {
  signal?: AbortSignal;
  cwd?: string;
  /** Each JSON line restic prints on stdout, as it comes. */
  onLine?: (line: Record<string, unknown>) => void;
  /** Lines on stdout are kept (false for `backup` and `restore`, whose status lines are many). */
  keepStdout?: boolean;
  idleIo?: boolean;
}

/** The worker's environment without restic's own variables (a RESTIC_PASSWORD there must not win over the file). */
function childEnvironment(cacheDir?: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('RESTIC_')) env[k] = v;
  // one status line a second in JSON mode; --time and snapshot times in UTC like the leaf names
  env['RESTIC_PROGRESS_FPS'] = '1';
  env['TZ'] = 'UTC';
  if (cacheDir) env['RESTIC_CACHE_DIR'] = cacheDir;
  return env;
}

export class Restic {
  /**
   * `unavailable`: why this node cannot run restic against its images (CLISSH: restic would run here,
   * the images are on the gateway's host); every command then fails with 39 before it starts, so a
   * repository root is refused in the preflight, before the VM changes.
   */
  constructor(
    readonly settings: ResticSettings,
    private readonly o: { unavailable?: string } = {},
  ) {}

  /** The bandwidth limit of the INI, both ways. */
  private limits(): string[] {
    const kib = this.settings.limitKiB;
    return kib > 0 ? ['--limit-upload', String(kib), '--limit-download', String(kib)] : [];
  }

  /** `--password-file` after checking the file is there and readable (2 otherwise, like every unreadable secret file). */
  private async passwordArguments(): Promise<string[]> {
    const file = this.settings.passwordFile;
    if (!file) throw failure(Code.MISSING_PARAMETER_IN_CONFIG_FILE, '[Backup] RESTIC_PASSWORD_FILE is not set: a repository backup root needs the repository password file');
    try {
      await access(file, constants.R_OK);
    } catch (e) {
      throw failure(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `the repository password file ${file} ([Backup] RESTIC_PASSWORD_FILE) cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return ['--password-file', file];
  }

  private async once(repo: ResticRepository, args: string[], o: RunOptions): Promise<string> {
    if (this.o.unavailable) throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${repo.uri}: ${this.o.unavailable}`);
    const argv = [...repositoryArguments(repo, this.settings), ...(await this.passwordArguments()), '--json', ...(this.settings.cacheDir ? ['--cache-dir', this.settings.cacheDir] : []), ...this.limits(), ...args];
    const [cmd, full] = guarded(this.settings.binary, argv, o.idleIo);
    const child = execa(cmd, full, {
      extendEnv: false,
      env: childEnvironment(this.settings.cacheDir),
      cancelSignal: o.signal,
      forceKillAfterDelay: 5_000,
      reject: false,
      stdin: 'ignore',
      buffer: { stdout: o.keepStdout !== false, stderr: true },
      ...(o.cwd ? { cwd: o.cwd } : {}),
    });
    let tail = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      if (!o.onLine) return;
      const lines = (tail + chunk.toString()).split('\n');
      tail = lines.pop() ?? '';
      for (const l of jsonLines(lines.join('\n'))) o.onLine(l);
    });
    const done = await child;
    if (o.signal?.aborted) throw o.signal.reason;
    if (tail && o.onLine) for (const l of jsonLines(tail)) o.onLine(l);
    if (done.exitCode === 0) return String(done.stdout ?? '');
    const stderr = String(done.stderr ?? '');
    const message = resticMessage(stderr || String(done.stdout ?? ''));
    throw new ResticError(args[0] ?? '', done.exitCode, resticProblem(done.exitCode, `${stderr}\n${message}`), stderr, message);
  }

  /** Runs a command; once more after `restic unlock` when a lock stopped it (a dead process's lock goes, a live one stays). */
  private async command(repo: ResticRepository, args: string[], o: RunOptions = {}): Promise<string> {
    try {
      return await this.once(repo, args, o);
    } catch (e) {
      if (!(e instanceof ResticError) || e.problem !== 'locked') throw e;
      await this.once(repo, ['unlock'], {}).catch(() => undefined);
      return this.once(repo, args, o);
    }
  }

  /** `restic init`: a new repository (format 2: compressed), with the password of the file. */
  async init(repo: ResticRepository): Promise<string> {
    const out = jsonLines(await this.once(repo, ['init', '--repository-version', '2'], {}));
    return String(out.find((l) => l['message_type'] === 'initialized')?.['id'] ?? '');
  }

  /** `restic version` (no repository needed). */
  async version(): Promise<string> {
    const r = await execa(this.settings.binary, ['version'], { reject: false, extendEnv: false, env: childEnvironment() });
    if (r.exitCode !== 0) throw new Error(`${this.settings.binary} version: ${String(r.stderr || r.stdout).trim() || `exit ${r.exitCode}`}`);
    return String(r.stdout).trim();
  }

  /** The snapshots carrying every tag of `tags` (all snapshots for none), oldest first. */
  async snapshots(repo: ResticRepository, tags: string[] = [], signal?: AbortSignal): Promise<ResticSnapshot[]> {
    const out = await this.command(repo, ['snapshots', ...(tags.length ? ['--tag', tags.join(',')] : [])], signal ? { signal } : {});
    return JSON.parse(out || '[]') as ResticSnapshot[];
  }

  /**
   * `restic backup` of `files` (names relative to `cwd`, so the snapshot holds them at its root) with
   * the tags, the node as host and the leaf's time; progress from the JSON status lines.
   */
  async backup(
    repo: ResticRepository,
    o: { cwd: string; files: string[]; tags: string[]; host: string; time: Date; signal?: AbortSignal; onProgress?: (s: ResticStatus) => void },
  ): Promise<BackupSummary> {
    let summary: BackupSummary | undefined;
    const time = o.time.toISOString().slice(0, 19).replace('T', ' ');
    await this.command(repo, ['backup', '--tag', o.tags.join(','), '--host', o.host, '--time', time, '--', ...o.files], {
      cwd: o.cwd,
      keepStdout: false,
      idleIo: true,
      ...(o.signal ? { signal: o.signal } : {}),
      onLine: (l) => {
        const s = statusOf(l);
        if (s) o.onProgress?.(s);
        if (l['message_type'] === 'summary') summary = l as unknown as BackupSummary;
      },
    });
    if (!summary) throw new ResticError('backup', 0, 'other', '', 'restic printed no summary');
    return summary;
  }

  /** `restic restore <snapshot> --target <dir>` of the files named (all for none), progress from the status lines. */
  async restore(
    repo: ResticRepository,
    snapshot: string,
    target: string,
    o: { files?: string[]; signal?: AbortSignal; onProgress?: (s: ResticStatus) => void } = {},
  ): Promise<{ bytes: number; files: number }> {
    let result = { bytes: 0, files: 0 };
    await this.command(repo, ['restore', `${snapshot}:/`, '--target', target, '--sparse', ...(o.files ?? []).flatMap((f) => ['--include', `/${f}`])], {
      keepStdout: false,
      idleIo: true,
      ...(o.signal ? { signal: o.signal } : {}),
      onLine: (l) => {
        const s = statusOf(l);
        if (s) o.onProgress?.(s);
        if (l['message_type'] === 'summary') result = { bytes: Number(l['bytes_restored'] ?? l['total_bytes'] ?? 0), files: Number(l['files_restored'] ?? l['total_files'] ?? 0) };
      },
    });
    return result;
  }

  /** The paths of the files in a snapshot (`restic ls --json`), e.g. `/vm.xml.<ou>`. */
  async list(repo: ResticRepository, snapshot: string): Promise<string[]> {
    const out = jsonLines(await this.command(repo, ['ls', snapshot], {}));
    return out.filter((l) => l['message_type'] === 'node' && l['type'] === 'file').map((l) => String(l['path']));
  }

  /** `restic forget <ids>` (no prune: prune() frees the space). */
  async forget(repo: ResticRepository, ids: string[], signal?: AbortSignal): Promise<void> {
    if (ids.length === 0) return;
    await this.command(repo, ['forget', '--', ...ids], signal ? { signal } : {});
  }

  /** `restic prune`: removes the data no snapshot references any more. */
  async prune(repo: ResticRepository, signal?: AbortSignal): Promise<void> {
    await this.command(repo, ['prune'], { idleIo: true, ...(signal ? { signal } : {}) });
  }

  /**
   * `restic check` of the repository's structure, and with `readData` (e.g. `100%`) the data of the
   * snapshots named read back and verified (restic 0.19: limited to those snapshots).
   */
  async check(repo: ResticRepository, o: { snapshots?: string[]; readData?: string; signal?: AbortSignal } = {}): Promise<{ errors: number }> {
    const args = ['check', ...(o.readData ? (o.readData === '100%' ? ['--read-data'] : [`--read-data-subset=${o.readData}`]) : []), ...(o.snapshots?.length ? ['--', ...o.snapshots] : [])];
    const out = await this.command(repo, args, { idleIo: true, ...(o.signal ? { signal: o.signal } : {}) });
    const summary = jsonLines(out).find((l) => l['message_type'] === 'summary');
    return { errors: Number(summary?.['num_errors'] ?? 0) };
  }

  /** `restic stats --mode raw-data`: what the repository holds (bytes after compression), for benchmarks and `list`. */
  async rawSize(repo: ResticRepository): Promise<{ bytes: number; uncompressed: number }> {
    const out = jsonLines(await this.command(repo, ['stats', '--mode', 'raw-data'], {}))[0] ?? {};
    return { bytes: Number(out['total_size'] ?? 0), uncompressed: Number(out['total_uncompressed_size'] ?? out['total_size'] ?? 0) };
  }
}
