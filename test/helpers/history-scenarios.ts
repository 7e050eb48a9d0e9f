/**
 * The scenarios whose workflow histories the replay test keeps (test/histories/, docs/upgrades.md):
 * each runs the real workflows and control activities on a real Temporal server and slapd, with the
 * stub node worker (test/helpers/stub-node.ts) in place of a hypervisor, and names the workflow runs
 * whose histories are stored. Every scenario uses VMs of its own (directory entries only, no libvirt
 * domain), so their locks and leaves never meet.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { Code } from '../../core/exit-codes.js';
import { dispatchFor, workflowIdFor, workflowInput, type RequestMode } from '../../core/dispatch.js';
import { leafDn, leafTimestamp, nodeSlotsWorkflowId, parseValidLeafDn, poolBackupConfigDn, vmBackupDn, vmDn, vmLockWorkflowId, workflowIdForLeaf } from '../../core/naming.js';
import { newLeafAttributes } from '../../core/provisioning.js';
import type { ScheduledGroupInput } from '../../core/scheduled-group.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { confirmRestoreSignal, nodeSlotsStateQuery, restoreProgressQuery, vmLockStateQuery } from '../../workflows/definitions.js';
import { uniqueName } from './names.js';
import type { StubNodeWorker } from './stub-node.js';
import type { World } from './world.js';

/** One stored history: `test/histories/<file>.json`, the run it comes from, and what it shows. */
export interface Recorded {
  file: string;
  workflowId: string;
  runId?: string;
  /** Whether the run ends failed (the scenario means it to). */
  fails?: boolean;
  about: string;
}

export interface ScenarioContext {
  world: World;
  stub: StubNodeWorker;
}

export interface Scenario {
  name: string;
  run(ctx: ScenarioContext): Promise<Recorded[]>;
}

/** A VM of the world's pool on its node, in the directory only: one file disk `vda`, `ou=backup`. */
export async function addDirectoryVm(world: World, label: string): Promise<string> {
  const vm = uniqueName(label);
  const dn = vmDn(DEMO_SERVICE_SUBTREE, vm);
  await world.directory.add(dn, {
    objectClass: ['top', 'sstVirtualizationVirtualMachine'],
    sstVirtualMachine: vm,
    sstNode: world.node,
    sstVirtualMachinePool: world.pool,
    sstVirtualMachineType: 'persistent',
  });
  await world.directory.add(`ou=devices,${dn}`, { objectClass: ['top', 'organizationalUnit'], ou: 'devices' });
  await world.directory.add(`sstDisk=vda,ou=devices,${dn}`, {
    objectClass: ['top', 'sstVirtualizationVirtualMachineDisk'],
    sstDisk: 'vda',
    sstDevice: 'disk',
    sstType: 'file',
    sstTargetBus: 'virtio',
    sstDriverName: 'qemu',
    sstDriverType: 'qcow2',
    sstSourceFile: `${world.paths.virtualizationRoot}/vm-persistent/${world.pool}/${vm}-vda.disk.qcow2`,
  });
  await world.directory.add(vmBackupDn(DEMO_SERVICE_SUBTREE, vm), { objectClass: ['top', 'organizationalUnit'], ou: 'backup' });
  return vm;
}

/** A leaf of `vm` in `mode`, `daysAgo` days old; a finished one carries the processed stamp. */
export async function addDirectoryLeaf(world: World, vm: string, mode: string, daysAgo = 0): Promise<{ dn: string; ou: string }> {
  const ou = leafTimestamp(new Date(Date.now() - daysAgo * 86_400_000));
  const dn = leafDn(DEMO_SERVICE_SUBTREE, vm, ou);
  const attributes = newLeafAttributes(ou, mode);
  if (mode === 'finished') attributes['sstProvisioningState'] = ou;
  await world.directory.add(dn, attributes);
  return { dn, ou };
}

/** Starts the workflow a leaf request starts, as the watcher does (core/dispatch.ts). */
async function startForMode(world: World, dn: string, mode: RequestMode): Promise<WorkflowHandle> {
  const dispatch = dispatchFor(mode)!;
  return world.client.workflow.start(dispatch.workflow, {
    taskQueue: world.controlQueue,
    workflowId: workflowIdFor(parseValidLeafDn(dn), dispatch),
    args: [workflowInput(dn, dispatch)],
  });
}

/** A one-go restore as the CLI starts it (client/start-leaf-workflow.ts), waiting at the confirmation. */
async function startRestoreOneGo(world: World, dn: string): Promise<WorkflowHandle> {
  return world.client.workflow.start('restoreWorkflow', {
    taskQueue: world.controlQueue,
    workflowId: workflowIdForLeaf(parseValidLeafDn(dn), 'restore'),
    args: [{ leafDn: dn }],
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const done = async (h: WorkflowHandle) => {
  await h.result();
  return h;
};

async function restoreAnswered(world: World, dn: string, decision: boolean): Promise<WorkflowHandle> {
  const h = await startRestoreOneGo(world, dn);
  await until('the restore to wait for its confirmation', async () => ((await h.query(restoreProgressQuery)).awaitingConfirmation ? true : undefined));
  await h.signal(confirmRestoreSignal, decision);
  return done(h);
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'backup one go',
    async run({ world, stub }) {
      const vm = await addDirectoryVm(world, 'one-go');
      // rotation deletes an older iteration; its finished leaf goes too
      const old = await addDirectoryLeaf(world, vm, 'finished', 3);
      stub.rotating([old.ou]);
      const leaf = await addDirectoryLeaf(world, vm, 'backup');
      const h = await done(await startForMode(world, leaf.dn, 'backup'));
      stub.rotating([]);
      return [{ file: 'backup/one-go', workflowId: h.workflowId, about: 'one go: lock, preflight, snapshot, copy to retain, merge, export, rotate (one leaf removed), finished' }];
    },
  },
  {
    name: 'backup step by step',
    async run({ world }) {
      const vm = await addDirectoryVm(world, 'steps');
      const leaf = await addDirectoryLeaf(world, vm, 'snapshot');
      const out: Recorded[] = [];
      for (const step of ['snapshot', 'merge', 'retain'] as const) {
        await world.directory.modify(leaf.dn, { sstProvisioningMode: step, sstProvisioningState: '0' });
        const h = await done(await startForMode(world, leaf.dn, step));
        out.push({ file: `backup/step-${step}`, workflowId: h.workflowId, about: `step by step: the ${step} step alone, answered …ing then …ed` });
      }
      return out;
    },
  },
  {
    name: 'backup failing after the snapshot',
    async run({ world, stub }) {
      const vm = await addDirectoryVm(world, 'fail');
      const leaf = await addDirectoryLeaf(world, vm, 'backup');
      stub.failing({ mergeBack: Code.CANNOT_MERGE_DISK_IMAGES });
      try {
        const h = await startForMode(world, leaf.dn, 'backup');
        await h.result().then(
          () => assert.fail('the backup with a failing merge succeeded'),
          () => undefined,
        );
        return [{ file: 'backup/failure-compensation', workflowId: h.workflowId, fails: true, about: 'mergeBack fails with 11: compensation (ensureOnOwnImages), the code on the leaf, the failure notification' }];
      } finally {
        stub.failing({});
      }
    },
  },
  {
    name: 'restore one go, confirmed',
    async run({ world }) {
      const vm = await addDirectoryVm(world, 'restore-yes');
      const leaf = await addDirectoryLeaf(world, vm, 'finished', 1);
      const h = await restoreAnswered(world, leaf.dn, true);
      return [{ file: 'restore/one-go-confirmed', workflowId: h.workflowId, about: 'one go: locate, unretain small files, confirmation (yes), unretain large files, restore, remove retain files' }];
    },
  },
  {
    name: 'restore one go, cancelled at the confirmation',
    async run({ world }) {
      const vm = await addDirectoryVm(world, 'restore-no');
      const leaf = await addDirectoryLeaf(world, vm, 'finished', 1);
      const h = await restoreAnswered(world, leaf.dn, false);
      return [{ file: 'restore/one-go-cancelled', workflowId: h.workflowId, about: 'one go: unretain small files, confirmation (no), cleanup, finished' }];
    },
  },
  {
    name: 'restore step by step',
    async run({ world }) {
      const vm = await addDirectoryVm(world, 'restore-steps');
      const leaf = await addDirectoryLeaf(world, vm, 'finished', 1);
      const out: Recorded[] = [];
      for (const step of ['unretainSmallFiles', 'unretainLargeFiles', 'restore', 'cleanup'] as const) {
        await world.directory.modify(leaf.dn, { sstProvisioningMode: step, sstProvisioningState: '0' });
        const h = await done(await startForMode(world, leaf.dn, step));
        out.push({ file: `restore/step-${step}`, workflowId: h.workflowId, about: `vm-manager's ${step} step alone` });
      }
      return out;
    },
  },
  {
    name: 'delete',
    async run({ world }) {
      const vm = await addDirectoryVm(world, 'delete');
      const leaf = await addDirectoryLeaf(world, vm, 'finished', 5);
      await world.directory.modify(leaf.dn, { sstProvisioningMode: 'delete', sstProvisioningState: '0' });
      const h = await done(await startForMode(world, leaf.dn, 'delete'));
      return [{ file: 'delete/delete', workflowId: h.workflowId, about: 'the delete step: lock, deleting, deleteIteration, deleted' }];
    },
  },
  {
    name: 'retention',
    async run({ world }) {
      // three finished iterations, the pool keeps two: the oldest is deleted (a delete child) and its leaf removed
      const vm = await addDirectoryVm(world, 'retention');
      for (const days of [3, 2, 1]) await addDirectoryLeaf(world, vm, 'finished', days);
      const h = await done(
        await world.client.workflow.start('retentionWorkflow', {
          taskQueue: world.controlQueue,
          workflowId: `retention/${vm}`,
          args: [{ vm }],
        }),
      );
      return [{ file: 'retention/prune', workflowId: h.workflowId, about: "a VM's retention applied now: retentionOf, finishedLeavesBeyond, a delete child, removeDeletedLeaf" }];
    },
  },
  {
    name: 'verify',
    async run({ world }) {
      const vm = await addDirectoryVm(world, 'verify');
      const leaf = await addDirectoryLeaf(world, vm, 'finished', 1);
      const h = await done(
        await world.client.workflow.start('verifyWorkflow', {
          taskQueue: world.controlQueue,
          workflowId: workflowIdForLeaf(parseValidLeafDn(leaf.dn), 'verify'),
          args: [{ leafDn: leaf.dn }],
        }),
      );
      return [{ file: 'verify/verify', workflowId: h.workflowId, about: 'verify in place: locate, verifyBackup' }];
    },
  },
  {
    name: 'scheduled run of a small group',
    async run({ world }) {
      // a and b in the sequence (stop b, a; start a, b), c beside them in one go; a has two older finished iterations
      const [a, b, c] = [await addDirectoryVm(world, 'sched-a'), await addDirectoryVm(world, 'sched-b'), await addDirectoryVm(world, 'sched-c')];
      await addDirectoryLeaf(world, a, 'finished', 3);
      await addDirectoryLeaf(world, a, 'finished', 2);
      // the pool keeps two iterations (the demo directory's sstBackupNumberOfIterations)
      await world.directory.modify(poolBackupConfigDn(DEMO_SERVICE_SUBTREE, world.pool), { sstBackupNumberOfIterations: '2' });
      const input: ScheduledGroupInput = {
        group: `pool/${world.pool}/record`,
        pool: world.pool,
        members: [a, b, c].sort(),
        stopOrder: [b, a],
        startOrder: [a, b],
        nodes: [world.node],
      };
      const scheduleId = `kvm-backup-schedule/pool/${world.pool}/record`;
      const schedule = await world.client.schedule.create({
        scheduleId,
        spec: { cronExpressions: ['0 3 * * *'] },
        action: { type: 'startWorkflow', workflowType: 'scheduledBackupWorkflow', args: [input], taskQueue: world.controlQueue, workflowId: `scheduled-backup/${input.group}` },
        state: { paused: true, note: 'history recording' },
      });
      try {
        await schedule.trigger();
        const workflowId = await until('the scheduled run to start', async () => (await schedule.describe()).info.recentActions.at(-1)?.action.workflow.workflowId);
        const outcome = (await world.client.workflow.getHandle(workflowId).result()) as { finished: string[]; removed: string[]; steps: string[] };
        assert.deepEqual([...outcome.finished].sort(), [a, b, c].sort(), JSON.stringify(outcome));
        assert.deepEqual(outcome.steps.slice(0, 4), [`snapshot ${b}`, `snapshot ${a}`, `merge ${a}`, `merge ${b}`]);
        assert.equal(outcome.removed.length, 1, 'retention removed the oldest iteration of a');
        return [
          { file: 'scheduled-backup/group', workflowId, about: 'a Schedule fires: leaves created in chunks, sequenced VMs step by step (stop/start order), one in one go in a batch child, retention deletes one iteration' },
          { file: 'scheduled-batch/batch', workflowId: `${workflowId}/batch/${world.node}/1`, about: "the scheduled run's batch of one node: its one-go member backed up (a child), retention applied" },
        ];
      } finally {
        await schedule.delete().catch(() => undefined);
      }
    },
  },
  {
    name: 'vm-lock contention',
    async run({ world, stub }) {
      const vm = await addDirectoryVm(world, 'lock');
      const first = await addDirectoryLeaf(world, vm, 'backup');
      const second = await addDirectoryLeaf(world, vm, 'backup', -1 / 86_400);
      const held = stub.hold('preflight');
      const h1 = await startForMode(world, first.dn, 'backup');
      await held.entered;
      const h2 = await startForMode(world, second.dn, 'backup');
      const lock = world.client.workflow.getHandle(vmLockWorkflowId(vm));
      await until('the second backup to wait in line', async () => ((await lock.query(vmLockStateQuery)).waiting.some((w) => w.workflowId === h2.workflowId) ? true : undefined));
      held.release();
      await h1.result();
      await h2.result();
      return [
        { file: 'vm-lock/contention', workflowId: lock.workflowId, about: 'the lock of one VM: two backups queued, granted in turn, released, idle end' },
        { file: 'backup/waiting-for-lock', workflowId: h2.workflowId, about: 'a backup that waited in line for the VM lock' },
      ];
    },
  },
  {
    name: 'vm-lock held through liveness checks',
    async run({ world, stub }) {
      // the lock started beforehand with a 1 s liveness check: a backup holds it a few seconds, checked by describe
      const vm = await addDirectoryVm(world, 'lock-live');
      const lock = await world.client.workflow.start('vmLockWorkflow', {
        taskQueue: world.controlQueue,
        workflowId: vmLockWorkflowId(vm),
        args: [{ vm, livenessCheck: '1 second', idleTimeout: '5 seconds' }],
      });
      const leaf = await addDirectoryLeaf(world, vm, 'backup');
      const held = stub.hold('preflight');
      const h = await startForMode(world, leaf.dn, 'backup');
      await held.entered;
      await sleep(3_500);
      held.release();
      await h.result();
      return [{ file: 'vm-lock/held-with-liveness-checks', workflowId: lock.workflowId, runId: lock.firstExecutionRunId, about: 'a lock held through a few liveness checks (local activity: describe of the holder), released, idle end' }];
    },
  },
  {
    name: 'node slots contention',
    async run({ world, stub }) {
      // the node has 2 backup slots ([Backup] MAX_CONCURRENT_BACKUPS default): two backups hold them, the third waits
      const vms = [await addDirectoryVm(world, 'slot-a'), await addDirectoryVm(world, 'slot-b'), await addDirectoryVm(world, 'slot-c')];
      const leaves = [];
      for (const vm of vms) leaves.push(await addDirectoryLeaf(world, vm, 'backup'));
      const first = stub.hold('preflight');
      const h1 = await startForMode(world, leaves[0]!.dn, 'backup');
      await first.entered;
      const second = stub.hold('takeSnapshot');
      const h2 = await startForMode(world, leaves[1]!.dn, 'backup');
      await second.entered;
      const h3 = await startForMode(world, leaves[2]!.dn, 'backup');
      const slots = world.client.workflow.getHandle(nodeSlotsWorkflowId(world.node));
      await until('the third backup to wait for a slot', async () => ((await slots.query(nodeSlotsStateQuery)).waiting.some((w) => w.workflowId === h3.workflowId) ? true : undefined));
      const { runId } = await slots.describe();
      first.release();
      second.release();
      await Promise.all([h1.result(), h2.result(), h3.result()]);
      return [
        { file: 'node-slots/contention', workflowId: slots.workflowId, runId, about: "a node's backup slots: two backups hold them, a third waits in line and gets the first slot given back, idle end" },
        { file: 'backup/waiting-for-slot', workflowId: h3.workflowId, about: 'a backup that waited for a slot on its node' },
      ];
    },
  },
  {
    name: 'node probe',
    async run({ world }) {
      const h = await done(
        await world.client.workflow.start('probeNodeWorkflow', { taskQueue: world.controlQueue, workflowId: `probe-node/${world.node}`, args: [world.node] }),
      );
      return [{ file: 'node-probe/probe', workflowId: h.workflowId, about: 'probe of one node through its task queue' }];
    },
  },
];
