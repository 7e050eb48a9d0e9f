/**
 * Measures how long the guest was paused during an operation, from QEMU's own STOP and RESUME
 * events (`virsh qemu-monitor-event --loop --timestamp` running beside it), not from the wall time
 * of the command: the number operators compare against "milliseconds".
 */
import { execa, type ResultPromise } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { guarded, type Command } from './run.js';

const EVENT = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3})\+0000: event (STOP|RESUME) for domain/;

export interface PauseWatch {
  /** Stops watching; the summed pause in ms (undefined when no STOP/RESUME pair was seen). */
  stop(): Promise<number | undefined>;
}

export function pauseFromEvents(lines: readonly string[]): number | undefined {
  let stoppedAt: number | undefined;
  let total: number | undefined;
  for (const line of lines) {
    const m = EVENT.exec(line);
    if (!m) continue;
    const at = Date.parse(`${m[1]!.replace(' ', 'T')}Z`);
    if (m[2] === 'STOP') stoppedAt ??= at;
    else if (stoppedAt !== undefined) {
      total = (total ?? 0) + (at - stoppedAt);
      stoppedAt = undefined;
    }
  }
  return total;
}

/** Whether the last STOP or RESUME event of `lines` is a RESUME (the guest runs again). */
export function resumed(lines: readonly string[]): boolean {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = EVENT.exec(lines[i]!);
    if (m) return m[2] === 'RESUME';
  }
  return false;
}

/**
 * `command`: where virsh runs (run.ts Command; the SSH gateway's for CLISSH), here by default;
 * `warmupMs`: how long virsh gets to connect and register before the operation starts (an SSH
 * connection first needs its handshake).
 */
export async function watchGuestPause(uri: string, domain: string, command: Command = guarded, warmupMs = 150): Promise<PauseWatch> {
  const lines: string[] = [];
  const [cmd, argv] = command('virsh', ['-c', uri, 'qemu-monitor-event', domain, '--loop', '--timestamp']);
  const child: ResultPromise = execa(cmd, argv, {
    reject: false,
    buffer: false,
  });
  // whole lines only: an event split across two reads is joined before it is matched
  let tail = '';
  child.stdout?.on('data', (b: Buffer) => {
    const parts = (tail + b.toString()).split('\n');
    tail = parts.pop() ?? '';
    lines.push(...parts);
  });
  // give virsh time to connect and register for events before the operation starts
  await sleep(warmupMs);
  return {
    async stop() {
      // the RESUME event may trail the command's return by a few ms: wait for it, at most 100 ms
      for (const deadline = Date.now() + 100; !resumed(lines) && Date.now() < deadline; ) await sleep(10);
      child.kill('SIGTERM');
      await child;
      return pauseFromEvents([...lines, tail]);
    },
  };
}
