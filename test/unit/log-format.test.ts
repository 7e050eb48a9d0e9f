import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fieldsFromTemporalMeta, formatJournal, formatJson, formatSyslog, isSyslogTag, levelOfTemporal, plainFields, switchedOn,
  type LogEvent,
} from '../../core/log-format.js';
import { subjectOf } from '../../core/log-subject.js';
import { Secret } from '../../core/secret.js';

const time = new Date('2026-03-01T12:00:00.123Z');
const LEAF = 'ou=20260301T115900Z,ou=backup,sstVirtualMachine=vm-1,ou=virtual machines,ou=virtualization,ou=services,dc=stoney-cloud,dc=org';

test('json: one line, ts/level/msg first, then the context fields in a fixed order', () => {
  const line = formatJson({ time, level: 'info', msg: 'backup finished', fields: { durationMs: 812, code: 0, workflowId: 'backup/vm-1/x', vm: 'vm-1', leafDn: LEAF } });
  assert.equal(line.includes('\n'), false);
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), ['ts', 'level', 'msg', 'vm', 'leafDn', 'workflowId', 'code', 'durationMs']);
  assert.equal(parsed['ts'], '2026-03-01T12:00:00.123Z');
  assert.equal(parsed['leafDn'], LEAF);
});

test('json: a message with a newline stays one line (no forged second event)', () => {
  const line = formatJson({ time, level: 'warn', msg: 'a\n{"level":"error","msg":"forged"}' });
  assert.equal(line.split('\n').length, 1);
  assert.equal((JSON.parse(line) as { msg: string }).msg, 'a\n{"level":"error","msg":"forged"}');
});

test('syslog: the classic <PRI>TAG[pid]: line, facility daemon, severity per level', () => {
  const e: LogEvent = { time, level: 'error', msg: 'backup failed', fields: { vm: 'vm-1', leafDn: LEAF, code: 33 } };
  assert.equal(formatSyslog(e, { tag: 'Backup-KVM', pid: 4711 }), `<27>Backup-KVM[4711]: backup failed vm=vm-1 leafDn="${LEAF}" code=33`);
  assert.match(formatSyslog({ ...e, level: 'warn' }, { tag: 'T', pid: 1 }), /^<28>T\[1\]: /);
  assert.match(formatSyslog({ ...e, level: 'info' }, { tag: 'T', pid: 1 }), /^<30>T\[1\]: /);
  assert.match(formatSyslog({ ...e, level: 'debug' }, { tag: 'T', pid: 1 }), /^<31>T\[1\]: /);
  assert.match(formatSyslog(e, { tag: 'T', pid: 1, facility: 16 }), /^<131>/); // local0
  assert.equal(formatSyslog({ time, level: 'info', msg: 'two\nlines' }, { tag: 'T', pid: 1 }), '<30>T[1]: two\\nlines');
});

test('syslog pairs: quoted when needed, objects as JSON', () => {
  const line = formatSyslog({ time, level: 'info', msg: 'm', fields: { a: 'plain', b: 'with space', c: 'q"uote', d: '', e: { x: 1 }, f: true, g: null } }, { tag: 'T', pid: 1 });
  assert.equal(line, '<30>T[1]: m a=plain b="with space" c="q\\"uote" d="" e="{\\"x\\":1}" f=true g=null');
});

test('journal: only the <severity> prefix journald reads; tag and pid come from the unit', () => {
  assert.equal(formatJournal({ time, level: 'warn', msg: 'retrying', fields: { code: 2 } }), '<4>retrying code=2');
});

test('the seed\'s LOG_* switches are independent, one per level', () => {
  const switches = { debug: false, info: false, warning: true, err: false };
  assert.deepEqual((['debug', 'info', 'warn', 'error'] as const).map((l) => switchedOn(l, switches)), [false, false, true, false]);
});

test('SDK levels and meta map to our names; the task token and namespace are dropped', () => {
  assert.deepEqual(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'].map((l) => levelOfTemporal(l as 'INFO')), ['debug', 'debug', 'info', 'warn', 'error']);
  const activity = fieldsFromTemporalMeta({
    sdkComponent: 'activity', isLocal: false, attempt: 2, namespace: 'default', taskToken: 'AbC=', activityId: '7',
    activityType: 'takeSnapshot', taskQueue: 'kvm-backup.node.n1', workflowId: 'backup/vm-1/x', workflowRunId: 'r-1', workflowType: 'backupWorkflow', leafDn: LEAF,
  });
  assert.deepEqual(activity, {
    component: 'activity', attempt: 2, activity: 'takeSnapshot', taskQueue: 'kvm-backup.node.n1', workflowId: 'backup/vm-1/x', runId: 'r-1', workflow: 'backupWorkflow', leafDn: LEAF,
  });
  const workflow = fieldsFromTemporalMeta({ sdkComponent: 'workflow', namespace: 'default', taskQueue: 'q', workflowId: 'w', runId: 'r', workflowType: 'restoreWorkflow' });
  assert.deepEqual(workflow, { component: 'workflow', taskQueue: 'q', workflowId: 'w', runId: 'r', workflow: 'restoreWorkflow' });
});

test('a Secret never shows its value, in any format, wherever it sits', () => {
  const secret = new Secret('hunter2-ldap', 'file /etc/kvm-backup/ldap.secret');
  const fields = { password: secret, nested: { deeper: [secret, { s: secret }] }, config: { database: { password: secret } } };
  const e: LogEvent = { time, level: 'error', msg: `bind with ${secret} failed`, fields };
  const lines = [formatJson(e), formatSyslog(e, { tag: 'Backup-KVM', pid: 1 }), formatJournal(e)];
  for (const line of lines) {
    assert.equal(line.includes('hunter2'), false, line);
    assert.ok(line.includes('***'), line);
  }
  assert.deepEqual(plainFields({ password: secret }), { password: '***' });
});

test('errors print their message (and code); cycles and bigints do not break a line', () => {
  const err = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic['self'] = cyclic;
  assert.deepEqual(plainFields({ error: new Error('boom'), err, cyclic, big: 10n ** 20n, skipped: undefined }), {
    error: 'boom', err: { message: 'disk full', code: 'ENOSPC' }, cyclic: '[not serialisable]', big: '100000000000000000000',
  });
});

test('syslog tags: printable, no space, no [ ] :', () => {
  assert.equal(isSyslogTag('Backup-KVM'), true);
  assert.equal(isSyslogTag('kvm_backup.node-01'), true);
  for (const bad of ['', 'with space', 'a:b', 'a[1]', 'x'.repeat(49), 'tab\t']) assert.equal(isSyslogTag(bad), false, bad);
});

test('the VM and leaf of a call come from the product\'s argument shapes', () => {
  assert.deepEqual(subjectOf([{ leafDn: LEAF, heartbeatTimeout: '5s' }]), { vm: 'vm-1', leafDn: LEAF });
  assert.deepEqual(subjectOf([LEAF, { sstProvisioningMode: 'merging' }]), { vm: 'vm-1', leafDn: LEAF });
  assert.deepEqual(subjectOf([{ leaf: { dn: LEAF, vm: 'vm-1', ou: 'x' }, node: 'n' }, 'live']), { vm: 'vm-1', leafDn: LEAF });
  assert.deepEqual(subjectOf([{ plan: { vm: 'vm-1', leafDn: LEAF }, running: true }]), { vm: 'vm-1', leafDn: LEAF });
  assert.deepEqual(subjectOf([{ vm: 'vm-2' }]), { vm: 'vm-2' });
  assert.deepEqual(subjectOf(['not a dn', 42, null]), {});
  assert.deepEqual(subjectOf([]), {});
});
