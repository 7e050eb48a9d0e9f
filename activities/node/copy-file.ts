/**
 * The copier, run as its own process (`ionice -c 3 node copy-file.js …`) so every big copy runs at
 * idle I/O priority and can be killed alone. Sparse-aware: all-zero chunks are not written (they stay
 * holes), the size is set at the end. Resumable: `--offset N` continues a copy whose first N bytes are
 * already in place (their hash is rebuilt from the destination). Reports progress as JSON lines.
 * Exits when its parent dies, so an orphan never keeps writing after a worker crash.
 *
 *   node copy-file.js --src S --dst D [--offset N] [--hash] [--rate MiB/s] [--chunk MiB]
 */
import { createHash, type Hash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const { values } = parseArgs({
  options: {
    src: { type: 'string' },
    dst: { type: 'string' },
    offset: { type: 'string', default: '0' },
    hash: { type: 'boolean', default: false },
    rate: { type: 'string', default: '0' },
    chunk: { type: 'string', default: '8' },
  },
});

const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function hashPrefix(fh: FileHandle, hash: Hash, length: number, chunk: number): Promise<void> {
  const buf = Buffer.allocUnsafe(chunk);
  for (let pos = 0; pos < length; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(chunk, length - pos), pos);
    if (bytesRead === 0) throw new Error(`destination ends at ${pos}, before the resume offset ${length}`);
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

async function main(): Promise<void> {
  const src = values.src;
  const dst = values.dst;
  if (!src || !dst) throw new Error('usage: copy-file --src S --dst D [--offset N] [--hash] [--rate MiB/s]');
  const chunk = Math.max(1, Number(values.chunk)) * 1024 * 1024;
  const rate = Number(values.rate) * 1024 * 1024;
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(3), 500).unref();

  const total = (await stat(src)).size;
  let offset = Number(values.offset);
  const dstSize = await stat(dst).then((s) => s.size).catch(() => -1);
  if (!(offset > 0 && offset <= total && dstSize >= offset)) offset = 0;
  const input = await open(src, 'r');
  const output = await open(dst, offset > 0 ? 'r+' : 'w', 0o600);
  const hash = values.hash ? createHash('sha256') : undefined;
  if (hash && offset > 0) await hashPrefix(output, hash, offset, chunk);

  const zero = Buffer.alloc(chunk);
  const buffers = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
  const started = Date.now();
  let pos = offset;
  let written = 0;
  let skipped = 0;
  const timer = setInterval(() => emit({ bytes: pos, total }), 200);
  const read = (i: number, at: number) => input.read(buffers[i]!, 0, Math.min(chunk, total - at), at);
  let pending = pos < total ? read(0, pos) : undefined;
  for (let i = 0; pending; i ^= 1) {
    const { bytesRead } = await pending;
    if (bytesRead === 0) throw new Error(`${src} shrank while being copied (at ${pos} of ${total})`);
    const next = pos + bytesRead;
    pending = next < total ? read(i ^ 1, next) : undefined; // read ahead while this chunk is written
    const data = buffers[i]!.subarray(0, bytesRead);
    hash?.update(data);
    if (bytesRead === chunk ? data.equals(zero) : data.equals(zero.subarray(0, bytesRead))) {
      skipped += bytesRead;
    } else {
      await output.write(data, 0, bytesRead, pos);
      written += bytesRead;
    }
    pos = next;
    if (rate > 0) {
      const ahead = (pos - offset) / rate - (Date.now() - started) / 1000;
      if (ahead > 0) await sleep(ahead * 1000);
    }
  }
  await output.truncate(total);
  await output.datasync();
  await Promise.all([input.close(), output.close()]);
  clearInterval(timer);
  emit({ done: true, bytes: total, total, written, skipped, sha256: hash?.digest('hex') ?? null });
}

main().catch((e) => {
  process.stderr.write(`copy-file: ${(e as Error).message}\n`);
  process.exit(1);
});
