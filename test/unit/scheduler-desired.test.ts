import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desiredSchedules, sequenceOrder, type DirectorySnapshot } from '../../client/scheduler/desired.js';
import { makeEntry } from '../../core/ldap-entry.js';

const config = (dn: string, extra: Record<string, string | string[]> = {}) =>
  makeEntry(dn, {
    objectClass: ['top', 'organizationalUnit', 'sstVirtualizationBackupObjectClass', 'sstCronObjectClass'],
    sstCronMinute: '0', sstCronHour: '3', sstCronDay: '*', sstCronMonth: '*', sstCronDayOfWeek: '*', sstCronActive: 'TRUE',
    ...extra,
  });

function snapshot(): DirectorySnapshot {
  return {
    vms: [
      { vm: 'b', node: 'n1', pool: 'p1' },
      { vm: 'a', node: 'n1', pool: 'p1' },
      { vm: 'c', node: 'n2', pool: 'p1' },
      { vm: 'solo', node: 'n1' },
      { vm: 'own', node: 'n1', pool: 'p1', vmConfig: config('ou=backup,sstVirtualMachine=own', { sstCronHour: '4' }) },
      { vm: 'out', node: 'n1', pool: 'p1', vmConfig: config('ou=backup,sstVirtualMachine=out', { sstBackupExcludeFromBackup: 'TRUE' }) },
      { vm: 'odd', node: 'n1', pool: 'p1', vmConfig: config('ou=backup,sstVirtualMachine=odd', { sstCronMinute: '*' }) },
    ],
    poolConfigs: new Map([['p1', [config('ou=backup,sstVirtualMachinePool=p1', { sstVirtualizationVirtualMachineSequenceStop: ['1: a', '0: b', 'garbage'] })]]]),
    cloud: config('ou=backup,ou=configuration', { sstCronHour: '1' }),
  };
}

test('one schedule per pool and schedule; a VM without a pool alone; other nodes, exclusions and bad crons left out', () => {
  const { schedules, leftOut } = desiredSchedules(snapshot(), ['n1']);
  assert.deepEqual(
    schedules.map((s) => [s.scheduleId, s.cron, s.input.members]),
    [
      ['kvm-backup-schedule/pool/p1/0_3_*_*_*', '0 3 * * *', ['a', 'b']],
      ['kvm-backup-schedule/pool/p1/0_4_*_*_*', '0 4 * * *', ['own']],
      ['kvm-backup-schedule/vm/solo', '0 1 * * *', ['solo']],
    ],
  );
  assert.deepEqual(schedules[0]!.input.stopOrder, ['b', 'a']);
  assert.deepEqual(schedules[0]!.input.startOrder, []);
  assert.deepEqual(schedules[0]!.input.nodes, ['n1']);
  assert.deepEqual(leftOut.map((l) => l.vm).sort(), ['odd', 'out']);
  assert.match(leftOut.find((l) => l.vm === 'out')!.reason, /Exclude/);
});

test('an inactive pool schedule applies as a whole: no schedule, even though the cloud-wide one is active', () => {
  const s = snapshot();
  s.poolConfigs.set('p1', [config('ou=backup,sstVirtualMachinePool=p1', { sstCronActive: 'FALSE' })]);
  const { schedules, leftOut } = desiredSchedules(s, ['n1']);
  assert.deepEqual(schedules.map((x) => x.input.members), [['own'], ['solo']]);
  assert.ok(leftOut.some((l) => l.vm === 'a' && /sstCronActive/.test(l.reason)));
});

test('sequence values: "rank: vm", sorted by rank, garbage reported', () => {
  assert.deepEqual(sequenceOrder(['2: c', '0: a', ' 1 :b ', 'x', '3: a']), { order: ['a', 'b', 'c'], bad: ['x'] });
});

test('names that cannot be schedule IDs are left out with the reason', () => {
  const { schedules, leftOut } = desiredSchedules({ vms: [{ vm: 'a b', node: 'n1' }, { vm: 'ok', node: 'n1', pool: 'p/../x' }], poolConfigs: new Map(), cloud: config('c') }, ['n1']);
  assert.deepEqual(schedules, []);
  assert.deepEqual(leftOut.map((l) => l.vm), ['a b', 'ok']);
});
