/**
 * sha256 of backup files and texts. A backup's files are hashed once, when each first reaches the
 * retain directory (while its source is frozen), and the export writes those hashes to the
 * manifest; restores and `verify` check the files against it (docs/on-disk-layout.md).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export function sha256OfText(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 2 ** 21 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
