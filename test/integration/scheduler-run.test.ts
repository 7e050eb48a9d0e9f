/**
 * Scheduled runs on the real stack, fired with Temporal's trigger: the run creates the leaf (ou =
 * the scheduled time in UTC) and backs the VM up; it skips a VM whose previous backup still holds
 * it; retention deletes exactly the oldest finished iterations beyond sstBackupNumberOfIterations;
 * and VMs of one pool are snapshotted in sequenceStop order and brought back in sequenceStart order.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { leafDn, leafTimestamp, parseLeafTimestamp, poolBackupConfigDn, vmBackupDn, vmDn, vmLockWorkflowId } from '../../core/naming.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { createTinyVm, type TinyVm } from '../../stack/tiny-vm.js';
import { vmLockWorkflow } from '../../workflows/index.js';
import type { ScheduledBackupOutcome } from '../../workflows/scheduled-backup.js';
import { acquireVmLockSignal, releaseVmLockSignal } from '../../workflows/definitions.js';
import { uniqueName } from '../helpers/names.js';
import { createLeaf, leafState, processed, startTestWatcher } from '../helpers/watcher.js';
import { createWorld, type World } from '../helpers/world.js';

let w: World;
// an hour half a day away: a test run that crosses the schedule's real time gets no real run mixed in
const cronHour = String((new Date().getUTCHours() + 12) % 24);
let watcher: Awaited<ReturnType<typeof startTestWatcher>>;
const vms: TinyVm[] = [];
before(async () => {
  w = await createWorld({ label: 'sr' });
  await w.startWorkers();
  watcher = await startTestWatcher(w, { scheduler: { debounceMs: 200 } });
  await w.directory.modify(poolBackupConfigDn(DEMO_SERVICE_SUBTREE, w.pool), { sstCronActive: 'TRUE', sstCronMinute: '0', sstCronHour: cronHour });
});
after(async () => {
  await watcher?.stop();
  for await (const s of w.client.schedule.list()) {
    if (s.scheduleId.includes(w.pool)) await w.client.schedule.getHandle(s.scheduleId).delete().catch(() => undefined);
  }
  for (const vm of vms) await vm.remove();
  await w?.close();
});

const scheduleId = () => `kvm-backup-schedule/pool/${w.pool}/0_${cronHour}_*_*_*`;
const iterationDir = (vm: string, ou: string) => join(w.paths.backupRoot, 'vm-persistent', w.pool, vm, ou);

async function scheduleWith(members: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const d = await w.client.schedule.getHandle(scheduleId()).describe().catch(() => undefined);
    if (d && JSON.stringify((d.action.args![0] as { members: string[] }).members) === JSON.stringify(members)) return;
    assert.ok(Date.now() < deadline, `schedule with ${members.join(', ')}`);
    await sleep(100);
  }
}

/** Fires the schedule now and returns the run it started. */
async function fire(): Promise<{ run: WorkflowHandle; at: Date }> {
  const schedule = w.client.schedule.getHandle(scheduleId());
  const before = (await schedule.describe()).info.recentActions.length;
  const at = new Date();
  await schedule.trigger();
  for (;;) {
    const actions = (await schedule.describe()).info.recentActions;
    if (actions.length > before) return { run: w.client.workflow.getHandle(actions.at(-1)!.action.workflow.workflowId), at };
    await sleep(50);
  }
}

/** A finished leaf of an earlier backup, with a stand-in iteration directory (not one rotation would count). */
async function earlierIteration(vm: string, daysAgo: number): Promise<{ ou: string; dn: string; dir: string }> {
  const ou = leafTimestamp(new Date(Date.now() - daysAgo * 86_400_000));
  const dn = await createLeaf(w, ou, 'finished', vm);
  await w.directory.modify(dn, { sstProvisioningState: ou });
  const dir = iterationDir(vm, ou);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${vm}-vda.disk.qcow2.${ou}`), 'an old image');
  return { ou, dn, dir };
}

test('a fired schedule creates the leaf at the scheduled time (UTC), backs up, and retention deletes the oldest beyond the iterations', { timeout: 120_000 }, async () => {
  await scheduleWith([w.vm]);
  // iterations = 2 (the demo pool); three earlier finished backups
  const oldest = await earlierIteration(w.vm, 3);
  const older = await earlierIteration(w.vm, 2);
  const old = await earlierIteration(w.vm, 1);

  // while another operation holds the VM, the run skips it
  const standIn = await w.client.workflow.start(vmLockWorkflow, {
    taskQueue: w.controlQueue,
    workflowId: `test-stand-in/${w.vm}`,
    args: [{ vm: `${w.vm}-stand-in`, idleTimeout: '10 minutes' }],
  });
  await w.client.workflow.signalWithStart(vmLockWorkflow, {
    taskQueue: w.controlQueue,
    workflowId: vmLockWorkflowId(w.vm),
    args: [{ vm: w.vm }],
    signal: acquireVmLockSignal,
    signalArgs: [{ requestId: 'stand-in', workflowId: standIn.workflowId, runId: (await standIn.describe()).runId, operation: 'backup' }],
  });
  const skipped = await fire();
  const skippedOutcome = (await skipped.run.result()) as ScheduledBackupOutcome;
  assert.deepEqual(skippedOutcome.finished, []);
  assert.match(skippedOutcome.skipped[0]?.reason ?? '', /still running/);
  assert.equal(await w.directory.get(leafDn(DEMO_SERVICE_SUBTREE, w.vm, skippedOutcome.ou)), undefined, 'no leaf for a skipped VM');
  await w.client.workflow.getHandle(vmLockWorkflowId(w.vm)).signal(releaseVmLockSignal, 'stand-in');
  await standIn.terminate('test: stand-in done');

  const { run, at } = await fire();
  const outcome = (await run.result()) as ScheduledBackupOutcome;
  // the ou is the scheduled time in UTC (the trigger's time), to the second
  const scheduled = parseLeafTimestamp(outcome.ou)!;
  assert.ok(Math.abs(scheduled.getTime() - at.getTime()) < 5_000, `ou ${outcome.ou} vs fired at ${at.toISOString()}`);
  assert.deepEqual(outcome.finished, [w.vm]);
  const leaf = await leafState(w, leafDn(DEMO_SERVICE_SUBTREE, w.vm, outcome.ou));
  assert.ok(leaf?.mode === 'finished' && processed(leaf) && leaf.rv === '0', JSON.stringify(leaf));
  assert.ok(existsSync(join(iterationDir(w.vm, outcome.ou), `SHA256SUMS.${outcome.ou}`)), 'the backup is in the backup root');

  // retention: the two oldest went (files and leaf), the newest two stay
  assert.deepEqual(outcome.removed, [oldest.dn, older.dn]);
  for (const gone of [oldest, older]) {
    assert.equal(existsSync(gone.dir), false, `${gone.ou} files deleted`);
    assert.equal(await w.directory.get(gone.dn), undefined, `${gone.ou} leaf removed`);
  }
  assert.ok(existsSync(old.dir), 'the newer earlier iteration is kept');
  assert.equal((await leafState(w, old.dn))?.mode, 'finished');
  // the deletions ran as the `delete` step, answering on their leaves before removal
  const del = await w.client.workflow.getHandle(`delete/${w.vm}/${oldest.ou}`).describe();
  assert.equal(del.status.name, 'COMPLETED');
});

test('VMs of one pool: snapshots in sequenceStop order, back on their images in sequenceStart order', { timeout: 120_000 }, async () => {
  const a = w.vm;
  const b = await addVm();
  await scheduleWith([a, b].sort());
  await w.directory.modify(poolBackupConfigDn(DEMO_SERVICE_SUBTREE, w.pool), {
    sstVirtualizationVirtualMachineSequenceStop: [`0: ${b}`, `1: ${a}`],
    sstVirtualizationVirtualMachineSequenceStart: [`0: ${a}`, `1: ${b}`],
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const d = await w.client.schedule.getHandle(scheduleId()).describe();
    if (JSON.stringify((d.action.args![0] as { stopOrder: string[] }).stopOrder) === JSON.stringify([b, a])) break;
    assert.ok(Date.now() < deadline, 'the schedule carries the sequence');
    await sleep(100);
  }
  const { run } = await fire();
  const outcome = (await run.result()) as ScheduledBackupOutcome;
  assert.deepEqual(outcome.finished.sort(), [a, b].sort());
  assert.deepEqual(outcome.steps.slice(0, 4), [`snapshot ${b}`, `snapshot ${a}`, `merge ${a}`, `merge ${b}`]);
  // the order as it really happened, from the step workflows' own times
  const times = async (vm: string, step: string) => {
    const d = await w.client.workflow.getHandle(`backup/${vm}/${outcome.ou}/${step}`).describe();
    return { start: d.startTime.getTime(), close: d.closeTime!.getTime() };
  };
  assert.ok((await times(b, 'snapshot')).close <= (await times(a, 'snapshot')).start, `${b} snapshotted before ${a}`);
  assert.ok((await times(a, 'merge')).close <= (await times(b, 'merge')).start, `${a} back on its image before ${b}`);
  for (const vm of [a, b]) {
    const leaf = await leafState(w, leafDn(DEMO_SERVICE_SUBTREE, vm, outcome.ou));
    assert.ok(leaf?.mode === 'finished' && processed(leaf), `${vm}: ${JSON.stringify(leaf)}`);
    assert.deepEqual((await w.virsh.blockDevices(vm)).length, 1);
  }
});

/** A second running VM in the world's pool on its node, with its disk in the directory. */
async function addVm(): Promise<string> {
  const vm = uniqueName('sr-b');
  const disk = join(w.paths.virtualizationRoot, 'vm-persistent', w.pool, `${vm}-vda.disk.qcow2`);
  vms.push(await createTinyVm({ name: vm, disks: [{ path: disk, target: 'vda', sizeMiB: 64 }], xmlFile: join(w.dir, `${vm}.xml`) }));
  const dn = vmDn(DEMO_SERVICE_SUBTREE, vm);
  await w.directory.add(dn, {
    objectClass: ['top', 'sstVirtualizationVirtualMachine'],
    sstVirtualMachine: vm,
    sstNode: w.node,
    sstVirtualMachinePool: w.pool,
    sstVirtualMachineType: 'persistent',
  });
  await w.directory.add(`ou=devices,${dn}`, { objectClass: ['top', 'organizationalUnit'], ou: 'devices' });
  await w.directory.add(`sstDisk=vda,ou=devices,${dn}`, {
    objectClass: ['top', 'sstVirtualizationVirtualMachineDisk'],
    sstDisk: 'vda',
    sstDevice: 'disk',
    sstType: 'file',
    sstTargetBus: 'virtio',
    sstDriverName: 'qemu',
    sstDriverType: 'qcow2',
    sstSourceFile: disk,
  });
  await w.directory.add(vmBackupDn(DEMO_SERVICE_SUBTREE, vm), { objectClass: ['top', 'organizationalUnit'], ou: 'backup' });
  return vm;
}
