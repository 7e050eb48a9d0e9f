/**
 * Bounded histories (docs/architecture.md, "History sizes"): a backup's history does not grow with the
 * time its copies take. The same backup of a VM with 90 MiB of data runs once unthrottled (its copy
 * takes a few seconds) and once at [Backup] COPY_BANDWIDTH = 2 MiB/s (its copy to retain takes about
 * 45 s, nine times the SDK's 5 s heartbeat interval; the export moves the retain files into the backup root by rename, docs/backup.md, so only that
 * copy is throttled); the slow one adds no more history events than the fast one (workflow-task events
 * aside: how tasks fall is timing), and its progress
 * (bytes, total, rate) was visible all along in the copy's heartbeat details. The backup holds its VM
 * lock and its node slot all the while: their liveness checks add nothing to its history either.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { copyProgress } from '../../client/follow.js';
import { addLeaf, startBackup } from '../helpers/backup.js';
import { GuestData } from '../helpers/guest-data.js';
import { createWorld } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

async function backupOf(label: string, bandwidth: string) {
  const w = await createWorld({ label, disks: [{ target: 'vda', sizeMiB: 128 }], backupIni: { COPY_BANDWIDTH: bandwidth } });
  const workers = await w.startWorkers();
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  const data = new GuestData(w);
  await data.write('bulk', 0x42, '0', '90M');
  const leaf = await addLeaf(w);
  // the product's heartbeat timeout (the tests' 5 s leaves 1 s of slack per heartbeat over 45 s)
  const handle = await startBackup(w, { leafDn: leaf.dn, heartbeatTimeout: '30 seconds' });
  // sample the progress while it runs, as `status` and the CLI would
  const seen: Array<{ activity?: string; bytes: number; total: number; rateMiB?: number }> = [];
  let done = false;
  const result = handle.result().finally(() => (done = true));
  while (!done) {
    const p = await copyProgress(handle).catch(() => undefined);
    if (p) seen.push(p);
    await Promise.race([result.catch(() => undefined), sleep(5_000)]);
  }
  const outcome = await result;
  const copyMs = (outcome.times.snapshot ?? 0) + (outcome.times.retain ?? 0);
  // the events the backup itself causes: how its workflow tasks fall (a signal or an activity's end
  // in the same task or the next, 3 events each) depends on timing, not on how long the copy runs
  const events = (await handle.fetchHistory()).events ?? [];
  const own = events.filter((e) => !e.workflowTaskScheduledEventAttributes && !e.workflowTaskStartedEventAttributes && !e.workflowTaskCompletedEventAttributes);
  return { events: own.length, total: events.length, copyMs, seen };
}

test('a copy throttled to run 45 s adds no more history events than one running seconds', { timeout: 600_000 }, async () => {
  const fast = await backupOf('hist-fast', '0');
  const slow = await backupOf('hist-slow', '2');
  console.log(`history events without workflow tasks (all): fast ${fast.events} (${fast.total}, copies ${fast.copyMs} ms), slow ${slow.events} (${slow.total}, copies ${slow.copyMs} ms)`);
  // seconds against three quarters of a minute (a loaded machine may take longer than 3 s for the fast one)
  assert.ok(fast.copyMs < 30_000, `the fast copies took ${fast.copyMs} ms`);
  assert.ok(slow.copyMs > 42_000, `the slow copies took ${slow.copyMs} ms`);
  assert.ok(slow.events <= fast.events, `slow backup: ${slow.events} events, fast: ${fast.events}`);

  // the slow copy was visible all the time: growing bytes, a rate near the limit
  const copying = slow.seen.filter((p) => p.activity === 'copyToRetain' || p.activity === 'exportBackup');
  assert.ok(copying.length >= 7, `progress seen ${copying.length} times in about 9 samples`);
  assert.equal(copying[0]?.activity, 'copyToRetain');
  const rated = copying.filter((p) => p.rateMiB !== undefined);
  const nearLimit = rated.filter((p) => p.rateMiB! > 1 && p.rateMiB! < 4);
  assert.ok(rated.length >= 5 && nearLimit.length >= 0.8 * rated.length, `rates near the 2 MiB/s limit: ${JSON.stringify(rated.map((p) => p.rateMiB))}`);
  const retain = copying.filter((p) => p.activity === 'copyToRetain' && p.total > 80 * 2 ** 20);
  assert.ok(retain.length >= 5 && retain.every((p, i) => i === 0 || p.bytes >= retain[i - 1]!.bytes), 'bytes of the image copy grow');
});
