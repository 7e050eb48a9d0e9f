/**
 * A node worker in a process of its own (`kvm-backup worker --node-only`), so a test can kill it
 * with SIGKILL in the middle of a phase, as a crash would, and start it again. With a crash spec it
 * is test/helpers/crashing-node-worker.ts instead, which kills itself at a chosen point of a step.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CrashSpec } from './crashing-node-worker.js';
import type { World } from './world.js';

const CLI = fileURLToPath(new URL('../../client/cli.js', import.meta.url));
const CRASHING = fileURLToPath(new URL('./crashing-node-worker.js', import.meta.url));

export interface NodeProcess {
  pid: number;
  /** PIDs of its child processes right now (copiers, virsh). */
  children(): number[];
  kill9(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves when the process has ended (by itself, as a crashing worker does, or stopped). */
  exited: Promise<void>;
}

function track(pid: number, on: boolean): void {
  const dir = process.env['KVM_BACKUP_PID_DIR'];
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  if (on) writeFileSync(join(dir, String(pid)), String(pid));
  else rmSync(join(dir, String(pid)), { force: true });
}

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // process ended while we looked
    }
  }
  return out;
}

export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '(gone)';
  }
}

/** Running (a zombie that nobody reaped has ended: PID 1 here does not always reap). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function startNodeWorkerProcess(world: World, crash?: CrashSpec): Promise<NodeProcess> {
  const args = crash ? [CRASHING, '--config', world.configFile, '--crash', JSON.stringify(crash)] : [CLI, 'worker', '--node-only', '--config', world.configFile];
  const child: ChildProcess = spawn(process.execPath, args, {
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid!;
  track(pid, true);
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve())).then(() => track(pid, false));
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      output += b.toString();
      if (output.includes('workers running')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    void exited.then(() => reject(new Error(`node worker exited early: ${output}`)));
  });
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
    track(pid, false);
  };
  return { pid, children: () => childrenOf(pid), kill9: () => end('SIGKILL'), stop: () => end('SIGTERM'), exited };
}
