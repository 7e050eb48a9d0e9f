/**
 * Big-file copies for activities: runs copy-file.js under `ionice -c 3`, passes its progress to a
 * callback (the activity heartbeats it), resumes from an offset, and is killed on cancellation.
 */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { guarded } from './run.js';

const COPIER = fileURLToPath(new URL('./copy-file.js', import.meta.url));

export interface CopyRequest {
  src: string;
  dst: string;
  /** Bytes already in place from an earlier attempt (a hint: the copier re-checks the destination size). */
  resumeFrom?: number;
  sha256?: boolean;
  /** MiB/s, 0 = unlimited. */
  rateMiB?: number;
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
}

export interface CopyResult {
  bytes: number;
  written: number;
  skipped: number;
  sha256: string | null;
}

export type CopyFn = (request: CopyRequest) => Promise<CopyResult>;

export const copyFile: CopyFn = async (r) => {
  const args = [COPIER, '--src', r.src, '--dst', r.dst, '--offset', String(r.resumeFrom ?? 0), '--rate', String(r.rateMiB ?? 0)];
  if (r.sha256) args.push('--hash');
  const [cmd, argv] = guarded(process.execPath, args, true);
  const child = execa(cmd, argv, {
    cancelSignal: r.signal,
    forceKillAfterDelay: 2_000,
    reject: false,
    buffer: { stdout: false },
    // one libuv thread per chunk in flight (the copier keeps 8)
    env: { UV_THREADPOOL_SIZE: '8' },
  });
  let result: CopyResult | undefined;
  let tail = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (tail + chunk.toString()).split('\n');
    tail = lines.pop() ?? '';
    for (const line of lines) {
      if (!line) continue;
      const msg = JSON.parse(line) as { done?: boolean; bytes: number; total: number } & Partial<CopyResult>;
      if (msg.done) result = { bytes: msg.bytes, written: msg.written ?? 0, skipped: msg.skipped ?? 0, sha256: msg.sha256 ?? null };
      else r.onProgress?.(msg.bytes, msg.total);
    }
  });
  const done = await child;
  if (r.signal?.aborted) throw r.signal.reason;
  if (done.exitCode !== 0 || !result) {
    throw new Error(`copy ${r.src} → ${r.dst} failed (exit ${done.exitCode ?? done.signal}): ${String(done.stderr).trim()}`);
  }
  return result;
};
