/** Which leaves count as a complete backup, which VMs get the freshness gauges, and how the gauges read. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ageSeconds, freshnessOf, isCompleteBackup, newestCompleteBackup, parseGeneralizedTime } from '../../core/backup-freshness.js';
import { BACKUP_OBJECT_CLASS } from '../../core/backup-config.js';
import { makeEntry } from '../../core/ldap-entry.js';
import { WorkerMetrics } from '../../workers/metrics.js';

const OU = '20260301T020000Z';

test('a complete backup: finished or retained with 0, or any restore step; never a failed or unfinished one', () => {
  const yes = [
    { mode: 'finished', returnValue: 0 },
    { mode: 'retained', returnValue: 0 },
    { mode: 'finished' }, // vm-manager's cancel of a restore
    { mode: 'unretainingSmallFiles', returnValue: 5 },
    { mode: 'restored', returnValue: 0 },
    { mode: 'cleaningUp', returnValue: 41 },
  ];
  const no = [
    { mode: 'finished', returnValue: 33 },
    { mode: 'retained', returnValue: 12 }, // rotation failed: answered as a failure
    { mode: 'snapshotting', returnValue: 0 },
    { mode: 'snapshotted', returnValue: 0 },
    { mode: 'merged', returnValue: 0 },
    { mode: 'backup', returnValue: 0 },
    { mode: 'initialized', returnValue: 0 },
    { mode: 'deleting', returnValue: 0 },
    { mode: 'deleted', returnValue: 0 },
    { returnValue: 0 },
  ];
  for (const l of yes) assert.equal(isCompleteBackup({ ou: OU, ...l }), true, JSON.stringify(l));
  for (const l of no) assert.equal(isCompleteBackup({ ou: OU, ...l }), false, JSON.stringify(l));
  assert.equal(isCompleteBackup({ ou: 'not-a-time', mode: 'finished', returnValue: 0 }), false);
});

test('the newest complete backup wins, whatever the order; a newer failed one does not count', () => {
  const at = newestCompleteBackup([
    { ou: '20260303T020000Z', mode: 'snapshotting', returnValue: 33 },
    { ou: '20260302T020000Z', mode: 'finished', returnValue: 0 },
    { ou: '20260301T020000Z', mode: 'finished', returnValue: 0 },
  ]);
  assert.equal(at?.toISOString(), '2026-03-02T02:00:00.000Z');
  assert.equal(newestCompleteBackup([]), undefined);
  assert.equal(parseGeneralizedTime('20260301115900Z')?.toISOString(), '2026-03-01T11:59:00.000Z');
  assert.equal(parseGeneralizedTime('20260301115900.123456Z')?.toISOString(), '2026-03-01T11:59:00.000Z');
  assert.equal(parseGeneralizedTime('yesterday'), undefined);
});

test('VMs excluded from backup get no series; a VM without a backup ages from its creation', () => {
  const cloud = makeEntry('ou=backup,cloud', { objectClass: ['top', BACKUP_OBJECT_CLASS] });
  const excludedConfig = makeEntry('ou=backup,sstVirtualMachine=vm-x,x', { objectClass: ['top', BACKUP_OBJECT_CLASS], sstBackupExcludeFromBackup: 'TRUE' });
  const snapshot = {
    vms: [
      { vm: 'vm-a', node: 'node-01', pool: 'p1', createTimestamp: '20250101000000Z' },
      { vm: 'vm-new', node: 'node-02', createTimestamp: '20260301000000Z' },
      { vm: 'vm-x', node: 'node-01', vmConfig: excludedConfig },
    ],
    poolConfigs: new Map(),
    cloud,
  };
  const leaves = [
    { vm: 'vm-a', ou: '20260228T020000Z', dn: 'a1', mode: 'finished', returnValue: 0 },
    { vm: 'vm-a', ou: '20260301T020000Z', dn: 'a2', mode: 'merging', returnValue: 34 },
    { vm: 'vm-x', ou: '20260301T020000Z', dn: 'x1', mode: 'finished', returnValue: 0 },
  ];
  const f = freshnessOf(snapshot, leaves);
  assert.deepEqual([...f.keys()], ['vm-a', 'vm-new']);
  const now = new Date('2026-03-01T12:00:00Z');
  assert.equal(ageSeconds(f.get('vm-a')!, now), 34 * 3600);
  assert.equal(f.get('vm-new')!.lastSuccess, undefined);
  assert.equal(ageSeconds(f.get('vm-new')!, now), 12 * 3600);
  assert.equal(f.get('vm-new')!.pool, '');
});

test('the gauges: one series per VM, 0 for none, the age computed at the scrape; a VM that left is dropped', async () => {
  const m = new WorkerMetrics();
  const lastSuccess = new Date(Date.now() - 30 * 3600 * 1000);
  m.freshness.set('vm-a', { vm: 'vm-a', node: 'node-01', pool: 'p1', lastSuccess, created: new Date(0) });
  m.freshness.set('vm-b', { vm: 'vm-b', node: 'node-02', pool: '' });
  const text = await m.render();
  assert.match(text, new RegExp(`kvm_backup_last_success_timestamp_seconds\\{vm="vm-a",node="node-01",pool="p1"\\} ${lastSuccess.getTime() / 1000}\\n`));
  assert.match(text, /kvm_backup_last_success_timestamp_seconds\{vm="vm-b",node="node-02",pool=""\} 0\n/);
  const age = Number(/kvm_backup_last_success_age_seconds\{vm="vm-a",node="node-01",pool="p1"\} ([0-9.]+)\n/.exec(text)?.[1]);
  assert.ok(age >= 30 * 3600 && age < 30 * 3600 + 5, `age ${age}`);
  assert.doesNotMatch(text, /kvm_backup_last_success_age_seconds\{vm="vm-b"/, 'no age without a backup or a creation time');
  m.freshness.delete('vm-a');
  assert.doesNotMatch(await m.render(), /vm="vm-a"/);
});
