/**
 * One backup of a running VM, end to end on the real stack, with guest writes before the snapshot,
 * during the copy to retain, during the merge and after: the backup holds exactly the snapshot-time
 * bytes, the live image every write, the VM ends on its own image with no overlay left, the leaf
 * shows every phase, and the backup restores with `virsh restore` of its state file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { overlayPath } from '../../core/layout.js';
import type { SnapshotMethod } from '../../core/global-config.js';
import { domainDisks } from '../../core/domain-xml.js';
import { NOT_RUNNING_STATE_MARKER } from '../../core/layout.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { vmDn } from '../../core/naming.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { addLeaf, readLeaf, startBackup, waitForPhase } from '../helpers/backup.js';
import { GuestData } from '../helpers/guest-data.js';
import { createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function world(label: string, extra: Parameters<typeof createWorld>[0] = { label }): Promise<{ w: World; workers: RunningWorkers }> {
  // slow copies and merges so each phase lasts long enough to write into
  const w = await createWorld({ backupIni: { COPY_BANDWIDTH: '24' }, ...extra, label });
  const workers = await w.startWorkers();
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  await w.directory.modify(`ou=backup,sstVirtualMachinePool=${w.pool},ou=virtual machine pools,${DEMO_SERVICE_SUBTREE}`, {
    sstVirtualizationBandwidthMerge: '1',
  });
  return { w, workers };
}

function backupDirOf(w: World, ou: string): string {
  return join(w.paths.backupRoot, 'vm-persistent', w.pool, w.vm, ou);
}

async function backupWithWrites(method: SnapshotMethod) {
  const { w } = await world(`bk-${method}`);
  const data = new GuestData(w);
  const image = w.disks[0]!.path;
  // 16 MiB of data so the copy to retain takes a moment at 24 MiB/s
  await data.write('before-bulk', 0x10, '8M', '16M');
  await data.write('before', 0xa1, '0', '1M');
  const leaf = await addLeaf(w);
  const handle = await startBackup(w, { leafDn: leaf.dn, snapshotMethod: method });

  await waitForPhase(handle, 'copy to retain');
  await data.write('during-copy', 0xb2, '1M', '2M');
  await waitForPhase(handle, 'merge');
  await data.write('during-merge', 0xc3, '3M', '1M');
  const outcome = await handle.result();
  await data.write('after', 0xd4, '4M', '1M');
  return { w, data, image, leaf, outcome };
}

for (const method of ['live', 'classic'] as const) {
  test(`${method}: backup holds the snapshot-time bytes, the live image every write, the VM its own image`, async () => {
    const { w, data, image, leaf, outcome } = await backupWithWrites(method);
    const dir = backupDirOf(w, leaf.ou);
    const backupImage = join(dir, `${w.vm}-vda.disk.qcow2.${leaf.ou}`);

    assert.equal(outcome.method, method);
    assert.ok(outcome.pauseMs !== undefined && outcome.pauseMs >= 0, `pause measured (${outcome.pauseMs})`);
    await data.assertImage(backupImage, 'vda', ['before-bulk', 'before'], 'backup image');
    await data.assertImage(image, 'vda', ['before-bulk', 'before', 'during-copy', 'during-merge', 'after'], 'live image');

    // on its own image, no overlay, nothing left in retain, no libvirt job
    const devices = await w.virsh.blockDevices(w.vm);
    assert.deepEqual(devices.map((d) => d.source), [image]);
    assert.equal(existsSync(overlayPath(image, leaf.ou)), false, 'overlay removed');
    assert.equal(existsSync(join(w.paths.retainRoot, 'vm-persistent')), false, 'retain directory removed');
    assert.equal((await w.virsh.state(w.vm)).state, 'running');

    // the original layout, a manifest that verifies
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, [`SHA256SUMS.${leaf.ou}`, `${w.vm}-vda.disk.qcow2.${leaf.ou}`, `${w.vm}.ldif.${leaf.ou}`, `${w.vm}.state.${leaf.ou}`, `${w.vm}.xml.${leaf.ou}`, `${w.vm}.backup.json.${leaf.ou}`].sort());
    // the facts the restore puts back: running, persistent, a standalone qcow2
    const facts = JSON.parse(readFileSync(join(dir, `${w.vm}.backup.json.${leaf.ou}`), 'utf8'));
    assert.deepEqual(
      { runState: facts.runState, persistent: facts.persistent, method: facts.method, disks: facts.disks.map((d: { format: string; flattened: boolean }) => [d.format, d.flattened]) },
      { runState: 'running', persistent: true, method, disks: [['qcow2', false]] },
    );
    execFileSync('sha256sum', ['-c', '--quiet', `SHA256SUMS.${leaf.ou}`], { cwd: dir });
    assert.deepEqual(domainDisks(readFileSync(join(dir, `${w.vm}.xml.${leaf.ou}`), 'utf8')).map((d) => [d.source, d.format, d.chain.length]), [[image, 'qcow2', 0]]);
    assert.doesNotMatch(readFileSync(join(dir, `${w.vm}.xml.${leaf.ou}`), 'utf8'), /overlay/);
    const ldif = readFileSync(join(dir, `${w.vm}.ldif.${leaf.ou}`), 'utf8').replace(/\n /g, ''); // unfold
    assert.match(ldif, new RegExp(`dn: ${vmDn(DEMO_SERVICE_SUBTREE, w.vm)}`));
    assert.match(ldif, /dhcpHWAddress: ethernet/);

    // the leaf mirrored every phase and ended finished with its durations side by side
    const l = await readLeaf(w, leaf.dn);
    assert.equal(l.mode, 'finished');
    assert.equal(l.returnValue, '0');
    assert.match(l.state ?? '', /^\d{8}T\d{6}Z$/);
    for (const p of ['snapshot', 'downtime', 'merge', 'retain'] as const) assert.ok(l.times[p] !== undefined, `execution time ${p}`);
    assert.ok(l.times.merge! >= 500, `merge at 1 MiB/s took ${l.times.merge} ms`);

    // the backup restores: the state file onto the backed-up image
    await w.virsh.destroy(w.vm);
    copyFileSync(backupImage, image);
    await w.virsh.restore(join(dir, `${w.vm}.state.${leaf.ou}`));
    assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'restored' });
    await data.assertImage(image, 'vda', ['before-bulk', 'before'], 'restored image');
  });
}

test('a shut-off VM: no overlay, the marker state file, images copied directly', async () => {
  const { w } = await world('bk-off', { label: 'bk-off', startVm: false });
  const leaf = await addLeaf(w);
  const outcome = await (await startBackup(w, { leafDn: leaf.dn })).result();
  assert.equal(outcome.method, 'offline');
  const dir = backupDirOf(w, leaf.ou);
  assert.equal(readFileSync(join(dir, `${w.vm}.state.${leaf.ou}`), 'utf8'), NOT_RUNNING_STATE_MARKER);
  execFileSync('qemu-img', ['compare', '-U', w.disks[0]!.path, join(dir, `${w.vm}-vda.disk.qcow2.${leaf.ou}`)]);
  assert.equal((await w.virsh.state(w.vm)).state, 'shut off');
  assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
});
