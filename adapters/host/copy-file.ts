/**
 * The copier, run as its own process (`ionice -c 3 node copy-file.js …`) so every big copy runs at
 * idle I/O priority, can be killed alone, and exits when its parent dies.
 *
 * - Sparse-aware: all-zero chunks are not written (they stay holes); the size is set at the end.
 * - A plain sequential loop of blocking reads and writes through a 128 KiB buffer, as `cp` does. The
 *   buffer size matters most: it stays in the CPU cache between the read and the write;
 *   with 1-8 MiB buffers the kernel's copies ran 2-4× slower and erratic under load, and variants with
 *   several reads or writes in flight or a hash thread were no better (perf, bench/export-throughput.ts).
 * - Resumable: `--offset N` continues a copy whose first N bytes are already in place.
 * - The sha256, when one is wanted, comes from hash-file.js running beside it (copy.ts).
 * - Reports progress as JSON lines: `{"bytes":…,"total":…}`, then `{"done":true,…}`.
 *
 *   node copy-file.js --src S --dst D [--offset N] [--rate MiB/s] [--chunk-kib 128]
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    src: { type: 'string' },
    dst: { type: 'string' },
    offset: { type: 'string', default: '0' },
    rate: { type: 'string', default: '0' },
    'chunk-kib': { type: 'string', default: '128' },
  },
});

const emit = (o: object) => writeSync(1, `${JSON.stringify(o)}\n`);
const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function main(): void {
  const src = values.src;
  const dst = values.dst;
  if (!src || !dst) throw new Error('usage: copy-file --src S --dst D [--offset N] [--rate MiB/s]');
  const chunk = Math.max(4, Number(values['chunk-kib'])) * 1024;
  const rate = Number(values.rate) * 2 ** 20;
  const parent = process.ppid;

  const total = statSync(src).size;
  let offset = Number(values.offset);
  let dstSize = -1;
  try {
    dstSize = statSync(dst).size;
  } catch {
    // no destination yet
  }
  if (!(offset > 0 && offset <= total && dstSize >= offset)) offset = 0;
  const input = openSync(src, 'r');
  const output = openSync(dst, offset > 0 ? 'r+' : 'w', 0o600);
  const buffer = Buffer.alloc(chunk);
  const zero = Buffer.alloc(chunk);

  const started = Date.now();
  let lastReport = 0;
  let written = 0;
  let skipped = 0;
  let pos = offset;
  while (pos < total) {
    const n = readSync(input, buffer, 0, Math.min(chunk, total - pos), pos);
    if (n === 0) throw new Error(`${src} shrank while being copied (at ${pos} of ${total})`);
    const data = buffer.subarray(0, n);
    if (n === chunk ? data.equals(zero) : data.equals(zero.subarray(0, n))) skipped += n;
    else {
      for (let done = 0; done < n; ) done += writeSync(output, data, done, n - done, pos + done);
      written += n;
    }
    pos += n;
    const now = Date.now();
    if (now - lastReport >= 200) {
      lastReport = now;
      if (process.ppid !== parent) process.exit(3); // the worker died: never write on behind its back
      emit({ bytes: pos, total });
    }
    if (rate > 0) {
      const ahead = (pos - offset) / rate - (now - started) / 1000;
      if (ahead > 0) sleepMs(ahead * 1000);
    }
  }
  if (fstatSync(output).size !== total) ftruncateSync(output, total);
  fdatasyncSync(output);
  closeSync(input);
  closeSync(output);
  emit({ done: true, bytes: total, total, written, skipped });
}

try {
  main();
} catch (e) {
  process.stderr.write(`copy-file: ${(e as Error).message}\n`);
  process.exit(1);
}
