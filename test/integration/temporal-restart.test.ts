/**
 * Temporal restarted under a running backup and a running restore (docs/architecture.md, "Crashes"):
 * this file runs its own Temporal dev server on a SQLite file in its directory, on a port of its own,
 * and stops and starts it (same file, same port) while a copy runs: for a few seconds under the
 * backup, for longer than the heartbeat timeout under the restore. The watcher, the control worker
 * (in this process) and the node worker (`kvm-backup worker --node-only`, a process of its own) keep
 * running and reconnect by themselves; the backup and the restore, requested on the leaf as
 * fc-brokerd and the vm-manager do, both complete, and the VM is never left paused or on an overlay.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startWatcher, type RunningWatcher } from '../../client/watcher/index.js';
import { recordingLog } from '../../client/watcher/log.js';
import { dispatchFor, workflowIdFor } from '../../core/dispatch.js';
import { overlayPath, suffixedIterationFiles } from '../../core/layout.js';
import { parseValidLeafDn, workflowIdForLeaf } from '../../core/naming.js';
import { freePort } from '../../stack/daemon.js';
import { startTemporalServer, type TemporalServer } from '../../stack/temporal-server.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { phaseQuery } from '../../workflows/index.js';
import { backupDirOf } from '../helpers/backup.js';
import { GuestData } from '../helpers/guest-data.js';
import { alive, startNodeWorkerProcess, type NodeProcess } from '../helpers/node-process.js';
import { testDir } from '../helpers/names.js';
import { createLeaf, processed, request, testOu, waitForLeaf } from '../helpers/watcher.js';
import { createWorld, type World } from '../helpers/world.js';

let temporal: TemporalServer;
let port: number;
let dbFile: string;
let logFile: string;
let w: World;
let control: RunningWorkers;
let node: NodeProcess;
let watcher: RunningWatcher;
const watcherLog = recordingLog();

async function startOwnTemporal(): Promise<TemporalServer> {
  return startTemporalServer({ port, dbFile, logFile });
}

before(async () => {
  const dir = testDir('trestart-temporal');
  port = await freePort();
  dbFile = join(dir, 'temporal.sqlite');
  logFile = join(dir, 'temporal.log');
  temporal = await startOwnTemporal();
  // the world, its workers, its watcher and the node worker process all use this server
  process.env['TEMPORAL_ADDRESS'] = temporal.address;
  // 40 MiB at 4 MiB/s: each copy runs about 10 s, long enough to restart Temporal under it
  w = await createWorld({ label: 'trestart', backupIni: { COPY_BANDWIDTH: '4' } });
  control = await w.startWorkers({ node: false });
  node = await startNodeWorkerProcess(w);
  // the watcher with a Temporal client of its own, as `kvm-backup watch` runs
  watcher = await startWatcher(w.config, { taskQueue: w.controlQueue, nodes: [w.node], pollIntervalMs: 100, scheduler: false, log: watcherLog });
});
after(async () => {
  await watcher?.stop();
  await node?.stop();
  await control?.shutdown();
  await w?.close();
  await temporal?.stop();
});

/** Waits until the workflow's phase is `phase` (queried; Temporal up). */
async function waitForPhase(workflowId: string, phase: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await w.client.workflow.getHandle(workflowId).query(phaseQuery).catch(() => undefined);
    if (p?.phase === phase) return;
    assert.ok(Date.now() < deadline, `${workflowId}: phase ${phase} not reached (now ${p?.phase})`);
    await sleep(100);
  }
}

/** Stops the dev server (SIGTERM), checks the VM meanwhile, starts it again on the same file and port after `awayMs`. */
async function restartTemporal(awayMs: number): Promise<void> {
  await temporal.stop();
  const down = Date.now();
  // while Temporal is away the VM runs on (a copy needs no Temporal); it is not paused
  while (Date.now() - down < awayMs) {
    assert.notEqual((await w.virsh.state(w.vm)).state, 'paused', 'the VM is not paused while Temporal is away');
    await sleep(300);
  }
  temporal = await startOwnTemporal();
  console.log(`Temporal away for ${Date.now() - down} ms`);
}

async function assertVmOnItsImage(ou: string): Promise<void> {
  const image = w.disks[0]!.path;
  assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), [image], 'the VM runs on its own image');
  assert.equal((await w.virsh.state(w.vm)).state, 'running');
  assert.equal(existsSync(overlayPath(image, ou)), false, 'no overlay left');
}

test('Temporal restarted during a backup and during a restore: both complete; workers and watcher reconnect by themselves', { timeout: 600_000 }, async () => {
  const data = new GuestData(w);
  await data.write('bulk', 0x51, '0', '40M');
  const ou = testOu(0.1);
  const dn = await createLeaf(w, ou, 'backup');
  const backupId = workflowIdForLeaf(parseValidLeafDn(dn), 'backup');
  await waitForPhase(backupId, 'copy to retain');
  // a restart as an upgrade or a crash of the server brings: a few seconds
  await restartTemporal(3_000);
  await waitForLeaf(w, dn, 'finished', (s) => s?.mode === 'finished' && processed(s), 240_000);
  assert.equal((await w.directory.get(dn, ['sstProvisioningReturnValue']))?.attributes['sstProvisioningReturnValue']?.[0], '0');
  assert.ok(existsSync(join(backupDirOf(w, ou), suffixedIterationFiles(w.vm, ou).manifest)), 'the backup has its manifest');
  await assertVmOnItsImage(ou);
  await data.assertImage(join(backupDirOf(w, ou), `${w.vm}-vda.disk.qcow2.${ou}`), 'vda', ['bulk'], 'backup image');

  // the restore, step by step as the vm-manager asks for it; Temporal restarts during the large copy
  await data.write('later', 0x52, '48M', '1M');
  await request(w, dn, 'unretainSmallFiles');
  await waitForLeaf(w, dn, 'unretainedSmallFiles', (s) => s?.mode === 'unretainedSmallFiles' && s.rv === '0', 120_000);
  await request(w, dn, 'unretainLargeFiles');
  const restoreId = workflowIdFor(parseValidLeafDn(dn), dispatchFor('unretainLargeFiles')!);
  await waitForPhase(restoreId, 'unretain large files');
  // away longer than the heartbeat timeout (30 s): the running attempt counts as lost when Temporal is
  // back, a second one resumes the copy, the first one learns it was replaced and stops
  await restartTemporal(40_000);
  await waitForLeaf(w, dn, 'unretainedLargeFiles', (s) => s?.mode === 'unretainedLargeFiles' && processed(s), 240_000);
  assert.equal((await w.directory.get(dn, ['sstProvisioningReturnValue']))?.attributes['sstProvisioningReturnValue']?.[0], '0');
  // a request after the restart: the watcher reached the restarted Temporal by itself
  await request(w, dn, 'restore');
  await waitForLeaf(w, dn, 'restored', (s) => s?.mode === 'restored' && processed(s), 120_000);
  assert.equal((await w.directory.get(dn, ['sstProvisioningReturnValue']))?.attributes['sstProvisioningReturnValue']?.[0], '0');
  await assertVmOnItsImage(ou);
  await data.assertImage(w.disks[0]!.path, 'vda', ['bulk'], 'restored image');

  for (const [id, activity] of [[backupId, 'copyToRetain'], [restoreId, 'unretainLargeFiles']] as const) {
    const events = (await w.client.workflow.getHandle(id).fetchHistory()).events ?? [];
    const started = events.find((e) => e.activityTaskStartedEventAttributes && events.find((x) => String(x.eventId) === String(e.activityTaskStartedEventAttributes!.scheduledEventId))?.activityTaskScheduledEventAttributes?.activityType?.name === activity);
    const a = started?.activityTaskStartedEventAttributes;
    console.log(`${activity}: done by attempt ${a?.attempt}${a?.lastFailure ? ` (${a.lastFailure.message})` : ''}; history of ${id}: ${events.length} events`);
  }

  // nobody was restarted but Temporal
  assert.ok(alive(node.pid), 'the node worker process is the one started before');
  assert.ok(control.workers.every((x) => x.getState() === 'RUNNING'), 'the control worker runs on');
  assert.ok(!watcherLog.lines.some((l) => /stopped/.test(l.message)), 'the watcher ran on');
});
