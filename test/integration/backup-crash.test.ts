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
import { addLeaf, readLeaf, startBackup, waitForPhase } from '../helpers/backup.js';
import { GuestData } from '../helpers/guest-data.js';
import { alive, commandOf, startNodeWorkerProcess, type NodeProcess } from '../helpers/node-process.js';
import { createWorld } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

const cases: Array<{ phase: string; method: SnapshotMethod; delayMs: number; resumes: boolean }> = [
  { phase: 'snapshot', method: 'classic', delayMs: 300, resumes: false },
  // past the first progress heartbeat (the SDK sends them every 0.8 × the 3 s timeout)
  { phase: 'copy to retain', method: 'live', delayMs: 3_000, resumes: true },
  { phase: 'merge', method: 'live', delayMs: 1_000, resumes: false },
  // the export moves the retained files by rename (each byte written once): nothing to resume, the
  // worker dies between or before the renames and the retry finishes them
  { phase: 'export', method: 'live', delayMs: 0, resumes: false },
];

for (const c of cases) {
  test(`kill -9 of the node worker during ${c.phase} (${c.method}): the backup completes`, async () => {
    // 12 MiB/s copies of a 48 MiB image and a 1 MiB/s merge: each phase lasts a few seconds
    const w = await createWorld({ label: `crash-${c.phase.split(' ')[0]}`, backupIni: { COPY_BANDWIDTH: '12' } });
    const control = await w.startWorkers({ node: false });
    let worker: NodeProcess = await startNodeWorkerProcess(w);
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

    await waitForPhase(handle, c.phase);
    const during = c.phase === 'copy to retain' || c.phase === 'merge';
    if (during) await data.write('during', 0xb2, '1M', '2M');
    await sleep(c.delayMs);
    const copiers = worker.children();
    await worker.kill9();
    await sleep(1_500);
    for (const pid of copiers) assert.equal(alive(pid), false, `child ${pid} of the killed worker still runs: ${commandOf(pid)}`);
    worker = await startNodeWorkerProcess(w);
    const outcome = await handle.result();

    if (c.resumes) assert.ok(outcome.resumedBytes > 0, `the ${c.phase} copy resumed (resumed ${outcome.resumedBytes} bytes)`);
    const image = w.disks[0]!.path;
    const backupImage = join(w.paths.backupRoot, 'vm-persistent', w.pool, w.vm, leaf.ou, `${w.vm}-vda.disk.qcow2.${leaf.ou}`);
    await data.assertImage(backupImage, 'vda', ['bulk', 'bulk2', 'before'], 'backup image');
    await data.write('after', 0xd4, '4M', '1M');
    await data.assertImage(image, 'vda', ['bulk', 'bulk2', 'before', ...(during ? ['during'] : []), 'after'], 'live image');
    assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), [image]);
    assert.equal((await w.virsh.state(w.vm)).state, 'running');
    assert.equal(existsSync(overlayPath(image, leaf.ou)), false, 'overlay removed');
    const l = await readLeaf(w, leaf.dn);
    assert.equal(l.mode, 'finished');
    assert.equal(l.returnValue, '0');
  });
}
