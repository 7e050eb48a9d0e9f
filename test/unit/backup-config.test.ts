import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBackupConfiguration, resolveBackupConfiguration, SEED_DEFAULTS } from '../../core/backup-config.js';
import type { ConfigError } from '../../core/global-config.js';
import { makeEntry } from '../../core/ldap-entry.js';

const OC = ['top', 'organizationalUnit', 'sstVirtualizationBackupObjectClass'];
const cloud = makeEntry('ou=backup,ou=configuration,ou=virtualization', {
  objectClass: [...OC, 'sstCronObjectClass'],
  sstBackupNumberOfIterations: '3',
  sstBackupRootDirectory: 'file:///srv/backup-vm/virtualization.d',
  sstVirtualizationBandwidthMerge: '50',
  sstCronMinute: '0', sstCronHour: '3', sstCronDay: '*', sstCronMonth: '*', sstCronDayOfWeek: '*', sstCronActive: 'TRUE',
});
const pool = makeEntry('ou=backup,sstVirtualMachinePool=p1', { objectClass: OC, sstBackupNumberOfIterations: '2' });
const vmPlain = makeEntry('ou=backup,sstVirtualMachine=vm1', { objectClass: ['top', 'organizationalUnit'] });
const vmConfig = makeEntry('ou=backup,sstVirtualMachine=vm1', { objectClass: OC, sstRestoreVMWithoutState: 'TRUE' });

test('VM → pool → cloud: the first entry with the object class applies as a whole', () => {
  const fromVm = resolveBackupConfiguration({ vm: vmConfig, pool: [pool], cloud });
  assert.equal(fromVm.level, 'vm');
  assert.equal(fromVm.config.restoreWithoutState, true);
  // no inheritance: the VM entry sets no iterations, so the seed default applies, not the pool's 2
  assert.equal(fromVm.config.iterations, 1);
  assert.equal(fromVm.origin['iterations'], 'default');
  assert.equal(fromVm.origin['restoreWithoutState'], 'entry');

  const fromPool = resolveBackupConfiguration({ vm: vmPlain, pool: [pool], cloud });
  assert.equal(fromPool.level, 'pool');
  assert.equal(fromPool.config.iterations, 2);
  assert.equal(fromPool.config.bandwidthMerge, 0);

  const fromCloud = resolveBackupConfiguration({ vm: vmPlain, pool: [], cloud });
  assert.equal(fromCloud.level, 'cloud');
  assert.equal(fromCloud.config.iterations, 3);
  assert.equal(fromCloud.config.rootDirectory, 'file:///srv/backup-vm/virtualization.d');
  assert.equal(fromCloud.config.bandwidthMerge, 50);
  assert.deepEqual(fromCloud.config.cron, { minute: '0', hour: '3', day: '*', month: '*', dayOfWeek: '*', active: true });
});

test('absent attributes take the seed defaults', () => {
  const { config } = parseBackupConfiguration(makeEntry('x', { objectClass: OC }));
  assert.deepEqual({ ...config }, { ...SEED_DEFAULTS });
  assert.equal(config.imagePermission, 0o660);
  assert.equal(config.directoryPermission, 0o770);
  assert.equal(config.retainDirectory, 'file:///var/virtualization/retain');
});

test('no configuration at all is 32; two pool configurations are 32', () => {
  assert.throws(() => resolveBackupConfiguration({ vm: vmPlain }), (e: ConfigError) => e.code === 32);
  assert.throws(() => resolveBackupConfiguration({ pool: [pool, pool], cloud }), (e: ConfigError) => e.code === 32);
});

test('garbage values are refused with 39 and the attribute named', () => {
  const bad = (attrs: Record<string, string>) => () => parseBackupConfiguration(makeEntry('ou=bad', { objectClass: OC, ...attrs }));
  const is39 = (name: string) => (e: ConfigError) => e.code === 39 && e.message.includes(name);
  assert.throws(bad({ sstBackupNumberOfIterations: '0' }), is39('sstBackupNumberOfIterations'));
  assert.throws(bad({ sstBackupNumberOfIterations: 'many' }), is39('sstBackupNumberOfIterations'));
  assert.throws(bad({ sstVirtualizationBandwidthMerge: '-1' }), is39('sstVirtualizationBandwidthMerge'));
  assert.throws(bad({ sstVirtualizationDiskImagePermission: '999' }), is39('sstVirtualizationDiskImagePermission'));
  assert.throws(bad({ sstVirtualizationDiskImageOwner: 'root;rm -rf /' }), is39('sstVirtualizationDiskImageOwner'));
  assert.throws(bad({ sstRestoreVMWithoutState: 'yes' }), is39('sstRestoreVMWithoutState'));
  assert.throws(bad({ sstBackupSnapshotMethod: 'fast' }), is39('sstBackupSnapshotMethod'));
  assert.throws(bad({ sstBackupKeepDaily: '-1' }), is39('sstBackupKeepDaily'));
  assert.throws(bad({ sstBackupKeepWeekly: 'four' }), is39('sstBackupKeepWeekly'));
  assert.throws(bad({ sstBackupKeepMonthly: '1.5' }), is39('sstBackupKeepMonthly'));
});
