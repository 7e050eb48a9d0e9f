/** What the activity interceptor and the outcome sink count, and the endpoint that serves it. */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import type { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ActivityExecuteInput, Next, ActivityInboundCallsInterceptor } from '@temporalio/worker';
import { failure } from '../../core/failures.js';
import { Code } from '../../core/exit-codes.js';
import { startMetricsServer } from '../../workers/metrics-server.js';
import { resultFacts, WorkerMetrics } from '../../workers/metrics.js';
import { observeActivities, outcomeSinks } from '../../workers/observability.js';

const LEAF = 'ou=20260301T115900Z,ou=backup,sstVirtualMachine=vm-1,ou=virtual machines,dc=example,dc=org';

interface FakeActivity {
  ctx: Context;
  logs: Array<{ level: string; msg: string; meta: Record<string, unknown> }>;
  abort(): void;
}

function fakeContext(activityType: string, o: { lagMs?: number; workflowType?: string } = {}): FakeActivity {
  const logs: FakeActivity['logs'] = [];
  const controller = new AbortController();
  const log = (level: string) => (msg: string, meta: Record<string, unknown> = {}) => void logs.push({ level, msg, meta });
  const ctx = {
    info: {
      taskQueue: 'kvm-backup.node.n1',
      activityType,
      workflowType: o.workflowType ?? 'backupWorkflow',
      currentAttemptScheduledTimestampMs: Date.now() - (o.lagMs ?? 250),
    },
    log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    cancellationSignal: controller.signal,
  } as unknown as Context;
  return { ctx, logs, abort: () => controller.abort() };
}

/** Runs `body` as an activity through the interceptor, the way the worker would. */
async function runThrough(metrics: WorkerMetrics, a: FakeActivity, args: unknown[], body: () => Promise<unknown>, phases = true) {
  const interceptors = observeActivities(metrics, { phases, node: 'n1' })(a.ctx);
  const input: ActivityExecuteInput = { args, headers: {} };
  const next: Next<ActivityInboundCallsInterceptor, 'execute'> = () => body();
  const attributes = interceptors.outbound!.getLogAttributes!;
  const run = interceptors.inbound!.execute!(input, next);
  return { run, attributes: () => attributes({ activityType: a.ctx.info.activityType }, (x) => x) };
}

test('a snapshot: phase time, guest pause, queue lag; its log lines carry vm, leaf and node', async () => {
  const m = new WorkerMetrics();
  const a = fakeContext('takeSnapshot', { lagMs: 1500 });
  const { run, attributes } = await runThrough(m, a, [{ plan: { vm: 'vm-1', leafDn: LEAF } }], async () => ({ method: 'live', pauseMs: 23, durationMs: 900 }));
  await run;
  assert.equal(await m.phaseDuration.countOf({ operation: 'backup', phase: 'takeSnapshot', outcome: 'success' }), 1);
  assert.equal(await m.guestPause.countOf({ method: 'live' }), 1);
  assert.equal(await m.scheduleToStart.countOf({ task_queue: 'kvm-backup.node.n1' }), 1);
  const text = await m.render();
  assert.match(text, /kvm_backup_guest_pause_seconds_sum\{method="live"\} 0\.023\n/);
  assert.match(text, /kvm_backup_activity_schedule_to_start_seconds_bucket\{le="1",task_queue="kvm-backup.node.n1"\} 0\n/);
  assert.match(text, /kvm_backup_activity_schedule_to_start_seconds_bucket\{le="2.5",task_queue="kvm-backup.node.n1"\} 1\n/);
  assert.deepEqual(attributes(), { activityType: 'takeSnapshot', node: 'n1', vm: 'vm-1', leafDn: LEAF });
  assert.deepEqual(a.logs.map((l) => [l.level, l.msg]), [['debug', 'activity completed']]);
});

test('copies add their bytes; an offline snapshot is no guest pause', async () => {
  const m = new WorkerMetrics();
  await (await runThrough(m, fakeContext('copyToRetain'), [], async () => ({ bytes: 64 << 20, files: 4, durationMs: 10, resumedBytes: 0 }))).run;
  await (await runThrough(m, fakeContext('unretainLargeFiles', { workflowType: 'restoreWorkflow' }), [], async () => ({ bytes: 1000 }))).run;
  await (await runThrough(m, fakeContext('takeSnapshot'), [], async () => ({ method: 'offline', pauseMs: 0, durationMs: 5 }))).run;
  assert.equal(await m.bytesCopied.get({ operation: 'backup', phase: 'copyToRetain' }), 64 << 20);
  assert.equal(await m.bytesCopied.get({ operation: 'restore', phase: 'unretainLargeFiles' }), 1000);
  assert.equal(await m.guestPause.countOf({ method: 'offline' }), 0);
  assert.deepEqual(resultFacts({ method: 'classic', pauseMs: 2100 }), { pauseMs: 2100, method: 'classic' });
  assert.deepEqual(resultFacts('text'), {});
});

test('a failed attempt counts with its code and logs a warning; a cancelled one is not a failure', async () => {
  const m = new WorkerMetrics();
  const a = fakeContext('mergeBack');
  const { run } = await runThrough(m, a, [{ plan: { vm: 'vm-1', leafDn: LEAF } }], async () => {
    throw failure(Code.CANNOT_MERGE_DISK_IMAGES, 'blockcommit failed');
  });
  await assert.rejects(run, ApplicationFailure);
  assert.equal(await m.activityFailures.get({ task_queue: 'kvm-backup.node.n1', activity: 'mergeBack', code: Code.CANNOT_MERGE_DISK_IMAGES }), 1);
  assert.equal(await m.phaseDuration.countOf({ operation: 'backup', phase: 'mergeBack', outcome: 'failure' }), 1);
  assert.deepEqual(a.logs.map((l) => [l.level, l.msg, l.meta['code']]), [['warn', 'activity attempt failed', Code.CANNOT_MERGE_DISK_IMAGES]]);

  const c = fakeContext('exportBackup');
  c.abort();
  await assert.rejects((await runThrough(m, c, [], async () => { throw new CancelledFailure('worker shutdown'); })).run, CancelledFailure);
  assert.equal(await m.phaseDuration.countOf({ operation: 'backup', phase: 'exportBackup', outcome: 'cancelled' }), 1);
  assert.doesNotMatch(await m.render(), /activity="exportBackup"/);
});

test('the control worker does not time LDAP activities as phases', async () => {
  const m = new WorkerMetrics();
  await (await runThrough(m, fakeContext('updateLeaf'), [LEAF, {}], async () => undefined, false)).run;
  assert.doesNotMatch(await m.render(), /phase="updateLeaf"/);
  assert.equal(await m.scheduleToStart.countOf({ task_queue: 'kvm-backup.node.n1' }), 1);
});

test('a node step still running shows its age; 0 again once it ended', async () => {
  const m = new WorkerMetrics();
  let finish!: () => void;
  const { run } = await runThrough(m, fakeContext('ensureOnOwnImages'), [], () => new Promise<void>((r) => (finish = r)));
  await new Promise((r) => setTimeout(r, 300));
  const running = Number(/kvm_backup_phase_oldest_running_seconds\{operation="backup",phase="ensureOnOwnImages"\} ([0-9.e-]+)\n/.exec(await m.render())?.[1]);
  assert.ok(running >= 0.25 && running < 5, `running for ${running} s`);
  finish();
  await run;
  assert.match(await m.render(), /kvm_backup_phase_oldest_running_seconds\{operation="backup",phase="ensureOnOwnImages"\} 0\n/);
});

test('workflow outcomes from the sink: counts by operation, outcome and code, with durations', async () => {
  const m = new WorkerMetrics();
  m.initOperations();
  const sink = outcomeSinks(m).outcomes.record;
  assert.equal(sink.callDuringReplay, false, 'a replay does not count an outcome again');
  const info = {} as Parameters<typeof sink.fn>[0];
  void sink.fn(info, { operation: 'backup', outcome: 'success', code: 0, durationMs: 30_000 });
  void sink.fn(info, { operation: 'backup', outcome: 'failure', code: 33, durationMs: 2_000 });
  const text = await m.render();
  assert.match(text, /kvm_backup_operations_total\{operation="backup",outcome="success",code="0"\} 1\n/);
  assert.match(text, /kvm_backup_operations_total\{operation="backup",outcome="failure",code="33"\} 1\n/);
  assert.match(text, /kvm_backup_operations_total\{operation="restore",outcome="success",code="0"\} 0\n/);
  assert.match(text, /kvm_backup_operation_duration_seconds_sum\{operation="backup",outcome="success"\} 30\n/);
});

function get(url: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { method }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    }).on('error', reject).end();
  });
}

test('the endpoint serves the exposition at /metrics, 404 elsewhere, 405 for POST', async () => {
  const m = new WorkerMetrics();
  m.operations.inc({ operation: 'backup', outcome: 'success', code: 0 });
  const server = await startMetricsServer(() => m.render(), { port: 0, address: '127.0.0.1' });
  try {
    assert.ok(server.port > 0);
    const ok = await get(server.url);
    assert.equal(ok.status, 200);
    assert.equal(ok.type, 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(ok.body, /kvm_backup_operations_total\{operation="backup",outcome="success",code="0"\} 1/);
    assert.equal((await get(server.url.replace('/metrics', '/'))).status, 404);
    assert.equal((await get(server.url, 'POST')).status, 405);
  } finally {
    await server.close();
  }
});
