/**
 * Crash detection in the short node steps (docs/architecture.md, "Crashes"): the node worker is
 * killed with SIGKILL inside each short activity (preflight, rotation, purge of deleted iterations,
 * locate, unretain of the small files, removal of the retain files, the `delete` step, the node
 * probe), with the product's default timeouts, and started again at once. Each time the dead attempt
 * is noticed by its heartbeat timeout and the step retried on the restarted worker, and done, within
 * a minute of the kill (a short step used to be noticed only at its 10-minute start-to-close
 * timeout), while a short step that merely runs long is kept alive by its heartbeats. And a
 * compensation whose node's worker is down waits for it, saying so in its progress, in `status` and in
 * the KvmWaitingFor search attribute, then completes once the worker is back.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { Code } from '../../core/exit-codes.js';
import { overlayPath, suffixedIterationFiles } from '../../core/layout.js';
import { leafDn } from '../../core/naming.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { DEFAULT_HEARTBEAT_TIMEOUT } from '../../workflows/node-proxies.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { backupProgressQuery, deleteWorkflow, probeNodeWorkflow } from '../../workflows/index.js';
import { addLeaf, backupDirOf, readLeaf, startBackup, startRestore } from '../helpers/backup.js';
import { cli } from '../helpers/cli.js';
import type { CrashSpec } from '../helpers/crashing-node-worker.js';
import { startNodeWorkerProcess, type NodeProcess } from '../helpers/node-process.js';
import { createLeaf } from '../helpers/watcher.js';
import { createWorld, type World } from '../helpers/world.js';

let w: World;
let control: RunningWorkers;
let worker: NodeProcess | undefined;
before(async () => {
  w = await createWorld({ label: 'stepcrash' });
  control = await w.startWorkers({ node: false });
});
after(async () => {
  await worker?.stop();
  await control?.shutdown();
  await w?.close();
});

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6);

/**
 * Runs `start` with a node worker that dies at the first adapter call of `activity`'s first attempt,
 * restarts a sound worker as soon as it died, and returns how long after the kill the activity's
 * retry completed (from the workflow's history) and which attempt did it.
 */
async function killedIn(activity: string, start: () => Promise<WorkflowHandle>): Promise<{ handle: WorkflowHandle; afterKillMs: number; attempt: number; lastFailure: string }> {
  const spec: CrashSpec = { activity, call: '*', nth: 1, when: 'before', markFile: join(w.dir, `crash-${activity}`) };
  worker = await startNodeWorkerProcess(w, spec);
  const handle = await start();
  const ended = await Promise.race([worker.exited.then(() => 'crashed'), handle.result().then(() => 'completed', () => 'failed')]);
  assert.equal(ended, 'crashed', `${activity}: the workflow ${ended} before the worker died in it`);
  const killedAt = Date.now();
  assert.ok(existsSync(spec.markFile!), `${activity}: the worker died where it was told to`);
  worker = await startNodeWorkerProcess(w);
  try {
    await handle.result();
  } finally {
    await worker.stop();
    worker = undefined;
  }
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity);
  assert.ok(scheduled, `${activity} was scheduled`);
  const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled.eventId));
  const completed = events.find((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled.eventId));
  assert.ok(started && completed, `${activity} started and completed`);
  return {
    handle,
    afterKillMs: ms(completed.eventTime) - killedAt,
    attempt: started.activityTaskStartedEventAttributes!.attempt ?? 1,
    lastFailure: started.activityTaskStartedEventAttributes!.lastFailure?.message ?? '',
  };
}

/**
 * The backup's preflight and the probe's cases run with the product's default heartbeat timeout
 * (30 s: noticed within a minute); the other steps go through the same node proxies with a 5 s one,
 * which proves the same retry in a sixth of the time (within 20 s).
 */
const SHORT_HEARTBEAT = '5 seconds';

function assertNoticed(activity: string, r: { afterKillMs: number; attempt: number; lastFailure: string }, withinMs = 60_000): void {
  console.log(`${activity}: killed, retried and done ${r.afterKillMs} ms after the kill (attempt ${r.attempt}: ${r.lastFailure})`);
  assert.equal(r.attempt, 2, `${activity}: the second attempt did it`);
  assert.match(r.lastFailure, /heartbeat/i, `${activity}: the dead attempt ended by its heartbeat timeout`);
  assert.ok(r.afterKillMs < withinMs, `${activity}: done ${r.afterKillMs} ms after the kill`);
}

/** A finished iteration of an earlier backup (three files and a manifest) and its finished leaf. */
async function earlierIteration(ou: string): Promise<void> {
  const dir = backupDirOf(w, ou);
  mkdirSync(dir, { recursive: true });
  const names = suffixedIterationFiles(w.vm, ou);
  const files = [names.state, names.xml, `${w.vm}-vda.disk.qcow2.${ou}`];
  for (const f of files) writeFileSync(join(dir, f), `old ${f}`);
  writeFileSync(join(dir, names.manifest), files.map((f) => `${'0'.repeat(64)}  ${f}\n`).join(''));
  await createLeaf(w, ou, 'finished');
}

test('the default heartbeat timeout notices a dead worker within a minute', () => {
  assert.equal(DEFAULT_HEARTBEAT_TIMEOUT, '30 seconds');
});

let lastBackup: { dn: string; ou: string } | undefined;
for (const [activity, earlier] of [
  ['preflight', []],
  ['rotateIterations', ['20200101T000000Z', '20200102T000000Z']],
  ['purgeDeletedIterations', ['20200103T000000Z', '20200104T000000Z']],
] as const) {
  test(`backup: kill -9 of the node worker in ${activity}`, { timeout: 180_000 }, async () => {
    for (const ou of earlier) await earlierIteration(ou);
    const leaf = await addLeaf(w);
    // preflight: the product's timeouts (no heartbeatTimeout in the request)
    const heartbeatTimeout = activity === 'preflight' ? undefined : SHORT_HEARTBEAT;
    const r = await killedIn(activity, () => startBackup(w, { leafDn: leaf.dn, heartbeatTimeout }));
    assertNoticed(activity, r, heartbeatTimeout ? 20_000 : 60_000);
    assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
    for (const ou of earlier) assert.equal(existsSync(backupDirOf(w, ou)), false, `${ou} rotated away`);
    lastBackup = leaf;
  });
}

for (const activity of ['locateBackup', 'unretainSmallFiles', 'cleanupRetain']) {
  test(`restore: kill -9 of the node worker in ${activity}`, { timeout: 180_000 }, async () => {
    assert.ok(lastBackup, 'a backup to restore');
    const leaf = lastBackup;
    const r = await killedIn(activity, () => startRestore(w, { leafDn: leaf.dn, confirmed: true, heartbeatTimeout: SHORT_HEARTBEAT }));
    assertNoticed(activity, r, 20_000);
    assert.equal((await w.virsh.state(w.vm)).state, 'running');
    assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
  });
}

test('delete step: kill -9 of the node worker in deleteIteration', { timeout: 180_000 }, async () => {
  const ou = '20200105T000000Z';
  await earlierIteration(ou);
  const dn = leafDn(DEMO_SERVICE_SUBTREE, w.vm, ou);
  await w.directory.modify(dn, { sstProvisioningMode: 'delete', sstProvisioningState: '0' });
  const r = await killedIn('deleteIteration', () =>
    w.client.workflow.start(deleteWorkflow, { taskQueue: w.controlQueue, workflowId: `test-delete/${w.vm}/${ou}`, args: [{ leafDn: dn, heartbeatTimeout: SHORT_HEARTBEAT }] }),
  );
  assertNoticed('deleteIteration', r, 20_000);
  assert.equal((await readLeaf(w, dn)).mode, 'deleted');
  assert.equal(existsSync(backupDirOf(w, ou)), false);
});

test('node probe: kill -9 of the node worker in probeNode', { timeout: 180_000 }, async () => {
  const r = await killedIn('probeNode', () => w.client.workflow.start(probeNodeWorkflow, { taskQueue: w.controlQueue, workflowId: `test-probe/${w.node}/${Date.now()}`, args: [w.node] }));
  assertNoticed('probeNode', r);
});

test('a short step that runs longer than the heartbeat timeout is not taken for a dead one', { timeout: 120_000 }, async () => {
  // preflight's first adapter call waits 20 s; the heartbeat timeout is 10 s: only heartbeats keep it
  // alive. (With 3 s the SDK sends them every 2.4 s: 0.6 s of slack, too little on a loaded machine.)
  worker = await startNodeWorkerProcess(w, { delayIn: { activity: 'preflight', ms: 20_000 } });
  try {
    const leaf = await addLeaf(w);
    const handle = await startBackup(w, { leafDn: leaf.dn, heartbeatTimeout: '10 seconds' });
    await handle.result();
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'preflight');
    const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled?.eventId));
    const completed = events.find((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled?.eventId));
    assert.equal(started?.activityTaskStartedEventAttributes?.attempt, 1, 'the first attempt of preflight did it');
    assert.ok(ms(completed?.eventTime) - ms(started?.eventTime) >= 20_000, 'and it ran 20 s');
  } finally {
    await worker.stop();
    worker = undefined;
  }
});

test('a compensation waits for its node as long as it takes, and says in status and KvmWaitingFor which node', { timeout: 300_000 }, async () => {
  // the copy of the image to retain fails for good (47) after the snapshot; the worker then dies in the compensation
  const markFile = join(w.dir, 'crash-compensation');
  worker = await startNodeWorkerProcess(w, { activity: 'ensureOnOwnImages', call: '*', markFile, failIn: { activity: 'copyToRetain', call: 'copy', argIncludes: '.disk.qcow2', code: Code.NOT_ENOUGH_DISK_SPACE } });
  const leaf = await addLeaf(w);
  const handle = await startBackup(w, { leafDn: leaf.dn, heartbeatTimeout: '3 seconds' });
  const ended = await Promise.race([worker.exited.then(() => 'crashed'), handle.result().then(() => 'completed', () => 'failed')]);
  assert.equal(ended, 'crashed', 'the worker died in the compensation');
  worker = undefined;
  assert.ok(existsSync(markFile), 'the worker died in the compensation');
  assert.ok(existsSync(overlayPath(w.disks[0]!.path, leaf.ou)), 'the VM runs on its overlay while its node is away');

  // the first wait for the node's worker (30 s) ends: the workflow says so, and goes on waiting
  const deadline = Date.now() + 120_000;
  let waitingFor: unknown;
  while (Date.now() < deadline) {
    waitingFor = (await handle.describe()).typedSearchAttributes.getAll().find((p) => p.key.name === 'KvmWaitingFor')?.value;
    if (waitingFor) break;
    await sleep(1_000);
  }
  assert.equal(waitingFor, w.node, 'KvmWaitingFor names the node');
  const progress = await handle.query(backupProgressQuery);
  assert.equal(progress.waitingFor, w.node);
  assert.equal(progress.phase, `compensating: waiting for node ${w.node}`);
  const status = await cli(w, ['status', '--json']);
  const row = (JSON.parse(status.stdout) as Array<{ workflowId: string; status: string; phase?: string; waitingFor?: string }>).find((x) => x.workflowId === handle.workflowId);
  assert.equal(row?.status, 'RUNNING');
  assert.equal(row?.waitingFor, w.node, status.stdout);
  assert.match((await cli(w, ['status'])).stdout, new RegExp(`waiting for node ${w.node}`));
  const found: string[] = [];
  for await (const x of w.client.workflow.list({ query: `KvmWaitingFor = '${w.node}' AND ExecutionStatus = 'Running'` })) found.push(x.workflowId);
  assert.deepEqual(found, [handle.workflowId], 'the UI can list the workflows waiting for this node');

  // the node is back: the compensation runs, the backup fails with the copy's code, nothing waits any more
  worker = await startNodeWorkerProcess(w);
  await assert.rejects(handle.result());
  const image = w.disks[0]!.path;
  assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), [image]);
  assert.equal((await w.virsh.state(w.vm)).state, 'running');
  assert.equal(existsSync(overlayPath(image, leaf.ou)), false);
  const sa = (await handle.describe()).typedSearchAttributes.getAll();
  assert.equal(sa.find((p) => p.key.name === 'KvmWaitingFor'), undefined, 'KvmWaitingFor removed');
  assert.equal(sa.find((p) => p.key.name === 'KvmExitCode')?.value, Code.NOT_ENOUGH_DISK_SPACE);
  assert.equal((await readLeaf(w, leaf.dn)).returnValue, String(Code.NOT_ENOUGH_DISK_SPACE));
});
