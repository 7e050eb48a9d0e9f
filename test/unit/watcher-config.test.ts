import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CookieStore } from '../../client/watcher/cookie-store.js';
import { watcherOptionsFromIni } from '../../client/watcher/ini-options.js';
import { BEGINNING_CSN } from '../../core/csn.js';

const CSN = '20261127021447.601862Z#000000#000#000000';

test('the cookie file: default cookie when missing, the original format, rid kept, written whole', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-backup-cookie-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'sub', 'cookie');
  const store = new CookieStore(file, 'rid=001,csn=');
  assert.equal(await store.read(), BEGINNING_CSN);
  await store.write(CSN);
  assert.equal(readFileSync(file, 'utf8'), `rid=001,csn=${CSN}\n`);
  assert.equal(await new CookieStore(file, 'rid=001,csn=').read(), CSN);
  // a cookie file of the original daemon, with its own rid
  writeFileSync(file, `rid=042,csn=${CSN}`);
  const theirs = new CookieStore(file, 'rid=001,csn=');
  assert.equal(await theirs.read(), CSN);
  await theirs.write('20261127030000.000000Z#000000#000#000000');
  assert.match(readFileSync(file, 'utf8'), /^rid=042,csn=20261127030000/);
  // an empty file is the default cookie too
  writeFileSync(file, '');
  assert.equal(await new CookieStore(file, `rid=001,csn=${CSN}`).read(), CSN);
});

test('[Watcher] and [Scheduler] keys: read and checked', () => {
  assert.deepEqual(watcherOptionsFromIni('[Global]\nENVIRONMENT = n1\n'), {});
  assert.deepEqual(
    watcherOptionsFromIni('[Watcher]\nNODES = n1, n2.example.org\nPOLL_INTERVAL_MS = 100\n[Scheduler]\nTIMEZONE = Europe/Zurich\n'),
    { nodes: ['n1', 'n2.example.org'], pollIntervalMs: 100, scheduler: { timezone: 'Europe/Zurich' } },
  );
  assert.deepEqual(watcherOptionsFromIni('[Scheduler]\nENABLED = 0\n'), { scheduler: false });
  assert.throws(() => watcherOptionsFromIni('[Watcher]\nNODES = bad node\n'), /NODES/);
  assert.throws(() => watcherOptionsFromIni('[Watcher]\nPOLL_INTERVAL_MS = 5\n'), /POLL_INTERVAL_MS/);
  assert.throws(() => watcherOptionsFromIni('[Scheduler]\nTIMEZONE = Mars/Olympus\n'), /TIMEZONE/);
});
