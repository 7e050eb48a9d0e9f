/**
 * Restores on the real stack. A running VM is backed up with known bytes on its disk, more bytes are
 * written afterwards, and the restore must bring back exactly the backup-time bytes: from the RAM
 * state (`running (restored)`), or without it (`running (booted)`), in one go or step by step as the
 * vm-manager drives it, and from a backup hand-made in the original daemon's layout. Bad backups
 * fail with their code before the VM is touched; a cancel leaves no retain files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { Code } from '../../core/exit-codes.js';
import { codeOf } from '../../core/failures.js';
import { fileNames, NOT_RUNNING_STATE_MARKER, replacedImagePath } from '../../core/layout.js';
import { leafDn } from '../../core/naming.js';
import { newLeafAttributes } from '../../core/provisioning.js';
import type { RestoreStep } from '../../core/restore-plan.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { confirmRestoreSignal, restoreProgressQuery } from '../../workflows/index.js';
import { backupDirOf, backupNow, readLeaf, startRestore } from '../helpers/backup.js';
import { failing } from '../helpers/faults.js';
import { GuestData } from '../helpers/guest-data.js';
import { processed, request, startTestWatcher, waitForLeaf } from '../helpers/watcher.js';
import { createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

async function world(label: string, o: Partial<Parameters<typeof createWorld>[0]> = {}): Promise<World> {
  const w = await createWorld({ label, ...o });
  const workers = await w.startWorkers();
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  return w;
}

/** A backup with 'backed-up' on disk, then 'later' written: the restore must bring back only the first. */
async function backedUpWorld(label: string) {
  const w = await world(label);
  const data = new GuestData(w);
  await data.write('backed-up', 0xa1, '0', '2M');
  const leaf = await backupNow(w);
  await data.write('later', 0xb2, '4M', '1M');
  return { w, data, leaf };
}

function retainIterationDir(w: World, ou: string): string {
  return join(w.paths.retainRoot, 'vm-persistent', w.pool, w.vm, ou);
}

async function expectRestoreFailure(w: World, leaf: { dn: string }, code: number, data: GuestData) {
  const before = await w.virsh.state(w.vm);
  const error = await (await startRestore(w, { leafDn: leaf.dn, confirmed: true, attempts: 2 })).result().then(
    () => assert.fail('the restore should have failed'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError, String(error));
  assert.equal(codeOf(error), code, (error.cause as Error).message);
  assert.equal((await readLeaf(w, leaf.dn)).returnValue, String(code));
  // nothing changed on the live VM: still running as before, its newest bytes still there
  assert.deepEqual(await w.virsh.state(w.vm), before);
  assert.equal(before.state, 'running');
  await data.assertImage(w.disks[0]!.path, 'vda', ['backed-up', 'later'], 'live image untouched');
}

test('restore with RAM state: running (restored), exactly the backup-time bytes, defined again, no retain files', async () => {
  const { w, data, leaf } = await backedUpWorld('rs-state');
  const outcome = await (await startRestore(w, { leafDn: leaf.dn, confirmed: true })).result();
  assert.equal(outcome.result?.how, 'restored');
  assert.equal(outcome.verified, 'sha256');
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'restored' });
  await data.assertImage(w.disks[0]!.path, 'vda', ['backed-up'], 'restored image');
  assert.match(await w.virsh.exec(['dominfo', w.vm]), /Persistent:\s+yes/);
  assert.equal(existsSync(retainIterationDir(w, leaf.ou)), false, 'retain directory removed');
  const l = await readLeaf(w, leaf.dn);
  assert.equal(l.mode, 'finished');
  assert.equal(l.returnValue, '0');
});

test('restore without state: defined and started (booted), same disk content', async () => {
  const { w, data, leaf } = await backedUpWorld('rs-nostate');
  const outcome = await (await startRestore(w, { leafDn: leaf.dn, confirmed: true, withoutState: true })).result();
  assert.equal(outcome.result?.how, 'started');
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'booted' });
  await data.assertImage(w.disks[0]!.path, 'vda', ['backed-up'], 'restored image');
  assert.equal(existsSync(retainIterationDir(w, leaf.ou)), false, 'the retain directory, the replaced image with it, is gone');
});

test('the vm-manager protocol, step by step: each step answers …ing then …ed with its return value', async () => {
  const { w, data, leaf } = await backedUpWorld('rs-steps');
  const modes: string[] = [];
  for (const step of ['unretainSmallFiles', 'unretainLargeFiles', 'restore'] as RestoreStep[]) {
    await w.directory.modify(leaf.dn, { sstProvisioningMode: step, sstProvisioningState: '0' });
    await (await startRestore(w, { leafDn: leaf.dn, steps: [step] })).result();
    const l = await readLeaf(w, leaf.dn);
    assert.equal(l.returnValue, '0');
    assert.match(l.state ?? '', /^\d{8}T\d{6}Z$/);
    modes.push(l.mode!);
    if (step === 'unretainSmallFiles') {
      assert.ok(existsSync(join(retainIterationDir(w, leaf.ou), `${w.vm}.ldif.${leaf.ou}`)), 'the LDIF is in retain for the vm-manager');
      assert.equal((await w.virsh.state(w.vm)).state, 'running', 'the VM runs until the restore step');
    }
  }
  assert.deepEqual(modes, ['unretainedSmallFiles', 'unretainedLargeFiles', 'restored']);
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'restored' });
  await data.assertImage(w.disks[0]!.path, 'vda', ['backed-up'], 'restored image');
  assert.equal(existsSync(retainIterationDir(w, leaf.ou)), false, 'the retain directory, the replaced image with it, is gone');
});

test('a restore cancelled at the confirmation point removes what it copied to retain and touches nothing', async () => {
  const { w, data, leaf } = await backedUpWorld('rs-cancel');
  const handle = await startRestore(w, { leafDn: leaf.dn });
  for (let i = 0; !(await handle.query(restoreProgressQuery)).awaitingConfirmation; i++) {
    assert.ok(i < 600, 'never reached the confirmation point');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(existsSync(join(retainIterationDir(w, leaf.ou), `${w.vm}.xml.${leaf.ou}`)), 'small files unretained before the question');
  await handle.signal(confirmRestoreSignal, false);
  const outcome = await handle.result();
  assert.equal(outcome.cancelled, true);
  assert.equal(existsSync(retainIterationDir(w, leaf.ou)), false, 'no retain files left');
  assert.equal((await w.virsh.state(w.vm)).state, 'running');
  await data.assertImage(w.disks[0]!.path, 'vda', ['backed-up', 'later'], 'live image untouched');
  assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
});

test('bad backups fail before the VM is touched: missing file 37, wrong checksum 38, corrupt image 38, unsupported URI 35', async () => {
  const { w, data, leaf } = await backedUpWorld('rs-bad');
  const dir = backupDirOf(w, leaf.ou);
  const image = join(dir, `${w.vm}-vda.disk.qcow2.${leaf.ou}`);
  const keep = join(w.dir, 'image.keep');
  execFileSync('cp', ['--sparse=always', image, keep]);

  rmSync(image);
  await expectRestoreFailure(w, leaf, Code.MISSING_NECESSARY_FILES, data);
  execFileSync('cp', ['--sparse=always', keep, image]);

  const ldif = join(dir, `${w.vm}.ldif.${leaf.ou}`);
  writeFileSync(ldif, readFileSync(ldif, 'utf8').replace('dhcpHWAddress: ethernet', 'dhcpHWAddress: ethernat'));
  await expectRestoreFailure(w, leaf, Code.CORRUPT_DISK_IMAGE_FOUND, data);

  // a corrupt qcow2 whose manifest line was recomputed: only qemu-img check can tell
  corruptRefcounts(image);
  const manifest = join(dir, `SHA256SUMS.${leaf.ou}`);
  writeFileSync(manifest, execFileSync('sha256sum', readFileSync(manifest, 'utf8').trim().split('\n').map((l) => l.split(/\s+/)[1]!), { cwd: dir }));
  await expectRestoreFailure(w, leaf, Code.CORRUPT_DISK_IMAGE_FOUND, data);

  await w.directory.modify(`ou=backup,sstVirtualMachinePool=${w.pool},ou=virtual machine pools,${DEMO_SERVICE_SUBTREE}`, {
    sstBackupRootDirectory: 'nfs://backup-server/export/virtualization',
  });
  await expectRestoreFailure(w, leaf, Code.UNSUPPORTED_FILE_TRANSFER_PROTOCOL, data);
  assert.equal(existsSync(retainIterationDir(w, leaf.ou)), false, 'failed one-go restores leave no retain files');
});

/** Zeroes the first refcount block of a qcow2 image: every cluster then has refcount 0 (qemu-img check exit 2). */
function corruptRefcounts(image: string): void {
  const fd = openSync(image, 'r+');
  const header = Buffer.alloc(64);
  readSync(fd, header, 0, 64, 0);
  const table = Number(header.readBigUInt64BE(48));
  const entry = Buffer.alloc(8);
  readSync(fd, entry, 0, 8, table);
  writeSync(fd, Buffer.alloc(512), 0, 512, Number(entry.readBigUInt64BE(0)));
  closeSync(fd);
}

test('a backup in the original daemon layout (no manifest) restores, with what could not be verified said', async () => {
  const w = await world('rs-perl');
  const data = new GuestData(w);
  await data.write('perl-time', 0x7e, '0', '1M');
  // what prov-backup-kvm left for a running VM: virsh save, the frozen image, XML, LDIF, `.<ou>` suffixes
  const ou = '20140101T010000Z';
  const dir = backupDirOf(w, ou);
  mkdirSync(dir, { recursive: true });
  const xml = await w.virsh.dumpXml(w.vm, { inactive: true });
  await w.virsh.save(w.vm, join(dir, `${w.vm}.state.${ou}`), 'running');
  execFileSync('cp', ['--sparse=always', w.disks[0]!.path, join(dir, `${w.vm}-vda.disk.qcow2.${ou}`)]);
  writeFileSync(join(dir, `${w.vm}.xml.${ou}`), xml);
  writeFileSync(join(dir, `${w.vm}.ldif.${ou}`), `dn: sstVirtualMachine=${w.vm},ou=virtual machines,${DEMO_SERVICE_SUBTREE}\n`);
  await w.virsh.start(w.vm);
  await data.write('later', 0xb2, '2M', '1M');
  const dn = leafDn(DEMO_SERVICE_SUBTREE, w.vm, ou);
  await w.directory.add(dn, { ...newLeafAttributes(ou, 'finished'), sstProvisioningState: '20140101T011500Z' });

  const outcome = await (await startRestore(w, { leafDn: dn, confirmed: true })).result();
  assert.equal(outcome.verified, 'none');
  assert.ok(outcome.warnings.some((m) => /no manifest/.test(m)), outcome.warnings.join('; '));
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'restored' });
  await data.assertImage(w.disks[0]!.path, 'vda', ['perl-time'], 'restored image');

  // and the marker state file of a VM that was not running: defined and started
  const ou2 = '20140102T010000Z';
  const dir2 = backupDirOf(w, ou2);
  mkdirSync(dir2, { recursive: true });
  writeFileSync(join(dir2, `${w.vm}.state.${ou2}`), NOT_RUNNING_STATE_MARKER);
  execFileSync('cp', ['--sparse=always', join(dir, `${w.vm}-vda.disk.qcow2.${ou}`), join(dir2, `${w.vm}-vda.disk.qcow2.${ou2}`)]);
  writeFileSync(join(dir2, `${w.vm}.xml.${ou2}`), xml);
  writeFileSync(join(dir2, `${w.vm}.ldif.${ou2}`), 'dn: x\n');
  const dn2 = leafDn(DEMO_SERVICE_SUBTREE, w.vm, ou2);
  await w.directory.add(dn2, { ...newLeafAttributes(ou2, 'finished'), sstProvisioningState: '20140102T011500Z' });
  const outcome2 = await (await startRestore(w, { leafDn: dn2, confirmed: true })).result();
  assert.equal(outcome2.result?.how, 'started');
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'booted' });
});


test('through the watcher: the vm-manager cancels at the confirmation point (finished, state 0) and the retain files go', async () => {
  const { w, data, leaf } = await backedUpWorld('rs-vmm-cancel');
  const watcher = await startTestWatcher(w);
  cleanups.push(() => watcher.stop());
  await request(w, leaf.dn, 'unretainSmallFiles');
  await waitForLeaf(w, leaf.dn, 'unretainedSmallFiles + stamp', (s) => s?.mode === 'unretainedSmallFiles' && processed(s));
  assert.ok(existsSync(join(retainIterationDir(w, leaf.ou), `${w.vm}.ldif.${leaf.ou}`)), 'the LDIF waits in retain for the operator');
  // the operator says no: vm-manager writes finished with state 0 (docs/restore.md, Confirmation)
  await w.directory.modify(leaf.dn, { sstProvisioningMode: 'finished', sstProvisioningState: '0' });
  await waitForLeaf(w, leaf.dn, 'finished + stamp', (s) => s?.mode === 'finished' && processed(s));
  assert.equal(existsSync(retainIterationDir(w, leaf.ou)), false, 'no retain files left');
  assert.equal((await readLeaf(w, leaf.dn)).returnValue, '0');
  assert.equal((await w.virsh.state(w.vm)).state, 'running');
  await data.assertImage(w.disks[0]!.path, 'vda', ['backed-up', 'later'], 'live image untouched');
});

test('the state cannot be restored: started anyway when the effective configuration says ForceStart, else 21', async () => {
  // the pool's configuration (not the leaf, as the original read it) sets ForceStart
  const w = await createWorld({ label: 'rs-force' });
  const workers = await w.startWorkers({ wrapNodeDeps: (d) => ({ ...d, virsh: failing(d.virsh, 'restore', 99) }) });
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  const data = new GuestData(w);
  await data.write('backed-up', 0xa1, '0', '2M');
  const leaf = await backupNow(w);
  await data.write('later', 0xb2, '4M', '1M');

  const refused = await (await startRestore(w, { leafDn: leaf.dn, confirmed: true, attempts: 1 })).result().then(
    () => assert.fail('without ForceStart the restore fails'),
    (e: unknown) => e,
  );
  assert.equal(codeOf(refused), Code.CANNOT_RESTORE_MACHINE);
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'shut off', reason: 'unknown' }, 'left defined on the restored images');
  // the image the restore replaced waits in the retain directory (freed with it once a VM runs)
  const replaced = replacedImagePath(retainIterationDir(w, leaf.ou), fileNames.inBackup(basename(w.disks[0]!.path), leaf.ou));
  await data.assertImage(replaced, 'vda', ['backed-up', 'later'], 'the image the failed restore replaced');

  await w.directory.modify(`ou=backup,sstVirtualMachinePool=${w.pool},ou=virtual machine pools,${DEMO_SERVICE_SUBTREE}`, {
    sstVirtualizationVirtualMachineForceStart: 'TRUE',
  });
  const outcome = await (await startRestore(w, { leafDn: leaf.dn, confirmed: true, attempts: 1 })).result();
  assert.equal(outcome.result?.how, 'forced');
  assert.ok(outcome.warnings.some((m) => /started without it \(sstVirtualizationVirtualMachineForceStart\)/.test(m)), outcome.warnings.join('; '));
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'booted' });
  await data.assertImage(w.disks[0]!.path, 'vda', ['backed-up'], 'restored image');
  assert.equal(existsSync(retainIterationDir(w, leaf.ou)), false, 'the retain directory, the replaced image with it, is gone');
});
