/**
 * The scheduler keeps Temporal Schedules in line with the directory, through the watcher's change
 * feed on the real slapd and Temporal: a pool's schedule switched on, changed, a VM added, one on
 * another node, a VM deleted, a VM excluded. The sstCron* fields are read in the configured time zone.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ScheduleNotFoundError, type ScheduleDescription } from '@temporalio/client';
import { poolBackupConfigDn, vmBackupDn, vmDn } from '../../core/naming.js';
import type { ScheduledGroupInput } from '../../core/scheduled-group.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { addVmEntry, startTestWatcher } from '../helpers/watcher.js';
import { createWorld, type World } from '../helpers/world.js';

let w: World;
let watcher: Awaited<ReturnType<typeof startTestWatcher>>;
before(async () => {
  w = await createWorld({ label: 'sf', noVm: true });
  watcher = await startTestWatcher(w, { scheduler: { timezone: 'Asia/Kolkata', debounceMs: 200 } });
});
after(async () => {
  await watcher?.stop();
  for await (const s of w.client.schedule.list()) {
    if (s.scheduleId.includes(w.pool)) await w.client.schedule.getHandle(s.scheduleId).delete().catch(() => undefined);
  }
  await w?.close();
});

const scheduleId = (cron: string) => `kvm-backup-schedule/pool/${w.pool}/${cron.replaceAll(' ', '_')}`;
const poolConfig = () => poolBackupConfigDn(DEMO_SERVICE_SUBTREE, w.pool);

async function describe(id: string): Promise<ScheduleDescription | undefined> {
  try {
    return await w.client.schedule.getHandle(id).describe();
  } catch (e) {
    if (e instanceof ScheduleNotFoundError) return undefined;
    throw e;
  }
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

const membersOf = (d: ScheduleDescription) => (d.action.args![0] as ScheduledGroupInput).members;

async function scheduleWithMembers(id: string, members: string[]): Promise<ScheduleDescription> {
  return eventually(`${id} with ${members.join(', ')}`, async () => {
    const d = await describe(id);
    return d && JSON.stringify(membersOf(d)) === JSON.stringify(members) ? d : undefined;
  });
}

async function gone(id: string): Promise<void> {
  await eventually(`${id} removed`, async () => ((await describe(id)) ? undefined : true));
}

test('schedules follow the directory', { timeout: 120_000 }, async () => {
  // the demo pool's own configuration has an inactive schedule: it applies as a whole, so none
  await watcher.scheduler!.settled();
  assert.equal(await describe(scheduleId('15 1 * * *')), undefined);
  assert.ok(watcher.log.lines.some((l) => l.message.includes(`VM ${w.vm} has no backup schedule: sstCronActive is not TRUE`)));

  // switched on: one schedule for the pool, in the configured zone (01:15 in Kolkata = 19:45 UTC)
  await w.directory.modify(poolConfig(), { sstCronActive: 'TRUE', sstCronMinute: '15', sstCronHour: '1' });
  let d = await scheduleWithMembers(scheduleId('15 1 * * *'), [w.vm]);
  const next = d.info.nextActionTimes[0]!;
  assert.deepEqual([next.getUTCHours(), next.getUTCMinutes()], [19, 45]);
  assert.equal(d.action.workflowType, 'scheduledBackupWorkflow');
  assert.equal(d.action.taskQueue, w.controlQueue);
  assert.equal(d.policies.overlap, 'SKIP');

  // changed: the old one goes, the new one comes
  await w.directory.modify(poolConfig(), { sstCronHour: '2' });
  await scheduleWithMembers(scheduleId('15 2 * * *'), [w.vm]);
  await gone(scheduleId('15 1 * * *'));

  // a VM added to the pool on our node joins; one on another node does not
  const second = `${w.vm}-b`;
  const elsewhere = `${w.vm}-c`;
  await addVmEntry(w, elsewhere, 'some-other-node');
  await addVmEntry(w, second, w.node);
  d = await scheduleWithMembers(scheduleId('15 2 * * *'), [w.vm, second]);

  // a VM deleted leaves (a deletion shows no changed entry: the watcher notices it by contextCSN)
  await w.directory.deleteTree(vmDn(DEMO_SERVICE_SUBTREE, second));
  await scheduleWithMembers(scheduleId('15 2 * * *'), [w.vm]);

  // a VM excluded by its own configuration entry: the last member gone, the schedule goes too
  await w.directory.modify(vmBackupDn(DEMO_SERVICE_SUBTREE, w.vm), {
    objectClass: ['top', 'organizationalUnit', 'sstVirtualizationBackupObjectClass'],
    sstBackupExcludeFromBackup: 'TRUE',
  });
  await gone(scheduleId('15 2 * * *'));
});

test('garbage in sstCron* is reported and makes no schedule; other sites are never touched', { timeout: 60_000 }, async () => {
  await w.directory.modify(vmBackupDn(DEMO_SERVICE_SUBTREE, w.vm), {
    objectClass: ['top', 'organizationalUnit', 'sstVirtualizationBackupObjectClass', 'sstCronObjectClass'],
    sstBackupExcludeFromBackup: 'FALSE',
    sstCronMinute: '*',
    sstCronHour: '3',
    sstCronDay: '*',
    sstCronMonth: '*',
    sstCronDayOfWeek: '*',
    sstCronActive: 'TRUE',
  });
  await eventually('the reason logged', async () =>
    watcher.log.lines.some((l) => l.message.includes(`VM ${w.vm} has no backup schedule: sstCronMinute "*" selects every minute`)) ? true : undefined,
  );
  // a schedule of another site (another control queue) in the same namespace survives our reconcile
  const foreign = `kvm-backup-schedule/vm/${w.vm}-foreign`;
  await w.client.schedule.create({
    scheduleId: foreign,
    spec: { cronExpressions: ['0 4 * * *'] },
    action: { type: 'startWorkflow', workflowType: 'scheduledBackupWorkflow', args: [{}], taskQueue: 'another-site', workflowId: 'x' },
    memo: { kvmBackupSite: 'another-site' },
  });
  // a valid schedule on the VM's own entry now
  await w.directory.modify(vmBackupDn(DEMO_SERVICE_SUBTREE, w.vm), { sstCronMinute: '5' });
  await eventually('the VM-level schedule', async () => describe(`kvm-backup-schedule/pool/${w.pool}/5_3_*_*_*`));
  await watcher.scheduler!.reconcile();
  assert.ok(await describe(foreign), 'the other site\'s schedule is still there');
  await w.client.schedule.getHandle(foreign).delete();
});
