/**
 * One site, two hypervisors: two node worker processes (ENVIRONMENT node A and node B, each its own
 * `kvm-backup worker --node-only`) and one control worker, one Temporal server, one directory, a VM
 * on each node (both nodes share this machine's libvirtd). Every node activity of a backup or a
 * restore runs on the worker of the VM's sstNode, as the history's ActivityTaskStarted identity
 * (`node-worker@<node>/<pid>`) shows; a VM moved to the other node in LDAP is backed up there next
 * time; with node B's worker stopped, node A's backups go on while node B's wait, say so
 * (KvmWaitingFor, `kvm-backup status`), and finish once the worker is back.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { nodeTaskQueue, vmDn } from '../../core/naming.js';
import { SA } from '../../core/search-attributes.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { createTinyVm } from '../../stack/tiny-vm.js';
import { addLeaf, readLeaf, startBackup, startRestore } from '../helpers/backup.js';
import { cli } from '../helpers/cli.js';
import { GuestData } from '../helpers/guest-data.js';
import { uniqueName } from '../helpers/names.js';
import { startNodeWorkerProcess, type NodeProcess } from '../helpers/node-process.js';
import { addVmEntry } from '../helpers/watcher.js';
import { addDiskEntry, createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

/** Which worker started each node activity of a workflow: [activity type, task queue, identity]. */
async function nodeActivityWorkers(handle: WorkflowHandle): Promise<Array<{ activity: string; queue: string; identity: string }>> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Map<string, { activity: string; queue: string }>();
  const out: Array<{ activity: string; queue: string; identity: string }> = [];
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), { activity: s.activityType?.name ?? '?', queue: s.taskQueue?.name ?? '?' });
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const what = scheduled.get(String(started.scheduledEventId))!;
      if (what.queue.startsWith('kvm-backup.node.')) out.push({ ...what, identity: started.identity ?? '' });
    }
  }
  return out;
}

function assertRanOn(workers: Awaited<ReturnType<typeof nodeActivityWorkers>>, node: string, proc: NodeProcess, what: string): void {
  assert.ok(workers.length >= 4, `${what}: ${workers.length} node activities`);
  for (const w of workers) {
    assert.equal(w.queue, nodeTaskQueue(node), `${what}: ${w.activity} scheduled on ${w.queue}`);
    assert.equal(w.identity, `node-worker@${node}/${proc.pid}`, `${what}: ${w.activity} started by ${w.identity}`);
  }
}

test('two nodes: each VM on the worker of its sstNode, a moved VM follows, a stopped node waits and says so', async () => {
  const w = await createWorld({ label: 'two-a' });
  const nodeA = w.node;
  const nodeB = uniqueName('two-b-node');
  // VM B: its own domain and disk, in the same directory, on node B
  const vmB = uniqueName('two-b');
  const diskB = join(w.paths.virtualizationRoot, 'vm-persistent', w.pool, `${vmB}-vda.disk.qcow2`);
  await addVmEntry(w, vmB, nodeB);
  await w.directory.add(`ou=devices,${vmDn(DEMO_SERVICE_SUBTREE, vmB)}`, { objectClass: ['top', 'organizationalUnit'], ou: 'devices' });
  await addDiskEntry(w.directory, vmB, 'vda', diskB);
  const domainB = await createTinyVm({ name: vmB, disks: [{ path: diskB, target: 'vda', sizeMiB: 64 }], memoryMiB: 64, xmlFile: join(w.dir, `${vmB}.xml`) });
  const configB = join(w.dir, 'kvm-backup-b.conf');
  writeFileSync(configB, readFileSync(w.configFile, 'utf8').replace(`ENVIRONMENT = ${nodeA}`, `ENVIRONMENT = ${nodeB}`));
  const worldB: World = { ...w, vm: vmB, node: nodeB, configFile: configB, domain: domainB };
  const control = await w.startWorkers({ node: false });
  const procA = await startNodeWorkerProcess(w);
  let procB = await startNodeWorkerProcess(worldB);
  cleanups.push(async () => {
    await procA.stop();
    await procB.stop();
    await control.shutdown();
    await domainB.remove();
    await w.close();
  });
  assert.notEqual(procA.pid, procB.pid);

  // ---- each VM's backup on its own node, at the same time; a restore of B on B
  const leafA = await addLeaf(w);
  const leafB = await addLeaf(worldB);
  const [backupA, backupB] = await Promise.all([startBackup(w, { leafDn: leafA.dn }), startBackup(worldB, { leafDn: leafB.dn })]);
  const [outA, outB] = await Promise.all([backupA.result(), backupB.result()]);
  assert.equal(outA.node, nodeA);
  assert.equal(outB.node, nodeB);
  assertRanOn(await nodeActivityWorkers(backupA), nodeA, procA, 'backup of A');
  assertRanOn(await nodeActivityWorkers(backupB), nodeB, procB, 'backup of B');
  const restoreB = await startRestore(worldB, { leafDn: leafB.dn, confirmed: true });
  assert.equal((await restoreB.result()).result?.state, 'running');
  const restoreWorkers = await nodeActivityWorkers(restoreB);
  assertRanOn(restoreWorkers, nodeB, procB, 'restore of B');
  const evidence = (await nodeActivityWorkers(backupA)).slice(0, 3).map((x) => `${x.activity}@${x.identity}`);
  console.log(`two nodes: backup of A ${evidence.join(', ')}; B's backup and restore by node-worker@${nodeB}/${procB.pid} (${restoreWorkers.length} restore activities)`);

  // ---- VM A moved to node B in the directory: its next backup runs there
  await w.directory.modify(vmDn(DEMO_SERVICE_SUBTREE, w.vm), { sstNode: nodeB });
  const moved = await addLeaf(w);
  const movedBackup = await startBackup(w, { leafDn: moved.dn });
  assert.equal((await movedBackup.result()).node, nodeB);
  assertRanOn(await nodeActivityWorkers(movedBackup), nodeB, procB, 'backup of A after its move to B');
  await w.directory.modify(vmDn(DEMO_SERVICE_SUBTREE, w.vm), { sstNode: nodeA });

  // ---- node B's worker stopped: A's backup goes on, B's waits and says so, then finishes
  await procB.stop();
  const dataB = new GuestData(worldB);
  await dataB.write('while-b-down', 0x5b, '0', '1M');
  const waitA = await addLeaf(w);
  const waitB = await addLeaf(worldB);
  const stuckB = await startBackup(worldB, { leafDn: waitB.dn });
  const goesA = await startBackup(w, { leafDn: waitA.dn });
  assert.equal((await goesA.result()).node, nodeA, 'A is backed up while B is down');
  assert.equal((await readLeaf(w, waitA.dn)).returnValue, '0');
  // the first wait window is 30 s (workflows/node-wait.ts)
  let waitingFor: string | undefined;
  for (let i = 0; i < 120 && waitingFor === undefined; i++) {
    waitingFor = (await stuckB.describe()).typedSearchAttributes.get(SA.waitingFor);
    if (waitingFor === undefined) await sleep(500);
  }
  assert.equal(waitingFor, nodeB, 'KvmWaitingFor names node B');
  // the list reads visibility, which follows the workflow's own state a moment later
  let listed: string[] = [];
  for (const deadline = Date.now() + 15_000; !listed.includes(stuckB.workflowId) && Date.now() < deadline; await sleep(250)) {
    listed = [];
    for await (const info of w.client.workflow.list({ query: `KvmWaitingFor = '${nodeB}'` })) listed.push(info.workflowId);
  }
  assert.ok(listed.includes(stuckB.workflowId), 'found by the search attribute');
  const status = await cli(w, ['status']);
  assert.equal(status.exitCode, 0, status.stderr);
  const row = status.stdout.split('\n').find((l) => l.includes(stuckB.workflowId));
  assert.match(row ?? '', new RegExp(`RUNNING\\t[^\\t]*waiting for node ${nodeB}`), `status: ${row}`);
  const json = JSON.parse((await cli(w, ['status', '--json'])).stdout) as Array<{ workflowId: string; waitingFor?: string }>;
  assert.equal(json.find((r) => r.workflowId === stuckB.workflowId)?.waitingFor, nodeB);
  assert.equal((await readLeaf(worldB, waitB.dn)).mode, 'snapshotting', 'B has not started: its leaf says so, nothing was touched');

  procB = await startNodeWorkerProcess(worldB);
  const late = await stuckB.result();
  assert.equal(late.node, nodeB);
  assert.equal((await readLeaf(worldB, waitB.dn)).returnValue, '0');
  assertRanOn(await nodeActivityWorkers(stuckB), nodeB, procB, 'the waiting backup of B, after its worker came back');
  assert.equal((await stuckB.describe()).typedSearchAttributes.get(SA.waitingFor), undefined, 'KvmWaitingFor cleared');
  console.log(`two nodes: with node B down, ${stuckB.workflowId} showed "${row?.split('\t')[4]}" and finished on node-worker@${nodeB}/${procB.pid}`);
});
