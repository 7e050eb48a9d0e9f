/**
 * The copier and the hasher of a copy with its sha256 (adapters/host/copy.ts) run as two processes;
 * when one fails the other is stopped at once, not awaited to its end: a copier that fails at the
 * start (here: a destination directory that does not exist) beside a hasher with 8 GiB to read (a
 * sparse file: 24 s for hash-file.js on the 2-core CI machine) fails the call within 1.5 s (53 ms there).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { copyFile } from '../../adapters/host/copy.js';
import { testDir } from '../helpers/names.js';

const dir = testDir('copy-file');
after(() => rmSync(dir, { recursive: true, force: true }));

test('a copy whose copier fails stops its hasher at once and reports the copier', async () => {
  const src = join(dir, 'large.img');
  execFileSync('truncate', ['-s', '8G', src]);
  const started = Date.now();
  await assert.rejects(copyFile({ src, dst: join(dir, 'missing', 'copy.img'), sha256: true }), (e: Error) => {
    assert.match(e.message, /copy-file: ENOENT/);
    return true;
  });
  const failedMs = Date.now() - started;
  assert.ok(failedMs < 1_500, `failed after ${failedMs} ms: the hasher was not stopped`);
});
