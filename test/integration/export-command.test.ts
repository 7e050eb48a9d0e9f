/**
 * [Backup] EXPORT_COMMAND other than `cp -p`: the export step runs that command for each file (split
 * into words, no shell) instead of the built-in move, checks every copy against the sha256 recorded
 * when the file reached the retain directory before it writes the manifest, and reads the manifest
 * back. Here `rsync -a --sparse --log-file=…` (its log names each file it exported), and a command that
 * copies but damages one byte: that backup fails with 7 before any manifest exists, and the VM runs
 * on its own image.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { sha256OfFile } from '../../adapters/host/hashing.js';
import { Code } from '../../core/exit-codes.js';
import { codeOf, messageOf } from '../../core/failures.js';
import { overlayPath, parseManifest, suffixedIterationFiles } from '../../core/layout.js';
import { addLeaf, backupDirOf, readLeaf, startBackup } from '../helpers/backup.js';
import { GuestData } from '../helpers/guest-data.js';
import { testDir } from '../helpers/names.js';
import { createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

async function world(label: string, exportCommand: string): Promise<World> {
  const w = await createWorld({ label, backupIni: { EXPORT_COMMAND: exportCommand } });
  const workers = await w.startWorkers();
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  return w;
}

test('EXPORT_COMMAND = rsync -a --sparse: each file exported by rsync, checked, the manifest last', async () => {
  const dir = testDir('rsync');
  const rsyncLog = join(dir, 'rsync.log');
  const w = await world('export-rsync', `rsync -a --sparse '--log-file=${rsyncLog}'`);
  const data = new GuestData(w);
  await data.write('exported', 0x7e, '0', '2M');
  const leaf = await addLeaf(w);
  await (await startBackup(w, { leafDn: leaf.dn })).result();
  assert.equal((await readLeaf(w, leaf.dn)).returnValue, '0');
  const backupDir = backupDirOf(w, leaf.ou);
  const manifest = parseManifest(readFileSync(join(backupDir, suffixedIterationFiles(w.vm, leaf.ou).manifest), 'utf8'));
  const exported = readdirSync(backupDir).filter((f) => f !== suffixedIterationFiles(w.vm, leaf.ou).manifest && !f.startsWith('.'));
  assert.ok(exported.length >= 5, exported.join(', '));
  for (const f of exported) {
    assert.equal(await sha256OfFile(join(backupDir, f)), manifest.get(f), `${f} matches the manifest`);
  }
  // rsync's own log names every file it exported (by the retained name, without the iteration suffix)
  const log = readFileSync(rsyncLog, 'utf8');
  for (const f of exported) assert.match(log, new RegExp(`>f\\S* ${f.slice(0, -`.${leaf.ou}`.length).replace(/[.]/g, '\\.')}$`, 'm'), `rsync exported ${f}`);
  await data.assertImage(join(backupDir, `${w.vm}-vda.disk.qcow2.${leaf.ou}`), 'vda', ['exported'], 'backup image');
  console.log(`EXPORT_COMMAND rsync: ${exported.length} files exported by rsync (${log.split('\n').filter((l) => / [<>]f/.test(l)).length} transfers in its log), manifest checked`);
});

test('EXPORT_COMMAND that damages a copy: 7 before the manifest, no manifest, the VM on its own image', async () => {
  const dir = testDir('damaging');
  const script = join(dir, 'damaging-copy');
  // copies, then flips the last byte of the disk image's copy (same size: only the hash can tell)
  writeFileSync(
    script,
    `#!/bin/sh\ncp --sparse=always "$1" "$2" || exit\ncase "$2" in *.disk.qcow2.*) printf 'X' | dd of="$2" bs=1 seek=$(($(stat -c %s "$2") - 1)) conv=notrunc status=none ;; esac\n`,
  );
  chmodSync(script, 0o755);
  const w = await world('export-damaged', script);
  const leaf = await addLeaf(w);
  const handle = await startBackup(w, { leafDn: leaf.dn, attempts: 2 });
  const error = await handle.result().then(
    () => assert.fail('the backup should have failed'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError);
  assert.equal(codeOf(error), Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION);
  assert.match(messageOf(error), /EXPORT_COMMAND wrote .*disk\.qcow2\..* with sha256 [0-9a-f]{64}, the retained file has [0-9a-f]{64}; removed/);
  assert.equal((await readLeaf(w, leaf.dn)).returnValue, String(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION));
  assert.equal(existsSync(join(backupDirOf(w, leaf.ou), suffixedIterationFiles(w.vm, leaf.ou).manifest)), false, 'no manifest: the iteration is not complete');
  const image = w.disks[0]!.path;
  assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), [image]);
  assert.equal(existsSync(overlayPath(image, leaf.ou)), false);
  assert.equal((await w.virsh.state(w.vm)).state, 'running');
});
