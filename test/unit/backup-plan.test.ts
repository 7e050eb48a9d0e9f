import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pauseFromEvents, resumed } from '../../adapters/host/guest-pause.js';
import { resolveBackupConfiguration } from '../../core/backup-config.js';
import { planBackup, retainFiles, type BackupContext } from '../../core/backup-plan.js';
import { manifestText, overlayPath, parseManifest } from '../../core/layout.js';
import { makeEntry } from '../../core/ldap-entry.js';
import { parseValidLeafDn, leafDn } from '../../core/naming.js';
import { endedChanges, executionTimeValues, parseExecutionTimes } from '../../core/provisioning.js';

const SUB = 'ou=virtualization,ou=services,dc=stoney-cloud,dc=org';

function context(disks: BackupContext['disks'], config: Record<string, string> = {}): BackupContext {
  return {
    leaf: parseValidLeafDn(leafDn(SUB, 'vm-1', '20261127T030405Z')),
    node: 'node-1',
    disks,
    configuration: resolveBackupConfiguration({
      cloud: makeEntry('ou=backup', { objectClass: ['sstVirtualizationBackupObjectClass'], ...config }),
    }),
  };
}

test('the plan: original layout, overlays next to the images, unique names for same-named disks', () => {
  const plan = planBackup(
    context(
      [
        { target: 'vda', path: '/var/virtualization/vm-persistent/pool-1/disk.qcow2' },
        { target: 'vdb', path: '/var/virtualization/vm-data.d/disk.qcow2' },
        { target: 'vdc', path: '/var/virtualization/vm-data.d/extra.qcow2' },
      ],
      { sstBackupRootDirectory: 'file:///srv/backup-vm.d', sstBackupRetainDirectory: 'file:///var/virtualization/retain' },
    ),
    { virtualizationRoot: '/var/virtualization', method: 'live' },
  );
  assert.equal(plan.backupDir, '/srv/backup-vm.d/vm-persistent/pool-1/vm-1/20261127T030405Z');
  assert.equal(plan.retainDir, '/var/virtualization/retain/vm-persistent/pool-1/vm-1/20261127T030405Z');
  assert.equal(plan.backupVmDir, '/srv/backup-vm.d/vm-persistent/pool-1/vm-1');
  assert.deepEqual(plan.disks.map((d) => d.name), ['vda-disk.qcow2', 'vdb-disk.qcow2', 'extra.qcow2']);
  assert.equal(plan.disks[0]!.overlay, '/var/virtualization/vm-persistent/pool-1/disk.qcow2.overlay-20261127T030405Z');
  const prepared = { plan, active: true, runState: 'running', persistent: true, memoryKiB: 0, staging: 'retain', untouched: [], firmware: {}, warnings: [] } as const;
  assert.deepEqual(retainFiles({ ...prepared, untouched: [], warnings: [] }), ['vm-1.state', 'vm-1.xml', 'vm-1.ldif', 'vda-disk.qcow2', 'vdb-disk.qcow2', 'extra.qcow2', 'vm-1.backup.json']);
  assert.deepEqual(
    retainFiles({ ...prepared, untouched: [], warnings: [], firmware: { nvram: '/var/lib/libvirt/qemu/nvram/vm-1_VARS.fd', tpmStateDir: '/var/lib/libvirt/swtpm/u' } }).slice(-3),
    ['vm-1.backup.json', 'vm-1.nvram', 'vm-1.tpm.tar'],
  );
  assert.equal(plan.stagingStateFile, '/mnt/ramdisk/kvm-backup-vm-1-20261127T030405Z.state');
  assert.equal(overlayPath('/a/b.qcow2', '20261127T030405Z'), '/a/b.qcow2.overlay-20261127T030405Z');
});

test('the plan refuses URIs that are not file:// (39)', () => {
  assert.throws(
    () => planBackup(context([{ target: 'vda', path: '/v/d.qcow2' }], { sstBackupRootDirectory: 'nfs://x/y' }), { virtualizationRoot: '/var/virtualization', method: 'live' }),
    (e: { code?: number }) => e.code === 39,
  );
});

test('guest pause from QEMU STOP/RESUME events', () => {
  const lines = [
    "2026-11-27 03:10:24.693+0000: event MIGRATION for domain 'x': {\"status\":\"active\"}",
    "2026-11-27 03:10:24.695+0000: event STOP for domain 'x': <null>",
    "2026-11-27 03:10:24.718+0000: event RESUME for domain 'x': <null>",
  ];
  assert.equal(pauseFromEvents(lines), 23);
  assert.equal(pauseFromEvents(lines.slice(0, 2)), undefined);
  // the watcher stops waiting once the guest runs again: the last event is a RESUME
  assert.deepEqual([resumed(lines), resumed(lines.slice(0, 2)), resumed([]), resumed([...lines, 'junk'])], [true, false, false, true]);
});

test('execution times: seconds with millisecond precision, side by side, in one modify with the mode', () => {
  assert.deepEqual(executionTimeValues({ merge: 1204, snapshot: 412, downtime: 38 }), ['snapshot: 0.412', 'downtime: 0.038', 'merge: 1.204']);
  assert.deepEqual(parseExecutionTimes(['snapshot: 0.412', 'merge: 1.204', 'junk']), { snapshot: 412, merge: 1204 });
  assert.deepEqual(endedChanges('merged', 0, { merge: 5 }), {
    sstProvisioningMode: 'merged',
    sstProvisioningReturnValue: '0',
    sstProvisioningExecutionTime: ['merge: 0.005'],
  });
});

test('manifest: sha256sum format, read back', () => {
  const h = 'a'.repeat(64);
  const text = manifestText([['vm.state.X', h]]);
  assert.equal(text, `${h}  vm.state.X\n`);
  assert.equal(parseManifest(text).get('vm.state.X'), h);
});
