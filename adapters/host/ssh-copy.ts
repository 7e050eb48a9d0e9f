/**
 * Big-file copies on the hypervisor behind the SSH gateway (CLISSH), with the CopyFn contract of
 * copy.ts: sparse, resumable from an offset, progress for the heartbeat, the source's sha256 beside
 * the copy, rate-limited by [Backup] COPY_BANDWIDTH, cancelled by killing the child.
 *
 * Why coreutils and not copy-file.js: the hypervisor needs nothing of kvm-backup installed (no
 * Node.js), only GNU coreutils. `dd conv=sparse,notrunc` leaves all-zero blocks as holes and writes
 * the byte range it is given (`iflag=skip_bytes,count_bytes oflag=seek_bytes`), so a copy resumes at
 * any offset; its `status=progress` lines feed the heartbeat; `sha256sum` reads the source beside it;
 * `truncate` sets the size (a trailing hole) and `sync -d` puts the file on disk, as copy-file.js does.
 * With a bandwidth limit the copy runs in pieces of two seconds' worth, each followed by the pause that
 * keeps the rate. Every piece runs under `setpriv --pdeathsig` on the hypervisor (ssh.ts): when the
 * connection goes, so does the dd.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CopyFn } from './copy.js';
import type { FileSystem } from './file-system.js';
import type { Run } from './run.js';

const MiB = 2 ** 20;
/** Seconds of data per dd run when the bandwidth is limited. */
const PIECE_SECONDS = 2;

/** `sha256sum` of the source at idle I/O priority. */
async function sourceHash(run: Run, path: string, signal: AbortSignal): Promise<string> {
  const out = (await run('sha256sum', ['-b', '--', path], { idleIo: true, signal })).stdout;
  const hash = /^\\?([0-9a-f]{64}) /.exec(out)?.[1];
  if (!hash) throw new Error(`sha256sum ${path}: unexpected output ${out.slice(0, 100)}`);
  return hash;
}

export function sshCopy(run: Run, fs: FileSystem): CopyFn {
  return async (r) => {
    // the hash stops with the copy (a failure or a cancellation of either)
    const stopHash = new AbortController();
    r.signal?.addEventListener('abort', () => stopHash.abort(r.signal!.reason), { once: true });
    const hashing = r.sha256 ? sourceHash(run, r.src, stopHash.signal) : Promise.resolve(null);
    hashing.catch(() => undefined);
    try {
      const total = (await fs.stat(r.src)).size;
      let offset = r.resumeFrom ?? 0;
      const dstSize = await fs.stat(r.dst).then((s) => s.size, () => -1);
      if (!(offset > 0 && offset <= total && dstSize >= offset)) offset = 0;
      if (offset === 0) await run('install', ['-m', '600', '/dev/null', r.dst]);
      const rate = (r.rateMiB ?? 0) * MiB;
      const piece = rate > 0 ? rate * PIECE_SECONDS : Number.MAX_SAFE_INTEGER;
      let pos = offset;
      while (pos < total) {
        const n = Math.min(piece, total - pos);
        const from = pos;
        const pieceStarted = Date.now();
        await run(
          'dd',
          [`if=${r.src}`, `of=${r.dst}`, 'bs=128K', 'iflag=skip_bytes,count_bytes,fullblock', 'oflag=seek_bytes', 'conv=sparse,notrunc', `skip=${from}`, `seek=${from}`, `count=${n}`, 'status=progress'],
          {
            idleIo: true,
            ...(r.signal ? { signal: r.signal } : {}),
            onStderr: (text) => {
              const done = [...text.matchAll(/(\d+) bytes/g)].at(-1)?.[1];
              if (done !== undefined) r.onProgress?.(from + Math.min(Number(done), n), total);
            },
          },
        );
        pos += n;
        r.onProgress?.(pos, total);
        if (rate > 0 && pos < total) {
          const ahead = (n / rate) * 1000 - (Date.now() - pieceStarted);
          if (ahead > 0) await sleep(ahead, undefined, r.signal ? { signal: r.signal } : undefined);
        }
      }
      await run('truncate', ['-s', String(total), '--', r.dst]);
      await run('sync', ['-d', '--', r.dst]);
      const sha256 = await hashing;
      return { bytes: total, written: total - offset, skipped: 0, sha256 };
    } catch (e) {
      stopHash.abort();
      await hashing.catch(() => undefined);
      if (r.signal?.aborted) throw r.signal.reason;
      throw new Error(`copy ${r.src} → ${r.dst}: ${(e as Error).message}`, { cause: e });
    }
  };
}
