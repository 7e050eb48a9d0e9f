/**
 * A fleet on the real Temporal server and slapd, with simulated hypervisors (test/helpers/simulated-nodes.ts:
 * a node worker per node whose backup activities sleep): a scheduled run of 24 VMs over 3 nodes with
 * [Backup] MAX_CONCURRENT_BACKUPS = 2 never has more than 2 backups (or snapshots) on one node, yet
 * reaches 2 on every node; a backup started beside it waits for its node's slot and says so; one of
 * two control workers stops in the middle and another starts, and the limit still holds; the run's
 * own history holds one child per batch (not one per VM), each batch at most 4 VMs here. A holder
 * that is terminated without giving its slot back loses it at the next liveness check.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NativeConnection } from '@temporalio/worker';
import { connectWorker } from '../../adapters/temporal/connection.js';
import { leafDn, leafTimestamp, nodeSlotsWorkflowId, parseValidLeafDn, workflowIdForLeaf } from '../../core/naming.js';
import { waitingForSlotPhase, type NodeSlotsState } from '../../core/node-slots.js';
import type { ScheduledGroupInput } from '../../core/scheduled-group.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { backupProgressQuery, nodeSlotsStateQuery } from '../../workflows/definitions.js';
import { nodeSlotsWorkflow } from '../../workflows/index.js';
import type { ScheduledBackupOutcome } from '../../workflows/scheduled-backup.js';
import { addFleetVms, fleetVms, type FleetVm } from '../helpers/fleet.js';
import { temporalTarget, uniqueName } from '../helpers/names.js';
import { startSimulatedNodes, type PhaseDurations, type SimulatedNodes } from '../helpers/simulated-nodes.js';
import { createLeaf, leafState, processed } from '../helpers/watcher.js';
import { createWorld, type World } from '../helpers/world.js';

const SLOTS = 2;
let w: World;
let connection: NativeConnection;
let sim: SimulatedNodes;
const control: RunningWorkers[] = [];
let nodes: string[];
let vms: FleetVm[];
/** Four VMs on each node outside the run (extras[i] is on nodes[i % 4]): backups started beside it. */
let extras: FleetVm[];
/** Durations per VM; `slow` VMs (the liveness test) take long. */
const slow = new Set<string>();
const durations = (vm: string): PhaseDurations => {
  if (slow.has(vm)) return { preflight: 10, snapshot: 30_000, copyToRetain: 10, merge: 10, export: 10, rotate: 10 };
  const k = 0.6 + (Number(vm.slice(-2)) % 5) * 0.2; // 0.6 … 1.4: varied, not random
  return { preflight: 40 * k, snapshot: 120 * k, copyToRetain: 220 * k, merge: 80 * k, export: 180 * k, rotate: 20 };
};

before(async () => {
  w = await createWorld({ label: 'fleet', noVm: true, backupIni: { MAX_CONCURRENT_BACKUPS: String(SLOTS) } });
  nodes = ['a', 'b', 'c', 'd'].map((x) => `${w.node}-${x}`);
  // 8 VMs on each of the first three nodes; the fourth node is the liveness test's
  vms = fleetVms(uniqueName('fl'), 24, nodes.slice(0, 3), w.pool);
  extras = fleetVms(uniqueName('fx'), 16, nodes, w.pool);
  await addFleetVms(w.directory, [...vms, ...extras]);
  control.push(await w.startWorkers({ node: false }), await w.startWorkers({ node: false }));
  connection = await connectWorker(temporalTarget());
  sim = await startSimulatedNodes({ connection, namespace: temporalTarget().namespace, nodes, durations, maxConcurrentBackups: SLOTS });
});

after(async () => {
  await sim?.shutdown();
  await connection?.close();
  for (const c of control) await c.shutdown().catch(() => undefined);
  await w?.close();
});

async function startBackup(vm: string, ou: string) {
  const dn = await createLeaf(w, ou, 'initialized', vm);
  return w.client.workflow.start('backupWorkflow', {
    taskQueue: w.controlQueue,
    workflowId: workflowIdForLeaf(parseValidLeafDn(dn), 'backup'),
    args: [{ leafDn: dn }],
  });
}

async function slotsState(node: string): Promise<NodeSlotsState | undefined> {
  try {
    return await w.client.workflow.getHandle(nodeSlotsWorkflowId(node)).query(nodeSlotsStateQuery);
  } catch {
    return undefined; // not running (idle, or between runs)
  }
}

test('a scheduled run of 24 VMs on 3 nodes: at most 2 backups per node at once, every node busy, batches of 4', { timeout: 110_000 }, async () => {
  const input: ScheduledGroupInput = { group: `pool/${w.pool}/fleet`, pool: w.pool, members: vms.map((v) => v.vm), stopOrder: [], startOrder: [], nodes, batchSize: 4 };
  // retention inside the batches: two VMs have two earlier finished backups (the pool keeps 2)
  const old: string[] = [];
  for (const v of vms.slice(0, 2)) for (const days of [3, 2]) old.push(await createLeaf(w, leafTimestamp(new Date(Date.now() - days * 86_400_000)), 'finished', v.vm));
  const run = await w.client.workflow.start('scheduledBackupWorkflow', { taskQueue: w.controlQueue, workflowId: `scheduled-backup/${input.group}-${Date.now()}`, args: [input] });

  // watch the node slots while the run goes on: never more than 2 holders, at most the batch's one more waiting
  const nodeA = nodes[0]!;
  let maxHolders = 0;
  let maxWaiting = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const node of nodes.slice(0, 3)) {
        const s = await slotsState(node);
        if (s) {
          maxHolders = Math.max(maxHolders, s.holders.length);
          maxWaiting = Math.max(maxWaiting, s.waiting.length);
        }
      }
      await sleep(50);
    }
  })();

  // a backup requested beside the run (as the watcher would start it) waits for node A's slot
  const deadline = Date.now() + 30_000;
  while (sim.recorder.activeNow(nodeA) < SLOTS) {
    assert.ok(Date.now() < deadline, 'node A reaches its two slots');
    await sleep(20);
  }
  const extra = await startBackup(extras[0]!.vm, leafTimestamp(new Date()));
  let phase = '';
  for (const until = Date.now() + 10_000; Date.now() < until && phase !== waitingForSlotPhase(nodeA); await sleep(20)) {
    phase = (await extra.query(backupProgressQuery).catch(() => ({ phase: '' }))).phase;
  }
  const extraPhase = phase;

  // one control worker stops in the middle of the run, another takes its place
  await control[0]!.shutdown();
  control.push(await w.startWorkers({ node: false }));

  const outcome = (await run.result()) as ScheduledBackupOutcome;
  await extra.result();
  watching = false;
  await watcher;

  assert.deepEqual(outcome.failed, []);
  assert.deepEqual([...outcome.finished].sort(), vms.map((v) => v.vm).sort());
  assert.deepEqual([...outcome.removed].sort(), [old[0], old[2]].sort(), 'retention removed the oldest finished leaf of the two VMs');
  for (const v of vms) {
    const leaf = await leafState(w, leafDn(DEMO_SERVICE_SUBTREE, v.vm, outcome.ou));
    assert.ok(leaf?.mode === 'finished' && processed(leaf), `${v.vm}: ${JSON.stringify(leaf)}`);
  }
  // the limit held on every node and was reached on every node (the run spread its members)
  for (const node of nodes.slice(0, 3)) {
    assert.equal(sim.recorder.maxActive.get(node), SLOTS, `${node}: backups at once`);
    assert.ok((sim.recorder.maxSnapshots.get(node) ?? 0) <= SLOTS, `${node}: snapshots at once`);
  }
  assert.ok(maxHolders <= SLOTS, `slot holders ${maxHolders}`);
  assert.equal(extraPhase, waitingForSlotPhase(nodeA), 'the extra backup said it waited for a slot on its node');
  assert.ok(maxWaiting <= 2, `waiting at a node's slots: ${maxWaiting} (one of the batch, one extra)`);

  // batches: the run started one child per batch (3 nodes × 2 batches of 4), each batch one per VM
  const events = async (id: string) => {
    const history = await w.client.workflow.getHandle(id).fetchHistory();
    return history.events ?? [];
  };
  const childStarts = (es: Awaited<ReturnType<typeof events>>) => es.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).length;
  assert.equal(childStarts(await events(run.workflowId)), 6, 'the run starts batches, not backups');
  for (const node of nodes.slice(0, 3)) {
    for (const n of [1, 2]) {
      const es = await events(`${run.workflowId}/batch/${node}/${n}`);
      assert.ok(childStarts(es) >= 4 && childStarts(es) <= 5, `batch ${node}/${n} starts its 4 backups (and a delete)`);
      assert.ok(es.length < 120, `batch ${node}/${n}: ${es.length} events`);
    }
  }
});

test('a holder terminated without giving its slot back loses it at the next liveness check', { timeout: 60_000 }, async () => {
  const { vm, node } = extras[3]!;
  // the node's semaphore with a 1 s liveness check, started before the request comes
  await w.client.workflow.start(nodeSlotsWorkflow, { taskQueue: w.controlQueue, workflowId: nodeSlotsWorkflowId(node), args: [{ node, livenessCheckMs: 1_000, idleTimeout: '5 seconds' }] });
  slow.add(vm);
  const first = await startBackup(vm, leafTimestamp(new Date()));
  // granted: its preflight has begun on the node
  for (let until = Date.now() + 10_000; sim.recorder.activeNow(node) !== 1; await sleep(50)) assert.ok(Date.now() < until, 'the backup holds a slot');
  await first.terminate('test: a holder that never gives its slot back');
  const deadline = Date.now() + 15_000; // a 1 s liveness check: 1-2.5 s on a loaded machine
  for (;;) {
    const s = await slotsState(node);
    if (s && s.holders.length === 0) break;
    assert.ok(Date.now() < deadline, `the terminated holder is dropped within the liveness check: ${JSON.stringify(s?.holders)}`);
    await sleep(100);
  }
});

test('a backup cancelled while it waits for its node\'s slot leaves the line; the holders keep theirs', { timeout: 60_000 }, async () => {
  const [a, b, waiting] = [extras[7]!, extras[11]!, extras[15]!];
  const node = a.node;
  slow.add(a.vm);
  slow.add(b.vm);
  const ou = leafTimestamp(new Date());
  const holders = [await startBackup(a.vm, ou), await startBackup(b.vm, ou)];
  // by VM: the previous test's terminated holder never reached its last step, so the node's count keeps it
  for (let until = Date.now() + 25_000; !(sim.recorder.isActive(node, a.vm) && sim.recorder.isActive(node, b.vm)); await sleep(50)) assert.ok(Date.now() < until, 'two backups hold the slots');
  const third = await startBackup(waiting.vm, ou);
  for (let until = Date.now() + 15_000; !(await slotsState(node))?.waiting.some((r) => r.vm === waiting.vm); await sleep(50)) assert.ok(Date.now() < until, 'the third waits in line');
  await third.cancel();
  await assert.rejects(third.result());
  for (let until = Date.now() + 10_000; (await slotsState(node))?.waiting.length; await sleep(50)) assert.ok(Date.now() < until, 'the cancelled request left the line');
  assert.equal((await slotsState(node))?.holders.length, 2, 'the holders keep their slots');
  for (const h of holders) await h.terminate('test: done');
});
