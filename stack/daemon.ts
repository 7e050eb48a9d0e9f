/**
 * Daemons this project starts itself (Temporal dev server, slapd, libvirtd, virtlogd): started in
 * the foreground as children, so the PID we hold is the daemon's own, stopped by that PID, and
 * never looked up by name (no pkill).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** Resolves with the exit code or signal when the process ends (for "died unexpectedly" checks). */
  readonly exited: Promise<string>;
}

export interface DaemonOptions {
  name: string;
  command: string;
  args: string[];
  /** stdout and stderr go here (appended). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Polled until it resolves true; the daemon is "up" then. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  pollMs?: number;
  /**
   * SIGTERM the daemon when this process dies, even by SIGKILL (PDEATHSIG through `setpriv`, which
   * execs it: the PID stays the daemon's). Not for libvirtd: QEMU would outlive it.
   */
  dieWithParent?: boolean;
}

export class DaemonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonError';
  }
}

function waitForExit(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(String(child.exitCode ?? child.signalCode));
    else child.once('exit', (code, signal) => resolve(String(code ?? signal)));
  });
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  mkdirSync(dirname(options.logFile), { recursive: true });
  const log = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    const [command, args] = options.dieWithParent
      ? ['setpriv', ['--pdeathsig', 'TERM', '--', options.command, ...options.args]]
      : [options.command, options.args];
    child = spawn(command, args, {
      stdio: ['ignore', log, log],
      env: options.env ?? process.env,
      cwd: options.cwd,
      // its own process group: a Ctrl-C in the terminal reaches only us, and we stop the daemons in
      // order (the VMs before libvirtd), instead of every daemon dying at once
      detached: true,
    });
  } finally {
    closeSync(log);
  }
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const exited = waitForExit(child);
  const pid = await Promise.race([
    new Promise<number>((resolve) => child.once('spawn', () => resolve(child.pid!))),
    spawnError.then((e) => {
      throw new DaemonError(`${options.name}: cannot start ${options.command}: ${e.message}`);
    }),
  ]);

  const pidFile = trackPid(pid, options.name);
  void exited.then(() => pidFile && rmSync(pidFile, { force: true }));
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(pid, 'SIGTERM');
    // an unref'd timer: a daemon that stops at once must not keep this process alive for graceMs
    const done = await Promise.race([exited.then(() => true), sleep(graceMs, undefined, { ref: false }).then(() => false)]);
    if (!done) {
      process.kill(pid, 'SIGKILL');
      await exited;
    }
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  let died: string | undefined;
  void exited.then((how) => (died = how));
  for (;;) {
    if (died !== undefined) {
      throw new DaemonError(`${options.name} exited (${died}) before it was ready; see ${options.logFile}`);
    }
    if (await options.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      await stop(2_000);
      throw new DaemonError(`${options.name} was not ready within ${options.readyTimeoutMs ?? 30_000} ms; see ${options.logFile}`);
    }
    await sleep(options.pollMs ?? 100);
  }
  return { name: options.name, pid, stop, exited };
}

/**
 * With KVM_BACKUP_PID_DIR set (the test runner sets it), every daemon leaves its PID there while it
 * runs, so the runner can stop by PID what a crashed test process left behind.
 */
function trackPid(pid: number, name: string): string | undefined {
  const dir = process.env['KVM_BACKUP_PID_DIR'];
  if (!dir) return undefined;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, String(pid));
  writeFileSync(file, name);
  return file;
}

/**
 * Stops (SIGTERM, then SIGKILL) every daemon still listed in a PID directory. Returns the ones that
 * were still alive, as `name (pid)`: a file whose process already ended (a test killed it on purpose)
 * is only removed.
 */
export async function stopTrackedPids(dir: string): Promise<string[]> {
  const pids = existsSync(dir) ? readdirSync(dir).map(Number).filter((n) => n > 1) : [];
  const alive: string[] = [];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
      alive.push(`${readFileSync(join(dir, String(pid)), 'utf8').trim() || '?'} (${pid})`);
    } catch {
      // already gone
    }
  }
  if (alive.length) await sleep(1_500);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    rmSync(join(dir, String(pid)), { force: true });
  }
  return alive;
}

/** A TCP port nobody listens on right now (the kernel picks it). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True if something accepts TCP connections on host:port. */
export async function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
