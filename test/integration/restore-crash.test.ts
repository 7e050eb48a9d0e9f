/**
 * Restores whose node worker is killed with SIGKILL part-way and started again: during the copy of
 * the large files (the copy resumes), and inside restoreVm where it is half done (the VM destroyed
 * but still defined; the image it replaces moved aside, the backup's not yet in its place). Each
 * time the retry finishes the restore: the VM runs from its RAM state on exactly the backup-time
 * bytes, defined again, and nothing is left in the retain directory.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupNow, startRestore, waitForCopyProgress } from '../helpers/backup.js';
import { GuestData } from '../helpers/guest-data.js';
import { startNodeWorkerProcess } from '../helpers/node-process.js';
import { createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

function retainIterationDir(w: World, ou: string): string {
  return join(w.paths.retainRoot, 'vm-persistent', w.pool, w.vm, ou);
}

test('kill -9 of the node worker during the large-file copy: the restore completes after the restart', async () => {
  const w = await createWorld({ label: 'rs-crash', backupIni: { COPY_BANDWIDTH: '12' } });
  const control = await w.startWorkers({ node: false });
  let worker = await startNodeWorkerProcess(w);
  cleanups.push(async () => {
    await worker.stop();
    await control.shutdown();
    await w.close();
  });
  const data = new GuestData(w);
  await data.write('bulk', 0x20, '8M', '24M');
  await data.write('bulk2', 0x21, '32M', '24M');
  await data.write('backed-up', 0xa1, '0', '1M');
  const leaf = await backupNow(w);
  await data.write('later', 0xb2, '4M', '1M');
  // the restore's copy at 6 MiB/s (about 8 s), so the kill lands while it runs and after a heartbeat
  // with its bytes reached the server (sent every 0.8 × the 3 s timeout); the backup ran at 12
  await worker.stop();
  const ini = readFileSync(w.configFile, 'utf8');
  assert.ok(ini.includes('COPY_BANDWIDTH = 12'), ini);
  writeFileSync(w.configFile, ini.replace('COPY_BANDWIDTH = 12', 'COPY_BANDWIDTH = 6'));
  worker = await startNodeWorkerProcess(w);

  const handle = await startRestore(w, { leafDn: leaf.dn, confirmed: true, heartbeatTimeout: '3 seconds' });
  await waitForCopyProgress(handle, (p) => p.activity === 'unretainLargeFiles' && p.bytes > 0, 60_000);
  await worker.kill9();
  assert.equal((await w.virsh.state(w.vm)).state, 'running', 'the VM is untouched while files are unretained');
  worker = await startNodeWorkerProcess(w);
  const outcome = await handle.result();
  assert.ok(outcome.resumedBytes > 0, `the copy resumed (${outcome.resumedBytes} bytes not copied again)`);
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'restored' });
  await data.assertImage(w.disks[0]!.path, 'vda', ['bulk', 'bulk2', 'backed-up'], 'restored image');
});

// where restoreVm can die half done: the VM destroyed but still defined; the image it replaces moved
// aside but the backup's not yet in its place (the retry must finish both, never lose an image)
for (const [where, crash] of [
  ['after the VM was destroyed, before it was undefined', { activity: 'restoreVm', call: 'virsh.destroy', when: 'after' }],
  ['between the two renames that put the image back', { activity: 'restoreVm', call: 'files.rename', nth: 1, when: 'after' }],
] as const) {
  test(`kill -9 of the node worker in restoreVm ${where}: the restore completes after the restart`, async () => {
    const w = await createWorld({ label: `rs-vm-${crash.call.split('.')[1]}` });
    const control = await w.startWorkers({ node: false });
    const markFile = join(w.dir, 'crash-mark');
    let worker = await startNodeWorkerProcess(w, { ...crash, markFile });
    cleanups.push(async () => {
      await worker.stop();
      await control.shutdown();
      await w.close();
    });
    const data = new GuestData(w);
    await data.write('backed-up', 0xa1, '0', '2M');
    const leaf = await backupNow(w);
    await data.write('later', 0xb2, '4M', '1M');
    const handle = await startRestore(w, { leafDn: leaf.dn, confirmed: true, heartbeatTimeout: '3 seconds' });
    const ended = await Promise.race([worker.exited.then(() => 'crashed'), handle.result().then(() => 'completed', () => 'failed')]);
    assert.equal(ended, 'crashed', `the restore ${ended} before the worker died in restoreVm`);
    assert.match(readFileSync(markFile, 'utf8'), new RegExp(crash.call.replace('.', '\\.')));
    worker = await startNodeWorkerProcess(w);
    const outcome = await handle.result();
    assert.equal(outcome.result?.how, 'restored');
    assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'restored' });
    assert.equal(await w.virsh.isPersistent(w.vm), true, 'defined again');
    await data.assertImage(w.disks[0]!.path, 'vda', ['backed-up'], 'restored image');
    assert.equal(existsSync(retainIterationDir(w, leaf.ou)), false, 'no retain files left (nor the replaced image)');
  });
}

