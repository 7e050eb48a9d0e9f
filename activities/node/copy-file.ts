/**
 * The copier, run as its own process (`ionice -c 3 node copy-file.js …`) so every big copy runs at
 * idle I/O priority and can be killed alone (it also exits when its parent dies).
 *
 * - Sparse-aware: all-zero chunks are not written (they stay holes); the size is set at the end.
 * - Fast: several reads in flight (positional, through libuv's thread pool), writes one after the other
 *   in file order, and the sha256 computed on this thread while the pool threads move the data.
 * - Resumable: `--offset N` continues a copy whose first N bytes are already in place (their hash is
 *   rebuilt from the destination).
 * - Reports progress as JSON lines: `{"bytes":…,"total":…}`, then `{"done":true,…,"sha256":…}`.
 *
 *   node copy-file.js --src S --dst D [--offset N] [--hash] [--rate MiB/s] [--chunk MiB] [--depth N]
 *
 * Defaults (2 MiB chunks, 8 in flight, 8 libuv threads set by copy.ts) were the fastest and steadiest
 * on our machines (bench/export-throughput.ts); 8 MiB chunks made the kernel's share of the work erratic.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const { values } = parseArgs({
  options: {
    src: { type: 'string' },
    dst: { type: 'string' },
    offset: { type: 'string', default: '0' },
    hash: { type: 'boolean', default: false },
    rate: { type: 'string', default: '0' },
    chunk: { type: 'string', default: '2' },
    depth: { type: 'string', default: '8' },
  },
});

const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function main(): Promise<void> {
  const src = values.src;
  const dst = values.dst;
  if (!src || !dst) throw new Error('usage: copy-file --src S --dst D [--offset N] [--hash] [--rate MiB/s]');
  const chunk = Math.max(1, Number(values.chunk)) * 2 ** 20;
  const depth = Math.max(1, Number(values.depth));
  const rate = Number(values.rate) * 2 ** 20;
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(3), 500).unref();

  const total = (await stat(src)).size;
  let offset = Number(values.offset);
  const dstSize = await stat(dst).then((s) => s.size).catch(() => -1);
  if (!(offset > 0 && offset <= total && dstSize >= offset)) offset = 0;
  const input = await open(src, 'r');
  const output = await open(dst, offset > 0 ? 'r+' : 'w', 0o600);
  const hash = values.hash ? createHash('sha256') : undefined;

  // `depth` buffers: one is free again once its chunk is written and hashed
  const slots = Array.from({ length: depth }, () => Buffer.alloc(chunk));
  const zero = Buffer.alloc(chunk);

  if (hash && offset > 0) {
    // rebuild the hash of what an earlier attempt already copied
    for (let pos = 0; pos < offset; pos += chunk) {
      const { bytesRead } = await output.read(slots[0]!, 0, Math.min(chunk, offset - pos), pos);
      if (bytesRead === 0) throw new Error(`destination ends at ${pos}, before the resume offset ${offset}`);
      hash.update(slots[0]!.subarray(0, bytesRead));
    }
  }

  const started = Date.now();
  let done = offset; // bytes below which everything is written (for progress and resume)
  let written = 0;
  let skipped = 0;
  const timer = setInterval(() => emit({ bytes: done, total }), 200);
  const completed = new Map<number, number>(); // position → length, finished out of order
  const advance = () => {
    while (completed.has(done)) {
      const length = completed.get(done)!;
      completed.delete(done);
      done += length;
    }
  };

  // up to `depth` chunks in flight: each is read, then written and hashed; the hash chain keeps file order
  let next = offset;
  let hashChain: Promise<void> = Promise.resolve();
  // one write at a time, in file order: concurrent buffered writes to one file contend on its inode
  // lock, and the kernel's spinning on it cost up to 4× the copy time in system CPU here
  let writeChain: Promise<void> = Promise.resolve();
  const slotFree: Array<Promise<void>> = slots.map(() => Promise.resolve());
  for (let i = 0; next < total; i = (i + 1) % depth) {
    await slotFree[i];
    const at = next;
    const length = Math.min(chunk, total - at);
    next += length;
    const data = slots[i]!.subarray(0, length);
    const read = input.read(data, 0, length, at).then(({ bytesRead }) => {
      if (bytesRead !== length) throw new Error(`${src} shrank while being copied (at ${at} of ${total})`);
    });
    // the hash must see the chunks in file order; it runs on this thread while the pool threads copy
    const hashed = hash ? (hashChain = hashChain.then(() => read).then(() => void hash.update(data))) : read;
    const write = (writeChain = writeChain.then(() => read).then(async () => {
      if (length === chunk ? data.equals(zero) : data.equals(zero.subarray(0, length))) skipped += length;
      else {
        await output.write(data, 0, length, at);
        written += length;
      }
    }));
    slotFree[i] = Promise.all([hashed, write]).then(() => {
      completed.set(at, length);
      advance();
    });
    if (rate > 0) {
      const ahead = (next - offset) / rate - (Date.now() - started) / 1000;
      if (ahead > 0) await sleep(ahead * 1000);
    }
  }
  await Promise.all(slotFree);
  await output.truncate(total);
  await output.datasync();
  await Promise.all([input.close(), output.close()]);
  clearInterval(timer);
  const sha256 = hash?.digest('hex') ?? null;
  emit({ done: true, bytes: total, total, written, skipped, sha256 });
}

main().catch((e) => {
  process.stderr.write(`copy-file: ${(e as Error).message}\n`);
  process.exit(1);
});
