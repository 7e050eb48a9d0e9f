/** The process's log: INI switches, format and tag, the SDK's logger, the watcher's log, one line per event. */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { LogTimestamp } from '@temporalio/worker';
import { consoleLog } from '../../client/watcher/log.js';
import { Secret } from '../../core/secret.js';
import { configureLogging, resetLogging, temporalLogger } from '../../workers/logging.js';

const LEAF = 'ou=20260301T115900Z,ou=backup,sstVirtualMachine=vm-1,ou=virtual machines,dc=example,dc=org';
const saved = { level: process.env['KVM_BACKUP_LOG_LEVEL'], sdk: process.env['KVM_BACKUP_SDK_LOG_LEVEL'] };
let lines: string[] = [];
const write = (l: string) => void lines.push(l);

function ini(o: { debug?: boolean; info?: boolean; warning?: boolean; err?: boolean; format?: 'json' | 'syslog'; tag?: string } = {}) {
  return {
    log: { debug: o.debug ?? false, info: o.info ?? true, warning: o.warning ?? true, err: o.err ?? true, format: o.format ?? 'json' },
    service: { syslogTag: o.tag ?? 'Backup-KVM' },
  };
}
const json = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

beforeEach(() => {
  delete process.env['KVM_BACKUP_LOG_LEVEL'];
  delete process.env['KVM_BACKUP_SDK_LOG_LEVEL'];
  lines = [];
});
afterEach(() => {
  for (const [k, v] of [['KVM_BACKUP_LOG_LEVEL', saved.level], ['KVM_BACKUP_SDK_LOG_LEVEL', saved.sdk]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  resetLogging();
});

test('workflow and activity lines follow the LOG_* switches, with our field names', () => {
  configureLogging(ini({ info: false }), { write, journal: false });
  const sdk = temporalLogger();
  sdk.info('backup finished', { sdkComponent: 'workflow', workflowId: 'backup/vm-1/x', runId: 'r1', workflowType: 'backupWorkflow', vm: 'vm-1', leafDn: LEAF });
  sdk.warn('activity attempt failed', { sdkComponent: 'activity', workflowId: 'w', workflowRunId: 'r2', activityType: 'mergeBack', taskToken: 'secret-ish', code: 11 });
  sdk.debug('activity completed', { sdkComponent: 'activity', activityType: 'preflight' });
  assert.equal(lines.length, 1, 'info and debug are switched off');
  assert.deepEqual(json()[0], { ts: json()[0]!['ts'], level: 'warn', msg: 'activity attempt failed', component: 'activity', workflowId: 'w', runId: 'r2', activity: 'mergeBack', code: 11 });

  lines = [];
  configureLogging(ini({ debug: true, warning: false }), { write, journal: false });
  sdk.info('backup finished', { sdkComponent: 'workflow', workflowId: 'backup/vm-1/x', vm: 'vm-1', leafDn: LEAF });
  sdk.warn('activity attempt failed', { sdkComponent: 'activity' });
  sdk.debug('activity completed', { sdkComponent: 'activity' });
  assert.deepEqual(json().map((l) => [l['level'], l['msg']]), [['info', 'backup finished'], ['debug', 'activity completed']]);
  assert.equal(json()[0]!['leafDn'], LEAF);
});

test('the SDK\'s own lines stay at warnings unless KVM_BACKUP_SDK_LOG_LEVEL raises them', () => {
  configureLogging(ini({ debug: true }), { write, journal: false });
  const sdk = temporalLogger();
  sdk.info('Worker state changed', { sdkComponent: 'worker', state: 'RUNNING' });
  sdk.debug('core chatter', { sdkComponent: 'core' });
  sdk.info('no component at all');
  sdk.warn('Workflow failed', { sdkComponent: 'worker', error: new Error('x') });
  assert.deepEqual(json().map((l) => l['msg']), ['Workflow failed']);
  assert.equal(json()[0]!['error'], 'x');

  lines = [];
  process.env['KVM_BACKUP_SDK_LOG_LEVEL'] = 'INFO';
  configureLogging(ini(), { write, journal: false });
  temporalLogger().info('Worker state changed', { sdkComponent: 'worker' });
  assert.equal(lines.length, 1);
});

test('the time the SDK stamped on a line (LogTimestamp, ns) is the line\'s ts', () => {
  configureLogging(ini(), { write, journal: false });
  const at = Date.UTC(2026, 2, 1, 10, 0, 0, 250);
  temporalLogger().info('from the sandbox', { sdkComponent: 'workflow', [LogTimestamp]: BigInt(at) * 1_000_000n } as Record<string, unknown>);
  assert.equal(json()[0]!['ts'], '2026-03-01T10:00:00.250Z');
});

test('syslog format: the [Service] SYSLOG tag and this pid; on the journal only the level prefix', () => {
  configureLogging(ini({ format: 'syslog', tag: 'Backup-KVM' }), { write, journal: false });
  consoleLog('watcher').warn('bad request: answered 18', { dn: LEAF, reason: 'mode unknown' });
  assert.equal(lines[0], `<28>Backup-KVM[${process.pid}]: bad request: answered 18 component=watcher vm=vm-1 leafDn="${LEAF}" reason="mode unknown"`);

  lines = [];
  configureLogging(ini({ format: 'syslog' }), { write, journal: true });
  consoleLog('scheduler').info('schedule created: x');
  assert.equal(lines[0], '<6>schedule created: x component=scheduler');

  lines = [];
  configureLogging(ini({ format: 'json' }), { write, journal: true });
  consoleLog('watcher').error('watcher stopped by a bug');
  assert.match(lines[0]!, /^<3>\{"ts":/);
});

test('the watcher\'s log: its minimum, --verbose shows debug even with LOG_DEBUG off, a test\'s own writer', () => {
  configureLogging(ini(), { write, journal: false });
  consoleLog('watcher', 'warn').info('dropped below the minimum');
  consoleLog('watcher').debug('dropped: LOG_DEBUG is off');
  consoleLog('watcher', 'debug').debug('shown: asked for');
  const mine: string[] = [];
  consoleLog('watcher', 'info', (l) => mine.push(l)).info('to the test');
  assert.deepEqual(json().map((l) => l['msg']), ['shown: asked for']);
  assert.equal((JSON.parse(mine[0]!) as { component: string }).component, 'watcher');
});

test('KVM_BACKUP_LOG_LEVEL replaces the switches with a threshold', () => {
  process.env['KVM_BACKUP_LOG_LEVEL'] = 'warn';
  configureLogging(ini({ debug: true, info: true }), { write, journal: false });
  consoleLog('watcher', 'debug').info('hidden');
  consoleLog('watcher').warn('shown');
  assert.deepEqual(json().map((l) => l['msg']), ['shown']);
});

test('a Secret handed to the logger prints as ***, in both formats and every entry point', () => {
  const secret = new Secret('hunter2-ldap', 'environment KVM_BACKUP_LDAP_PASSWORD');
  for (const format of ['json', 'syslog'] as const) {
    configureLogging(ini({ format }), { write, journal: false });
    temporalLogger().error(`bind failed with ${secret}`, { sdkComponent: 'activity', password: secret, config: { password: secret } });
    consoleLog('watcher').info('watcher started', { database: { password: secret } });
  }
  assert.equal(lines.length, 4);
  for (const l of lines) {
    assert.equal(l.includes('hunter2'), false, l);
    assert.ok(l.includes('***'), l);
  }
});
