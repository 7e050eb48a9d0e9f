/**
 * Crash-resume: the node worker is killed with SIGKILL in the middle of each phase and started again;
 * the same backup completes with the same guarantees (backup = snapshot-time bytes, live image = all
 * writes, VM on its own image, no overlay), copies resume instead of starting over, and no copier
 * outlives the killed worker.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { overlayPath } from '../../core/layout.js';
import type { SnapshotMethod } from '../../core/global-config.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { addLeaf, readLeaf, startBackup, waitForCopyProgress, waitForPhase } from '../helpers/backup.js';
import { GuestData } from '../helpers/guest-data.js';
import { alive, commandOf, startNodeWorkerProcess, type NodeProcess } from '../helpers/node-process.js';
import { createWorld } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

/**
 * Where each case kills the worker. A phase must still be running when the test acts, so none is
 * caught by timing alone: the copy runs for 8 s and the kill waits until a heartbeat carrying its
 * bytes reached the server (the SDK sends them every 0.8 × the 3 s timeout); the merge has 3 MiB,
 * written during the copy, to commit at 1 MiB/s; the export (renames of a tenth of a second) dies
 * by itself between its first and second rename (test/helpers/crashing-node-worker.ts).
 */
const cases: Array<{ phase: string; method: SnapshotMethod; resumes: boolean; bandwidthMiB: string }> = [
  { phase: 'snapshot', method: 'classic', resumes: false, bandwidthMiB: '12' },
  { phase: 'copy to retain', method: 'live', resumes: true, bandwidthMiB: '6' },
  { phase: 'merge', method: 'live', resumes: false, bandwidthMiB: '12' },
  { phase: 'export', method: 'live', resumes: false, bandwidthMiB: '12' },
];

for (const c of cases) {
  test(`kill -9 of the node worker during ${c.phase} (${c.method}): the backup completes`, async () => {
    // copies of a 48 MiB image at 12 MiB/s (6 MiB/s, 8 s, where the copy is killed) and a 1 MiB/s merge
    const w = await createWorld({ label: `crash-${c.phase.split(' ')[0]}`, backupIni: { COPY_BANDWIDTH: c.bandwidthMiB } });
    const control = await w.startWorkers({ node: false });
    const dies = c.phase === 'export' ? { activity: 'exportBackup', call: 'files.rename', nth: 2, when: 'after' as const } : undefined;
    let worker: NodeProcess = await startNodeWorkerProcess(w, dies);
    cleanups.push(async () => {
      await worker.stop();
      await control.shutdown();
      await w.close();
    });
    await w.directory.modify(`ou=backup,sstVirtualMachinePool=${w.pool},ou=virtual machine pools,${DEMO_SERVICE_SUBTREE}`, {
      sstVirtualizationBandwidthMerge: '1',
    });
    const data = new GuestData(w);
    await data.write('bulk', 0x20, '8M', '24M');
    await data.write('bulk2', 0x21, '32M', '24M');
    await data.write('before', 0xa1, '0', '1M');
    const leaf = await addLeaf(w);
    const handle = await startBackup(w, { leafDn: leaf.dn, snapshotMethod: c.method, heartbeatTimeout: '3 seconds' });

    const written = ['bulk', 'bulk2', 'before'];
    if (c.phase === 'merge') {
      await waitForPhase(handle, 'copy to retain');
      await data.write('overlay', 0xc3, '5M', '3M');
      written.push('overlay');
    }
    const copiers: number[] = [];
    if (dies) {
      await Promise.race([worker.exited, sleep(120_000).then(() => assert.fail('the worker did not die in exportBackup'))]);
    } else {
      await waitForPhase(handle, c.phase);
      if (c.phase === 'copy to retain' || c.phase === 'merge') {
        await data.write('during', 0xb2, '1M', '2M');
        written.push('during');
      }
      if (c.phase === 'copy to retain') {
        await waitForCopyProgress(handle, (p) => p.bytes > 0, 30_000);
      } else {
        await sleep(c.phase === 'merge' ? 1_000 : 300);
      }
      copiers.push(...worker.children());
      await worker.kill9();
    }
    await sleep(1_500);
    for (const pid of copiers) assert.equal(alive(pid), false, `child ${pid} of the killed worker still runs: ${commandOf(pid)}`);
    worker = await startNodeWorkerProcess(w);
    const outcome = await handle.result();

    if (c.resumes) assert.ok(outcome.resumedBytes > 0, `the ${c.phase} copy resumed (resumed ${outcome.resumedBytes} bytes)`);
    const image = w.disks[0]!.path;
    const backupImage = join(w.paths.backupRoot, 'vm-persistent', w.pool, w.vm, leaf.ou, `${w.vm}-vda.disk.qcow2.${leaf.ou}`);
    await data.assertImage(backupImage, 'vda', ['bulk', 'bulk2', 'before'], 'backup image');
    await data.write('after', 0xd4, '4M', '1M');
    await data.assertImage(image, 'vda', [...written, 'after'], 'live image');
    assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), [image]);
    assert.equal((await w.virsh.state(w.vm)).state, 'running');
    assert.equal(existsSync(overlayPath(image, leaf.ou)), false, 'overlay removed');
    const l = await readLeaf(w, leaf.dn);
    assert.equal(l.mode, 'finished');
    assert.equal(l.returnValue, '0');
  });
}
