/**
 * A failure in each phase ends with the right exit code, in the workflow failure and on the leaf,
 * and leaves the VM running on its own images with no overlay. Preflight and copy-to-retain fail
 * naturally (a disk LDAP has and the domain lacks; an image owner that does not exist); snapshot,
 * merge and export fail by injection into one real adapter call.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { NodeDeps } from '../../activities/node/index.js';
import { overlayPath } from '../../core/layout.js';
import { Code } from '../../core/exit-codes.js';
import { codeOf } from '../../core/failures.js';
import { vmDn } from '../../core/naming.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { addLeaf, readLeaf, startBackup } from '../helpers/backup.js';
import { failing } from '../helpers/faults.js';
import { GuestData } from '../helpers/guest-data.js';
import { addDiskEntry, createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

async function world(label: string, wrapNodeDeps?: (d: NodeDeps) => NodeDeps): Promise<World> {
  const w = await createWorld({ label });
  const workers = await w.startWorkers(wrapNodeDeps ? { wrapNodeDeps } : {});
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  return w;
}

async function expectFailure(w: World, code: number, mode: string, prepare?: () => Promise<void>) {
  const data = new GuestData(w);
  await data.write('before', 0x5a, '0', '1M');
  await prepare?.();
  const leaf = await addLeaf(w);
  const error = await (await startBackup(w, { leafDn: leaf.dn, attempts: 2 })).result().then(
    () => assert.fail('the backup should have failed'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError, String(error));
  assert.ok(error.cause instanceof ApplicationFailure);
  assert.equal(codeOf(error), code, `workflow failure code: ${error.cause.message}`);
  const l = await readLeaf(w, leaf.dn);
  assert.equal(l.returnValue, String(code));
  assert.equal(l.mode, mode);
  assert.match(l.state ?? '', /^\d{8}T\d{6}Z$/, 'stamped as processed');
  // the VM runs on its own image, no overlay left, no write lost
  assert.equal((await w.virsh.state(w.vm)).state, 'running');
  assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), w.disks.map((d) => d.path));
  assert.equal(existsSync(overlayPath(w.disks[0]!.path, leaf.ou)), false, 'no overlay file');
  await data.write('after', 0x6b, '1M', '1M');
  await data.assertImage(w.disks[0]!.path, 'vda', ['before', 'after'], 'live image');
  return error;
}

test('preflight: a disk in LDAP that the domain lacks is 33, nothing touched', async () => {
  const w = await world('fail-preflight');
  await expectFailure(w, Code.BACKEND_XML_UNCONSISTENCY, 'snapshotting', () =>
    addDiskEntry(w.directory, w.vm, 'vdz', `${w.dir}/not-attached.qcow2`),
  );
});

test('snapshot: libvirt refusing the snapshot is 5, the VM keeps running on its image', async () => {
  const w = await world('fail-snapshot', (d) => ({ ...d, virsh: failing(d.virsh, 'snapshotCreateAs', 99) }));
  await expectFailure(w, Code.CANNOT_SAVE_MACHINE_STATE, 'snapshotting');
});

test('copy to retain: an image owner that does not exist is 19; the overlay is committed back', async () => {
  const w = await world('fail-retain');
  await expectFailure(w, Code.CANNOT_SET_DISK_IMAGE_OWNERSHIP, 'snapshotting', () =>
    w.directory.modify(`ou=backup,sstVirtualMachinePool=${w.pool},ou=virtual machine pools,${DEMO_SERVICE_SUBTREE}`, {
      sstVirtualizationDiskImageOwner: 'no-such-user-kvmbt',
    }),
  );
});

test('merge: a block commit that cannot start is 11; the compensation commits and pivots', async () => {
  // both merge attempts fail; the compensation's own block commit then succeeds
  const w = await world('fail-merge', (d) => ({ ...d, virsh: failing(d.virsh, 'blockCommitActive', 2) }));
  await expectFailure(w, Code.CANNOT_MERGE_DISK_IMAGES, 'merging');
});

test('export: a move to the backup root that fails is 7; the VM is already back on its image', async () => {
  // retain and backup root share a filesystem here, so the export moves each file by rename
  const w = await world('fail-export', (d) => ({
    ...d,
    files: failing(d.files, 'rename', 99, (_from, to) => String(to).includes('/backup/virtualization/')),
  }));
  await expectFailure(w, Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, 'retaining');
});

test('a leaf that does not exist: 22 at once, not after minutes of retries', async () => {
  const w = await createWorld({ label: 'fail-noleaf', noVm: true });
  const workers = await w.startWorkers();
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  const started = Date.now();
  const error = await (await startBackup(w, { leafDn: `ou=20200101T000000Z,ou=backup,${vmDn(DEMO_SERVICE_SUBTREE, w.vm)}` })).result().then(
    () => assert.fail('the backup should have failed'),
    (e: unknown) => e,
  );
  assert.equal(codeOf(error), Code.CANNOT_LOCK_MACHINE);
  assert.match(String((error as WorkflowFailedError).cause?.message), /no entry ou=20200101T000000Z/);
  assert.ok(Date.now() - started < 15_000, `failed after ${Date.now() - started} ms`);
});
