/**
 * Faults from outside in the middle of a backup, on the real stack (docs/vm-shapes.md, Faults):
 * libvirtd restarted during the snapshot, the copy, the merge (its block commit goes on in QEMU and is
 * adopted) and a restore; the VM destroyed during the snapshot, the merge and the export, persistent
 * and transient. Each time: no guest write lost, the VM on its own images, never on an overlay.
 * Restarting libvirtd needs the daemon the test runner started (KVM_BACKUP_LIBVIRTD_OWNED): where
 * it is somebody else's, those tests say so and skip.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { codeOf } from '../../core/failures.js';
import { libvirtDefinitionPath, overlayPath } from '../../core/layout.js';
import { restartLibvirtd } from '../../stack/libvirt.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { addLeaf, backupDirOf, readLeaf, startBackup, startRestore, waitForPhase } from '../helpers/backup.js';
import { delaying } from '../helpers/faults.js';
import { GuestData } from '../helpers/guest-data.js';
import { createWorld, type World } from '../helpers/world.js';
import { restoreProgressQuery } from '../../workflows/definitions.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

const OWNED = process.env['KVM_BACKUP_LIBVIRTD_OWNED'] === '1';
const NOT_OWNED = 'libvirtd was not started by the test runner: another\'s daemon is never restarted';

async function restart(w: World): Promise<void> {
  const pidDir = process.env['KVM_BACKUP_PID_DIR'] ?? join(w.dir, 'pids');
  const { downMs } = await restartLibvirtd(join(w.dir, 'logs'), pidDir);
  console.log(`libvirtd restarted (${downMs} ms without libvirt)`);
}

/**
 * A running VM with 24 MiB of data, slow copies (16 MiB/s) and a slow merge (1 MiB/s) so each phase
 * lasts. With `slowExport` the export (renames: a tenth of a second) waits 3 s before its first rename
 * into the backup root, so a test can act while it runs.
 */
async function world(label: string, o: { slowExport?: boolean } = {}): Promise<{ w: World; data: GuestData }> {
  const w = await createWorld({ label, backupIni: { COPY_BANDWIDTH: '16' } });
  const intoBackupRoot = (...args: unknown[]) => String(args[1]).startsWith(`${w.paths.backupRoot}/`);
  const workers = await w.startWorkers(o.slowExport ? { wrapNodeDeps: (d) => ({ ...d, files: delaying(d.files, 'rename', 3_000, intoBackupRoot) }) } : {});
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  await w.directory.modify(`ou=backup,sstVirtualMachinePool=${w.pool},ou=virtual machine pools,${DEMO_SERVICE_SUBTREE}`, { sstVirtualizationBandwidthMerge: '1' });
  const data = new GuestData(w);
  await data.write('bulk', 0x20, '8M', '24M');
  await data.write('before', 0xa1, '0', '1M');
  return { w, data };
}

/** The VM's disk is its own image again, no overlay, and holds every write. */
async function assertOnOwnImage(w: World, data: GuestData, ou: string, present: string[]): Promise<void> {
  const image = w.disks[0]!.path;
  assert.equal(existsSync(overlayPath(image, ou)), false, 'overlay removed');
  if (await w.virsh.isActive(w.vm).catch(() => false)) {
    assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), [image], 'the VM runs on its own image');
  }
  await data.assertImage(image, 'vda', present, 'live image');
}

/**
 * 3 MiB written while the copy runs, onto the overlay: the merge then commits for at least 3 s at
 * 1 MiB/s (an empty overlay commits in a quarter of a second, too short to be caught reliably).
 */
async function onOverlayBeforeMerge(handle: Awaited<ReturnType<typeof startBackup>>, data: GuestData): Promise<void> {
  await waitForPhase(handle, 'copy to retain');
  await data.write('pre-merge', 0xc3, '5M', '3M');
}

async function assertBackupHolds(w: World, data: GuestData, ou: string, present: string[]): Promise<void> {
  const backupImage = join(backupDirOf(w, ou), `${w.vm}-vda.disk.qcow2.${ou}`);
  await data.assertImage(backupImage, 'vda', present, 'backup image');
}

for (const phase of ['snapshot', 'copy to retain', 'merge'] as const) {
  test(`libvirtd restarted during ${phase}: the backup completes, no write lost, the VM on its own image`, { skip: OWNED ? false : NOT_OWNED }, async () => {
    const { w, data } = await world(`lv-${phase.split(' ')[0]}`);
    const leaf = await addLeaf(w);
    const handle = await startBackup(w, { leafDn: leaf.dn });
    if (phase === 'merge') await onOverlayBeforeMerge(handle, data);
    await waitForPhase(handle, phase);
    if (phase === 'merge') {
      await data.write('on-overlay', 0xb2, '1M', '1M');
      await sleep(1_500); // the block commit is running in QEMU now
    }
    await restart(w);
    const outcome = await handle.result();
    assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
    assert.ok(outcome.pauseMs !== undefined);
    await data.write('after', 0xd4, '4M', '1M');
    await assertBackupHolds(w, data, leaf.ou, ['bulk', 'before']);
    await assertOnOwnImage(w, data, leaf.ou, ['bulk', 'before', 'after', ...(phase === 'merge' ? ['pre-merge', 'on-overlay'] : [])]);
    assert.equal((await w.virsh.state(w.vm)).state, 'running');
  });
}

test('libvirtd restarted during a restore: the restore completes with the backup-time bytes', { skip: OWNED ? false : NOT_OWNED }, async () => {
  const { w, data } = await world('lv-restore');
  const leaf = await addLeaf(w);
  await (await startBackup(w, { leafDn: leaf.dn })).result();
  await data.write('after-backup', 0xe5, '2M', '1M');
  const handle = await startRestore(w, { leafDn: leaf.dn, confirmed: true });
  for (const deadline = Date.now() + 60_000; ; await sleep(50)) {
    const phase = (await handle.query(restoreProgressQuery).catch(() => undefined))?.phase;
    if (phase === 'unretain large files' || phase === 'restore') break;
    assert.ok(Date.now() < deadline, `the restore never reached its large files (phase ${phase})`);
  }
  await restart(w);
  const outcome = await handle.result();
  assert.equal(outcome.result?.state, 'running');
  await data.assertImage(w.disks[0]!.path, 'vda', ['bulk', 'before'], 'restored image');
});

for (const transient of [false, true]) {
  for (const phase of ['snapshot', 'merge', 'export'] as const) {
    test(`${transient ? 'transient' : 'persistent'} VM destroyed during ${phase}: no guest write lost, never left on an overlay`, async () => {
      const { w, data } = await world(`dead-${transient ? 't' : 'p'}-${phase.slice(0, 5)}`, { slowExport: phase === 'export' });
      if (transient) await w.virsh.exec(['undefine', w.vm]); // still running, no definition left
      const leaf = await addLeaf(w);
      const handle = await startBackup(w, { leafDn: leaf.dn });
      if (phase === 'merge') await onOverlayBeforeMerge(handle, data);
      await waitForPhase(handle, phase);
      let written: string[] = [];
      if (phase === 'merge') {
        await data.write('on-overlay', 0xb2, '1M', '1M');
        written = ['pre-merge', 'on-overlay'];
      }
      await w.virsh.destroy(w.vm);
      const code = await handle.result().then(
        () => 0,
        (e) => (e instanceof WorkflowFailedError ? codeOf(e) : -1),
      );
      // stopped before its snapshot there is nothing to back up (5, not retried); stopped after it, the
      // backup completes (the snapshot instant is whole); a destroy racing the snapshot may land either way
      const leafNow = JSON.stringify(await readLeaf(w, leaf.dn));
      if (phase === 'snapshot') assert.ok(code === 5 || code === 0, `exit code ${code} (leaf: ${leafNow})`);
      else assert.equal(code, 0, `exit code (leaf: ${leafNow})`);
      await assertOnOwnImage(w, data, leaf.ou, ['bulk', 'before', ...written]);
      if (code === 0) await assertBackupHolds(w, data, leaf.ou, ['bulk', 'before']);
      if (transient) {
        assert.equal(await w.virsh.exists(w.vm), false, 'a transient VM is not defined behind the operator\'s back');
        // nor at libvirtd's next start: libvirt 9 writes this file for a domain undefined while it ran
        assert.equal(existsSync(libvirtDefinitionPath(w.vm)), false, `${libvirtDefinitionPath(w.vm)} left behind`);
      } else {
        assert.equal((await w.virsh.state(w.vm)).state, 'shut off', 'not started behind the operator\'s back');
        assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), [w.disks[0]!.path], 'defined on its own image');
      }
    });
  }
}
