/**
 * Bounded histories (docs/architecture.md, "History sizes"): a backup's history does not grow with the
 * time its copies take. The same backup of a VM with 90 MiB of data runs once unthrottled (its copies
 * take about 3 s) and once at [Backup] COPY_BANDWIDTH = 1 MiB/s (its copies take about 3 minutes);
 * the slow one adds no more history events than the fast one, and its progress (bytes, total, rate)
 * was visible all along in the copy's heartbeat details.
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
  const handle = await startBackup(w, { leafDn: leaf.dn });
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
  return { events: (await handle.describe()).historyLength, copyMs, seen };
}

test('a copy throttled to run 3 minutes adds no more history events than one running 3 seconds', { timeout: 600_000 }, async () => {
  const fast = await backupOf('hist-fast', '0');
  const slow = await backupOf('hist-slow', '1');
  console.log(`history events: fast ${fast.events} (copies ${fast.copyMs} ms), slow ${slow.events} (copies ${slow.copyMs} ms)`);
  // seconds against minutes (a loaded machine may take longer than 3 s for the fast one)
  assert.ok(fast.copyMs < 60_000, `the fast copies took ${fast.copyMs} ms`);
  assert.ok(slow.copyMs > 170_000, `the slow copies took ${slow.copyMs} ms`);
  assert.ok(slow.events <= fast.events, `slow backup: ${slow.events} events, fast: ${fast.events}`);

  // the slow copies were visible all the time: both copy steps, growing bytes, a rate near the limit
  const copying = slow.seen.filter((p) => p.activity === 'copyToRetain' || p.activity === 'exportBackup');
  assert.ok(copying.length >= 25, `progress seen ${copying.length} times in about 36 samples`);
  assert.deepEqual([...new Set(copying.map((p) => p.activity))], ['copyToRetain', 'exportBackup']);
  const rated = copying.filter((p) => p.rateMiB !== undefined);
  const nearLimit = rated.filter((p) => p.rateMiB! > 0.5 && p.rateMiB! < 2);
  assert.ok(rated.length >= 20 && nearLimit.length >= 0.8 * rated.length, `rates near the 1 MiB/s limit: ${JSON.stringify(rated.map((p) => p.rateMiB))}`);
  const retain = copying.filter((p) => p.activity === 'copyToRetain' && p.total > 80 * 2 ** 20);
  assert.ok(retain.length >= 10 && retain.every((p, i) => i === 0 || p.bytes >= retain[i - 1]!.bytes), 'bytes of the image copy grow');
});
