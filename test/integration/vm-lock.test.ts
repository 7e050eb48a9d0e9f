/**
 * The per-VM lock on the real stack: two backups of one VM never overlap (the second waits in line
 * and runs after the first), a holder that ends without releasing (terminated) frees the lock
 * through the liveness check, and a lock held for long keeps short histories: its own (continued as
 * new with holder and line) and the holder's (the liveness check adds nothing to it).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { vmLockWorkflowId } from '../../core/naming.js';
import { VM_LOCK_SIGNALS, type VmLockState } from '../../core/vm-lock.js';
import { vmLockWorkflow } from '../../workflows/index.js';
import { acquireVmLockSignal, releaseVmLockSignal, vmLockStateQuery } from '../../workflows/definitions.js';
import { addLeaf, readLeaf, startBackup } from '../helpers/backup.js';
import { createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function world(label: string): Promise<World> {
  const w = await createWorld({ label });
  const workers = await w.startWorkers();
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  return w;
}

async function lockState(client: Client, vm: string): Promise<VmLockState | undefined> {
  try {
    return await client.workflow.getHandle(vmLockWorkflowId(vm)).query(vmLockStateQuery);
  } catch {
    return undefined;
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}


test('two backups of one VM run one after the other, never at once', { timeout: 90_000 }, async () => {
  const w = await world('lock-two');
  const first = await addLeaf(w, 'backup');
  const second = await addLeaf(w, 'backup');
  const h1 = await startBackup(w, { leafDn: first.dn });
  const state = await waitFor('the first backup to hold the lock', async () => {
    const s = await lockState(w.client, w.vm);
    return s?.holder?.workflowId === h1.workflowId ? s : undefined;
  });
  assert.equal(state.holder?.operation, 'backup');
  const h2 = await startBackup(w, { leafDn: second.dn });
  const queued = await waitFor('the second backup to wait in line', async () => {
    const s = await lockState(w.client, w.vm);
    return s?.waiting.some((r) => r.workflowId === h2.workflowId) ? s : undefined;
  });
  assert.equal(queued.holder?.workflowId, h1.workflowId, 'the first still holds the lock while the second waits');
  // the waiting backup has not touched its leaf yet
  assert.equal((await readLeaf(w, second.dn)).mode, 'backup');
  await h1.result();
  await h2.result();
  // the second wrote its first answer only after the first had released the lock, its last act (not
  // after its close: the close is one workflow task later and may come after the second's first step)
  const at = (e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
  const firstEvents = (await h1.fetchHistory()).events!;
  const release = firstEvents.find((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName === VM_LOCK_SIGNALS.release);
  assert.ok(release, 'the first released the lock');
  const firstLastStep = firstEvents.filter((e) => e.activityTaskCompletedEventAttributes).at(-1)!;
  const secondHistory = await h2.fetchHistory();
  const firstActivity = secondHistory.events!.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'updateLeaf');
  const scheduledAt = at(firstActivity!);
  assert.ok(scheduledAt >= at(release) && scheduledAt >= at(firstLastStep), `second started work at ${scheduledAt}, first released at ${at(release)}, its last step ended at ${at(firstLastStep)}`);
  assert.equal((await readLeaf(w, first.dn)).mode, 'finished');
  assert.equal((await readLeaf(w, second.dn)).mode, 'finished');
});

test('a holder terminated without releasing frees the lock through the liveness check', { timeout: 90_000 }, async () => {
  const w = await world('lock-dead');
  // a stand-in holder: any running workflow will do; it is terminated below
  const standIn = await w.client.workflow.start(vmLockWorkflow, {
    taskQueue: w.controlQueue,
    workflowId: `test-stand-in/${w.vm}`,
    args: [{ vm: `${w.vm}-other`, idleTimeout: '10 minutes' }],
  });
  const { runId } = await standIn.describe();
  // the VM's lock, started with a short liveness check and held by the stand-in
  await w.client.workflow.signalWithStart(vmLockWorkflow, {
    taskQueue: w.controlQueue,
    workflowId: vmLockWorkflowId(w.vm),
    args: [{ vm: w.vm, livenessCheck: '1 second' }],
    signal: acquireVmLockSignal,
    signalArgs: [{ requestId: 'stand-in', workflowId: standIn.workflowId, runId, operation: 'test' }],
  });
  await waitFor('the stand-in to hold the lock', async () => ((await lockState(w.client, w.vm))?.holder?.requestId === 'stand-in' ? true : undefined));
  const leaf = await addLeaf(w, 'backup');
  const backup = await startBackup(w, { leafDn: leaf.dn });
  await waitFor('the backup to wait in line', async () => ((await lockState(w.client, w.vm))?.waiting.length ? true : undefined));
  await sleep(1_500);
  assert.equal((await readLeaf(w, leaf.dn)).mode, 'backup', 'the backup must not start while the stand-in holds the lock');
  await standIn.terminate('test: a holder that dies');
  const outcome = await backup.result();
  assert.equal(outcome.vm, w.vm);
  assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
});

test('a lock held for long continues as new with its holder and its line; the liveness checks add nothing to the holder', { timeout: 90_000 }, async () => {
  const w = await world('lock-long');
  // stand-in holders: any running workflows will do
  const standIn = (n: number) =>
    w.client.workflow.start(vmLockWorkflow, { taskQueue: w.controlQueue, workflowId: `test-stand-in-${n}/${w.vm}`, args: [{ vm: `${w.vm}-other${n}`, idleTimeout: '10 minutes' }] });
  const holder = await standIn(1);
  const waiter = await standIn(2);
  cleanups.push(async () => {
    for (const h of [holder, waiter, w.client.workflow.getHandle(vmLockWorkflowId(w.vm))]) await h.terminate('test over').catch(() => undefined);
  });
  const request = async (h: WorkflowHandle, requestId: string) =>
    w.client.workflow.signalWithStart(vmLockWorkflow, {
      taskQueue: w.controlQueue,
      workflowId: vmLockWorkflowId(w.vm),
      // a check every second and a limit of 40 events: the lock continues as new every few seconds
      args: [{ vm: w.vm, livenessCheck: '1 second', historyLimit: 40 }],
      signal: acquireVmLockSignal,
      signalArgs: [{ requestId, workflowId: h.workflowId, runId: (await h.describe()).runId, operation: 'test' }],
    });
  await request(holder, 'one');
  await waitFor('the first stand-in to hold the lock', async () => ((await lockState(w.client, w.vm))?.holder?.requestId === 'one' ? true : undefined));
  await request(waiter, 'two');
  await waitFor('the second to wait in line', async () => ((await lockState(w.client, w.vm))?.waiting.length ? true : undefined));
  const holderEvents = (await holder.describe()).historyLength;
  const lock = w.client.workflow.getHandle(vmLockWorkflowId(w.vm));
  const firstRun = (await lock.describe()).runId;

  // three runs later the same request still holds the lock and the same one waits
  const runs = new Set([firstRun]);
  await waitFor('the lock to continue as new twice', async () => {
    runs.add((await lock.describe()).runId);
    return runs.size >= 3 ? true : undefined;
  }, 60_000);
  const state = await lockState(w.client, w.vm);
  assert.equal(state?.holder?.requestId, 'one', 'the holder is carried over');
  assert.deepEqual(state?.waiting.map((r) => r.requestId), ['two'], 'the line is carried over');
  assert.ok((await lock.describe()).historyLength <= 60, 'each run of the lock keeps a short history');
  assert.equal((await holder.describe()).historyLength, holderEvents, 'the liveness checks added no event to the holder');

  // a release sent to the lock's workflow ID reaches the newest run, which grants the next in line
  await lock.signal(releaseVmLockSignal, 'one');
  await waitFor('the second stand-in to hold the lock', async () => ((await lockState(w.client, w.vm))?.holder?.requestId === 'two' ? true : undefined));
});
