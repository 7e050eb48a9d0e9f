/**
 * The sha256 of one file, in a process of its own (`node hash-file.js FILE`), so a copy that needs
 * a hash runs the copier and this side by side on two cores: the copy does not wait for the hash, and
 * the file is read from disk once (the second reader finds it in the page cache). Prints
 * `{"sha256":…}`; exits when its parent dies.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: hash-file FILE');
  const parent = process.ppid;
  const fd = openSync(file, 'r');
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(128 * 1024); // stays in the CPU cache between read and hash
  for (let pos = 0, n = 0, i = 0; (n = readSync(fd, buffer, 0, buffer.length, pos)) > 0; pos += n, i++) {
    hash.update(buffer.subarray(0, n));
    if (i % 4096 === 0 && process.ppid !== parent) process.exit(3);
  }
  closeSync(fd);
  writeSync(1, `${JSON.stringify({ sha256: hash.digest('hex') })}\n`);
}

try {
  main();
} catch (e) {
  process.stderr.write(`hash-file: ${(e as Error).message}\n`);
  process.exit(1);
}
