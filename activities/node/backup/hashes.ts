/**
 * sha256 of the files of a backup, computed once, when each file is first written to the retain
 * directory (while its source is frozen), kept beside them in `.sha256.json`, and written to the
 * manifest by the export. Restores and `verify` check the files against that manifest.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { exists } from '../files.js';

export const HASHES_FILE = '.sha256.json';

export type Hashes = Record<string, string>;

export function sha256OfText(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 2 ** 21 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function readHashes(dir: string, file = HASHES_FILE): Promise<Hashes> {
  const path = `${dir}/${file}`;
  return (await exists(path)) ? (JSON.parse(await readFile(path, 'utf8')) as Hashes) : {};
}

export async function writeHashes(dir: string, hashes: Hashes, file = HASHES_FILE): Promise<void> {
  const path = `${dir}/${file}`;
  await writeFile(`${path}.tmp`, JSON.stringify(hashes));
  await rename(`${path}.tmp`, path);
}
