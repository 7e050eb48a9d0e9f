/**
 * Big-file copies for activities: copy-file.js under `ionice -c 3` (and hash-file.js beside it when a
 * sha256 is wanted: the source's, computed on the other core while the copy runs), progress passed to
 * a callback (the activity heartbeats it), resumable from an offset, killed on cancellation. Every
 * child gets SIGKILL if the worker dies (see run.ts).
 */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { guarded } from './run.js';

const COPIER = fileURLToPath(new URL('./copy-file.js', import.meta.url));
const HASHER = fileURLToPath(new URL('./hash-file.js', import.meta.url));

export interface CopyRequest {
  src: string;
  dst: string;
  /** Bytes already in place from an earlier attempt (a hint: the copier re-checks the destination size). */
  resumeFrom?: number;
  /** Also compute the sha256 of the source file. */
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

/** Runs one helper program at idle I/O priority; returns its last JSON line. */
async function runJsonChild(args: string[], signal: AbortSignal | undefined, onLine?: (msg: Record<string, unknown>) => void): Promise<Record<string, unknown>> {
  const [cmd, argv] = guarded(process.execPath, args, true);
  const child = execa(cmd, argv, { cancelSignal: signal, forceKillAfterDelay: 2_000, reject: false, buffer: { stdout: false } });
  let last: Record<string, unknown> | undefined;
  let tail = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (tail + chunk.toString()).split('\n');
    tail = lines.pop() ?? '';
    for (const line of lines) {
      if (!line) continue;
      last = JSON.parse(line) as Record<string, unknown>;
      onLine?.(last);
    }
  });
  const done = await child;
  if (signal?.aborted) throw signal.reason;
  if (done.exitCode !== 0 || !last) throw new Error(`${args[0]} failed (exit ${done.exitCode ?? done.signal}): ${String(done.stderr).trim()}`);
  return last;
}

export const copyFile: CopyFn = async (r) => {
  // the copier and the hasher stop together: a copier that failed at 1% (a full disk) must not wait
  // for the hasher to read the rest of a large image before the activity may fail and retry
  const sibling = new AbortController();
  const signal = r.signal ? AbortSignal.any([r.signal, sibling.signal]) : sibling.signal;
  const copy = runJsonChild(
    [COPIER, '--src', r.src, '--dst', r.dst, '--offset', String(r.resumeFrom ?? 0), '--rate', String(r.rateMiB ?? 0)],
    signal,
    (msg) => {
      if (!msg['done']) r.onProgress?.(Number(msg['bytes']), Number(msg['total']));
    },
  );
  const hash = r.sha256 ? runJsonChild([HASHER, r.src], signal) : Promise.resolve({ sha256: null });
  try {
    const [copied, hashed] = await Promise.all([copy, hash]);
    return { bytes: Number(copied['bytes']), written: Number(copied['written']), skipped: Number(copied['skipped']), sha256: (hashed['sha256'] as string | null) ?? null };
  } catch (e) {
    // the first failure is the one to report; the other child is killed, and awaited so none outlives the call
    sibling.abort(new Error('the other half of the copy failed'));
    await Promise.allSettled([copy, hash]);
    if (r.signal?.aborted) throw r.signal.reason;
    throw new Error(`copy ${r.src} → ${r.dst}: ${(e as Error).message}`);
  }
};
