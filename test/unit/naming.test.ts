import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeDnValue, escapeFilterValue, isUnder, parseDn, sameDn } from '../../core/dn.js';
import { makeEntry } from '../../core/ldap-entry.js';
import { toLdif } from '../../core/ldif.js';
import { fileNames, intermediatePath, iterationDirectory } from '../../core/layout.js';
import {
  assertVmName, CONTROL_TASK_QUEUE, fileUriToPath, isInside, leafDn,
  leafTimestamp, nodeTaskQueue, parseLeafDn, parseLeafTimestamp, parseValidLeafDn, workflowIdForLeaf, type NamingError,
} from '../../core/naming.js';

const SUB = 'ou=virtualization,ou=services,dc=stoney-cloud,dc=org';

test('leaf timestamps are UTC YYYYMMDDTHHMMSSZ and round-trip; impossible dates are refused', () => {
  const d = new Date(Date.UTC(2026, 10, 27, 3, 4, 5));
  assert.equal(leafTimestamp(d), '20261127T030405Z');
  assert.equal(parseLeafTimestamp('20261127T030405Z')?.getTime(), d.getTime());
  for (const bad of ['20261331T000000Z', '20261127T030405', '2026-11-27T03:04:05Z', '../../etc', '20261127T246000Z']) {
    assert.equal(parseLeafTimestamp(bad), undefined, bad);
  }
});

test('task queues and workflow IDs', () => {
  assert.equal(nodeTaskQueue('node-01.example.org'), 'kvm-backup.node.node-01.example.org');
  assert.equal(CONTROL_TASK_QUEUE, 'kvm-backup.control');
  assert.throws(() => nodeTaskQueue('bad node'));
  const leaf = parseValidLeafDn(leafDn(SUB, 'vm-1', '20261127T030405Z'));
  assert.equal(workflowIdForLeaf(leaf, 'backup'), 'backup/vm-1/20261127T030405Z');
});

test('leaf DNs are read back, and anything else is not a leaf', () => {
  const dn = `ou=20261127T030405Z,ou=backup,sstVirtualMachine=a1b2-c3,ou=virtual machines,${SUB}`;
  const leaf = parseLeafDn(dn)!;
  assert.equal(leaf.vm, 'a1b2-c3');
  assert.equal(leaf.ou, '20261127T030405Z');
  assert.equal(leaf.vmDn, `sstVirtualMachine=a1b2-c3,ou=virtual machines,${SUB}`);
  assert.equal(parseLeafDn(`ou=backup,ou=configuration,${SUB}`), undefined);
  assert.equal(parseLeafDn(`ou=x,ou=backup,sstVirtualMachinePool=p,ou=virtual machine pools,${SUB}`), undefined);
  assert.equal(parseLeafDn('garbage'), undefined);
  const evil = `ou=..,ou=backup,sstVirtualMachine=..\\2Fetc,ou=virtual machines,${SUB}`;
  assert.throws(() => parseValidLeafDn(evil), (e: NamingError) => e.code === 39);
});

test('VM names that would escape a directory are refused', () => {
  for (const bad of ['..', '.', 'a/b', '', 'a b', '$(reboot)', 'x\0y', '-rf']) {
    assert.throws(() => assertVmName(bad), /not allowed/, JSON.stringify(bad));
  }
  assert.equal(assertVmName('4f1c9a1e-0c3b-4c1d-9a6e-1b2c3d4e5f60'), '4f1c9a1e-0c3b-4c1d-9a6e-1b2c3d4e5f60');
  assert.equal(assertVmName('web.db_1'), 'web.db_1');
});

test('file:// URIs keep every character (no truncation at - or .); other schemes are 39 or the given code', () => {
  assert.equal(fileUriToPath('file:///var/backup-vm/virt.d', 'root'), '/var/backup-vm/virt.d');
  assert.throws(() => fileUriToPath('/var/backup', 'root'), (e: NamingError) => e.code === 39);
  assert.throws(() => fileUriToPath('nfs://host/x', 'root'), (e: NamingError) => e.code === 39 && /nfs/.test(e.message));
  assert.throws(() => fileUriToPath('nfs://host/x', 'root', 35), (e: NamingError) => e.code === 35);
  assert.throws(() => fileUriToPath('file://relative/x', 'root'), (e: NamingError) => e.code === 39);
  assert.throws(() => fileUriToPath('file:///var/../etc', 'root'), (e: NamingError) => e.code === 39);
  // decoded once, with a URI's escapes; a host other than this one, a bad escape and an encoded .. refused
  assert.equal(fileUriToPath('file:///srv/back%20up/d%C3%BCr%2C1/100%25', 'root'), '/srv/back up/dür,1/100%');
  assert.equal(fileUriToPath('file://localhost/srv/b', 'root'), '/srv/b');
  assert.throws(() => fileUriToPath('file://nas/srv/b', 'root'), (e: NamingError) => e.code === 39);
  assert.throws(() => fileUriToPath('file:///srv/100%', 'root'), (e: NamingError) => e.code === 39 && /%25/.test(e.message));
  assert.throws(() => fileUriToPath('file:///srv/%2e%2e/etc', 'root'), (e: NamingError) => e.code === 39);
});

test('the original layout: first disk dir relative to /var/virtualization, then vm/ou', () => {
  const ip = intermediatePath('/var/virtualization/vm-persistent/pool-1/disk-1.qcow2', 'vm-1', '20121002T010000Z');
  assert.equal(ip, 'vm-persistent/pool-1/vm-1/20121002T010000Z');
  assert.equal(iterationDirectory('/var/backup/virtualization', ip), '/var/backup/virtualization/vm-persistent/pool-1/vm-1/20121002T010000Z');
  assert.equal(intermediatePath('/srv/vms/d.qcow2', 'vm-1', '20121002T010000Z'), 'srv/vms/vm-1/20121002T010000Z');
  assert.equal(fileNames.inBackup('disk-1.qcow2', '20121002T010000Z'), 'disk-1.qcow2.20121002T010000Z');
  assert.throws(() => iterationDirectory('/var/backup', '../../etc'));
  assert.ok(isInside('/a/b', '/a/b/c'));
  assert.ok(!isInside('/a/b', '/a/bc'));
});

test('DN and filter escaping keep metacharacters inert', () => {
  assert.equal(escapeFilterValue('a*b(c)\\'), 'a\\2ab\\28c\\29\\5c');
  const value = 'x,y=z+"q"';
  const dn = `cn=${escapeDnValue(value)},dc=org`;
  assert.deepEqual(parseDn(dn)[0], { attribute: 'cn', value });
  assert.ok(sameDn('CN=A,DC=Org', 'cn=a,dc=org'));
  assert.ok(isUnder(`ou=1,ou=backup,${SUB}`, SUB));
  assert.ok(!isUnder(SUB, `ou=backup,${SUB}`));
  assert.throws(() => parseDn('no-equals'));
});

test('LDIF: plain values as text, unsafe ones base64, long lines folded', () => {
  const text = toLdif([makeEntry('cn=a,dc=org', { objectClass: ['top', 'dhcpHost'], cn: 'a', description: ' leading space', long: 'x'.repeat(100) })]);
  assert.match(text, /^version: 1\n\ndn: cn=a,dc=org\nobjectClass: top\nobjectClass: dhcpHost\n/);
  assert.match(text, /description:: IGxlYWRpbmcgc3BhY2U=/);
  assert.match(text, /long: x{70}\n x{30}\n/);
});
