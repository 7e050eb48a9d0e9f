/**
 * The local libvirtd (+ virtlogd, which QEMU's console logging needs). Used as it is when one
 * already answers; otherwise started here in the foreground, and stopped by PID by whoever started
 * it, after the domains it ran are destroyed (QEMU outlives libvirtd).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { startDaemon, type Daemon } from './daemon.js';

export const LIBVIRT_URI = 'qemu:///system';

export interface Libvirt {
  uri: string;
  /** True if this process started the daemons (and must stop them). */
  owned: boolean;
  stop(): Promise<void>;
}

async function answers(timeoutMs: number): Promise<boolean> {
  try {
    await execa('virsh', ['-c', LIBVIRT_URI, 'version'], { timeout: timeoutMs });
    return true;
  } catch {
    return false;
  }
}

/**
 * libvirtd as started here: behind `tini -s` (a child subreaper) where tini is installed. QEMU
 * daemonizes away from libvirtd, so its parent is whatever reaps orphans: systemd on a real host reaps
 * at once, but the init of a minimal machine or container may reap seconds late, and libvirt counts a
 * zombie QEMU as alive: `virsh destroy` took 1.6 s instead of 0.2 s here. tini reaps every orphan
 * below it at once and forwards SIGTERM to libvirtd, so stopping it by PID stops libvirtd.
 */
function libvirtdCommand(): [string, string[]] {
  const tini = ['/usr/bin/tini', '/usr/sbin/tini'].find((p) => existsSync(p));
  return tini ? [tini, ['-s', '--', 'libvirtd']] : ['libvirtd', []];
}

export async function ensureLibvirt(logDir: string): Promise<Libvirt> {
  if (await answers(20_000)) return { uri: LIBVIRT_URI, owned: false, stop: async () => undefined };
  const daemons: Daemon[] = [];
  try {
    if (!pidAlive('/run/virtlogd.pid')) daemons.push(
      await startDaemon({
        name: 'virtlogd',
        command: 'virtlogd',
        args: [],
        logFile: join(logDir, 'virtlogd.log'),
        // virtlogd has no client; its socket appearing is the signal
        ready: async () => existsSync('/run/libvirt/virtlogd-sock'),
      }),
    );
    const [command, args] = libvirtdCommand();
    daemons.push(
      await startDaemon({
        name: 'libvirtd',
        command,
        args,
        logFile: join(logDir, 'libvirtd.log'),
        // the very first connection on a new machine probes QEMU's capabilities (~8 s)
        ready: () => answers(30_000),
        readyTimeoutMs: 90_000,
        pollMs: 200,
      }),
    );
  } catch (e) {
    for (const d of daemons.reverse()) await d.stop();
    throw e;
  }
  return {
    uri: LIBVIRT_URI,
    owned: true,
    stop: async () => {
      for (const d of [...daemons].reverse()) await d.stop();
    },
  };
}

function pidAlive(pidFile: string): boolean {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!pid) return false;
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let kvmUsable: boolean | undefined;

/** 'kvm' where /dev/kvm works through libvirt, else 'qemu' (TCG). */
export async function domainType(): Promise<'kvm' | 'qemu'> {
  if (kvmUsable === undefined) {
    try {
      await execa('virsh', ['-c', LIBVIRT_URI, 'domcapabilities', '--virttype', 'kvm'], { timeout: 30_000 });
      kvmUsable = true;
    } catch {
      kvmUsable = false;
    }
  }
  return kvmUsable ? 'kvm' : 'qemu';
}

/** The PID libvirtd recorded for itself (it writes /run/libvirtd.pid when it runs as root). */
function libvirtdPid(): number | undefined {
  try {
    const pid = Number(readFileSync('/run/libvirtd.pid', 'utf8').trim());
    return pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stops the running libvirtd (SIGTERM to the PID it recorded) and starts a new one, for tests of
 * "libvirtd restarted in the middle of a step": QEMU and its block jobs live on, and clients must
 * reconnect. The new daemon is detached (it outlives the calling test file, as the old one did) and
 * its PID goes to `pidDir`, where the test runner stops it by PID at the end of the run. Only where
 * the test runner started libvirtd itself (`KVM_BACKUP_LIBVIRTD_OWNED=1`): another's daemon is never
 * restarted; callers skip otherwise.
 */
export async function restartLibvirtd(logDir: string, pidDir: string): Promise<{ downMs: number }> {
  const old = libvirtdPid();
  if (!old) throw new Error('no libvirtd PID in /run/libvirtd.pid');
  const started = Date.now();
  process.kill(old, 'SIGTERM');
  for (let i = 0; i < 300 && pidIsAlive(old); i++) await new Promise((r) => setTimeout(r, 100));
  if (pidIsAlive(old)) throw new Error(`libvirtd ${old} did not stop within 30 s`);
  const { spawn } = await import('node:child_process');
  const { mkdirSync, openSync, writeFileSync } = await import('node:fs');
  mkdirSync(logDir, { recursive: true });
  mkdirSync(pidDir, { recursive: true });
  const log = openSync(join(logDir, 'libvirtd-restarted.log'), 'a');
  const child = spawn(...libvirtdCommand(), { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  if (child.pid) writeFileSync(join(pidDir, String(child.pid)), 'libvirtd');
  for (let i = 0; i < 150; i++) {
    if (await answers(5_000)) return { downMs: Date.now() - started };
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the restarted libvirtd does not answer');
}

function pidIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
