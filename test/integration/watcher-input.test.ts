/**
 * Bad input never stops the watcher and never goes unanswered where an answer is possible: missing
 * and garbage attributes, names with filter and DN metacharacters, an ou that would climb out of
 * the backup directory, a VM without a node, a request outside any VM subtree. Requests for another
 * day wait or are dropped as the original did. Restore requests are routed by name to the restore
 * workflow. No workers run here: only what the watcher itself writes and starts is looked at.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError, type WorkflowExecutionDescription } from '@temporalio/client';
import { formatRdn } from '../../core/dn.js';
import { vmBackupDn } from '../../core/naming.js';
import { newLeafAttributes } from '../../core/provisioning.js';
import { localDate } from '../../client/watcher/classify.js';
import { DEMO_CLOUD_WIDE_DN, DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { addVmEntry, createLeaf, leafState, processed, request, startTestWatcher, testOu } from '../helpers/watcher.js';
import { createWorld, type World } from '../helpers/world.js';

let w: World;
let watcher: Awaited<ReturnType<typeof startTestWatcher>>;
const started: string[] = [];
before(async () => {
  w = await createWorld({ label: 'wi', noVm: true });
  watcher = await startTestWatcher(w);
});
after(async () => {
  await watcher?.stop();
  for (const id of started) await w.client.workflow.getHandle(id).terminate('test done').catch(() => undefined);
  await w?.close();
});

async function workflow(id: string, timeoutMs = 10_000): Promise<WorkflowExecutionDescription> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const d = await w.client.workflow.getHandle(id).describe();
      started.push(id);
      return d;
    } catch (e) {
      if (!(e instanceof WorkflowNotFoundError) || Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

/** A leaf with any attributes, below any VM's `ou=backup` (DN built with escaping). */
async function rawLeaf(vm: string, ou: string, attributes: Record<string, string | string[]>): Promise<string> {
  const dn = `${formatRdn('ou', ou)},${vmBackupDn(DEMO_SERVICE_SUBTREE, vm)}`;
  await w.directory.add(dn, { objectClass: ['top', 'organizationalUnit', 'sstProvisioning'], ou, ...attributes });
  return dn;
}

test('bad requests get a clear code, odd ones a log line, and the watcher goes on', { timeout: 60_000 }, async () => {
  const tomorrow = localDate(new Date(Date.now() + 86_400_000));
  const lastWeek = localDate(new Date(Date.now() - 7 * 86_400_000));
  const unknownMode = await createLeaf(w, testOu(), 'frobnicate');
  const noMode = await rawLeaf(w.vm, testOu(), { sstProvisioningState: '0' });
  const badDate = await rawLeaf(w.vm, testOu(), { sstProvisioningMode: 'backup', sstProvisioningState: '0', sstProvisioningExecutionDate: '2026-13-45' });
  const impossibleDate = await rawLeaf(w.vm, testOu(), { sstProvisioningMode: 'backup', sstProvisioningState: '0', sstProvisioningExecutionDate: '20260230' });
  const later = await rawLeaf(w.vm, testOu(), { sstProvisioningMode: 'backup', sstProvisioningState: '0', sstProvisioningExecutionDate: tomorrow });
  const expired = await rawLeaf(w.vm, testOu(), { sstProvisioningMode: 'backup', sstProvisioningState: '0', sstProvisioningExecutionDate: lastWeek });
  const climbing = await rawLeaf(w.vm, '..', { sstProvisioningMode: 'backup', sstProvisioningState: '0' });
  const notATime = await rawLeaf(w.vm, 'yesterday', { sstProvisioningMode: 'backup', sstProvisioningState: '0' });
  // a VM whose name is full of filter and DN metacharacters, on our node
  const evil = 'evil*)(sstNode=*),+"\\<x>;';
  await addVmEntry(w, evil, w.node);
  const evilLeaf = await rawLeaf(evil, testOu(), { sstProvisioningMode: 'backup', sstProvisioningState: '0' });
  const nodeless = `${w.vm}-nodeless`;
  await addVmEntry(w, nodeless, undefined);
  const nodelessLeaf = await createLeaf(w, testOu(), 'backup', nodeless);
  // a request below the cloud-wide configuration: not a VM's leaf
  const outsideOu = testOu();
  const outside = `ou=${outsideOu},${DEMO_CLOUD_WIDE_DN}`;
  await w.directory.add(outside, newLeafAttributes(outsideOu, 'backup'));

  // a good request last: entries are handled in the order they were written, so once its workflow
  // exists every bad one before it has been dealt with
  const goodOu = testOu();
  await createLeaf(w, goodOu, 'backup');
  assert.equal((await workflow(`backup/${w.vm}/${goodOu}`)).type, 'backupWorkflow', 'the watcher is alive and dispatching');

  const answer = async (dn: string) => {
    const s = await leafState(w, dn);
    assert.ok(processed(s), `${dn} answered and stamped: ${JSON.stringify(s)}`);
    return s!.rv;
  };
  assert.equal(await answer(unknownMode), '18');
  assert.equal(await answer(noMode), '18');
  assert.equal(await answer(badDate), '18');
  assert.equal(await answer(impossibleDate), '18');
  assert.equal(await answer(climbing), '39');
  assert.equal(await answer(notATime), '39');
  assert.equal(await answer(evilLeaf), '39');
  assert.equal(await answer(nodelessLeaf), '23');
  // waiting for its day, dropped as the original did, and not ours to answer: untouched
  for (const dn of [later, expired, outside]) assert.equal((await leafState(w, dn))?.state, '0', dn);
  const said = (text: string) => watcher.log.lines.some((l) => l.message.includes(text));
  assert.ok(said('waits for its day'));
  assert.ok(said('a day that has passed'));
  assert.ok(said('outside any VM backup subtree'));
  // nothing but the good request started a workflow
  // (the list reads visibility, a moment behind the workflows: read until the good one shows)
  const good = `backup/${w.vm}/${goodOu}`;
  let ids: string[] = [];
  for (const deadline = Date.now() + 15_000; !ids.includes(good) && Date.now() < deadline; await sleep(250)) {
    ids = [];
    for await (const x of w.client.workflow.list({ query: `TaskQueue = '${w.controlQueue}'` })) ids.push(x.workflowId);
  }
  assert.deepEqual(ids, [good]);
});

test('restore requests are routed by name to the restore workflow, one ID per step', { timeout: 30_000 }, async () => {
  const ou = testOu();
  const dn = await createLeaf(w, ou, 'finished');
  for (const mode of ['unretainSmallFiles', 'unretainLargeFiles', 'restore', 'cleanup']) {
    await request(w, dn, mode);
    const id = `restore/${w.vm}/${ou}/${mode}`;
    const d = await workflow(id);
    assert.equal(d.type, 'restoreWorkflow');
    const history = await w.client.workflow.getHandle(id).fetchHistory();
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    assert.deepEqual(JSON.parse(Buffer.from(input!).toString()), { leafDn: dn, steps: [mode] });
  }
});
