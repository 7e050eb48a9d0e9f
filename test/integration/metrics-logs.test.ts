/**
 * The worker's Prometheus endpoint and its log lines, on the real stack: a backup of the tiny VM
 * moves the success count (code 0), the bytes copied, the guest pause, the phase durations and the
 * queue lag, read over HTTP from /metrics; a backup that fails in preflight (a disk LDAP has and
 * the domain lacks, 33) moves the failure count with its code. The same run's log lines name the
 * VM, the leaf and the workflow. And `kvm-backup worker --metrics-port N`, as systemd runs it:
 * JSON lines on stdout, the endpoint up, a clean exit on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Code } from '../../core/exit-codes.js';
import { nodeTaskQueue } from '../../core/naming.js';
import { freePort } from '../../stack/daemon.js';
import { configureLogging } from '../../workers/logging.js';
import { startWorkers } from '../../workers/run-workers.js';
import { addLeaf, backupNow, startBackup } from '../helpers/backup.js';
import { addDiskEntry, createWorld } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

/** `name{a="x",b="y"}` → value, from the exposition text (label order as rendered). */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

function sample(samples: Map<string, number>, name: string, labels: Record<string, string | number>): number {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
  return samples.get(key) ?? 0;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await res.text());
}

/** The workflow's end reaches the worker through a sink shortly after the client sees the result. */
async function scrapeUntil(url: string, ready: (s: Map<string, number>) => boolean): Promise<Map<string, number>> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const s = await scrape(url);
    if (ready(s) || Date.now() > deadline) return s;
    await sleep(100);
  }
}

/**
 * The SDK merges its own and the product's lines in time order and passes them on after 100-200 ms
 * (its NativeLogCollector), so a line may arrive a little after the workflow's result.
 */
async function lineWhere(lines: Array<Record<string, unknown>>, match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const found = lines.find(match);
    if (found) return found;
    if (Date.now() > deadline) assert.fail(`no such line among: ${lines.map((l) => l['msg']).join(' | ')}`);
    await sleep(50);
  }
}

test('a backup and a failed backup move the counters the worker serves on /metrics; their log lines name VM, leaf and workflow', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const w = await createWorld({ label: 'metrics' });
  // every level, captured (the test runner keeps other files to warnings)
  delete process.env['KVM_BACKUP_LOG_LEVEL'];
  configureLogging(w.config, { write: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>), journal: false });
  const workers = await startWorkers(w.config, { node: true, control: true }, { controlQueue: w.controlQueue, metricsPort: 0 });
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  const url = workers.metricsServer!.url;
  const op = (outcome: string, code: number) => ({ operation: 'backup', outcome, code });

  const before = await scrape(url);
  assert.equal(sample(before, 'kvm_backup_operations_total', op('success', 0)), 0);
  assert.ok(before.has('kvm_backup_operations_total{operation="backup",outcome="success",code="0"}'), 'the success series exists from the start');

  // ---- a backup of the running tiny VM ---------------------------------------------------------
  const leaf = await backupNow(w);
  const ok = await scrapeUntil(url, (s) => sample(s, 'kvm_backup_operations_total', op('success', 0)) >= 1);
  assert.equal(sample(ok, 'kvm_backup_operations_total', op('success', 0)), 1);
  assert.equal(sample(ok, 'kvm_backup_operation_duration_seconds_count', { operation: 'backup', outcome: 'success' }), 1);
  const copied = sample(ok, 'kvm_backup_bytes_copied_total', { operation: 'backup', phase: 'copyToRetain' });
  const exported = sample(ok, 'kvm_backup_bytes_copied_total', { operation: 'backup', phase: 'exportBackup' });
  // retain and backup root share a filesystem here: the export moves the files by rename, copying nothing
  assert.ok(copied > 0 && exported === 0, `bytes copied: retain ${copied}, export ${exported}`);
  assert.equal(sample(ok, 'kvm_backup_guest_pause_seconds_count', { method: 'live' }), 1);
  const pause = sample(ok, 'kvm_backup_guest_pause_seconds_sum', { method: 'live' });
  assert.ok(pause > 0 && pause < 10, `guest pause ${pause} s`);
  for (const phase of ['preflight', 'takeSnapshot', 'copyToRetain', 'mergeBack', 'exportBackup', 'rotateIterations']) {
    assert.equal(sample(ok, 'kvm_backup_phase_duration_seconds_count', { operation: 'backup', phase, outcome: 'success' }), 1, phase);
    assert.ok(sample(ok, 'kvm_backup_phase_duration_seconds_sum', { operation: 'backup', phase, outcome: 'success' }) > 0, phase);
  }
  for (const queue of [nodeTaskQueue(w.node), w.controlQueue]) {
    assert.ok(sample(ok, 'kvm_backup_activity_schedule_to_start_seconds_count', { task_queue: queue }) > 0, `queue lag of ${queue}`);
  }

  const finished = await lineWhere(lines, (l) => l['msg'] === 'backup finished');
  assert.equal(finished['level'], 'info');
  assert.equal(finished['vm'], w.vm);
  assert.equal(finished['leafDn'], leaf.dn);
  assert.match(String(finished['workflowId']), new RegExp(`^test-backup/${w.vm}/`));
  assert.match(String(finished['runId']), /^[0-9a-f-]{36}$/);
  assert.equal(finished['code'], 0);

  // ---- a backup that fails in preflight: 33 ------------------------------------------------------
  await addDiskEntry(w.directory, w.vm, 'vdz', `${w.dir}/not-attached.qcow2`);
  const failing = await addLeaf(w);
  await assert.rejects((await startBackup(w, { leafDn: failing.dn, attempts: 1 })).result());
  const bad = await scrapeUntil(url, (s) => sample(s, 'kvm_backup_operations_total', op('failure', Code.BACKEND_XML_UNCONSISTENCY)) >= 1);
  assert.equal(sample(bad, 'kvm_backup_operations_total', op('failure', Code.BACKEND_XML_UNCONSISTENCY)), 1);
  assert.equal(sample(bad, 'kvm_backup_operations_total', op('success', 0)), 1, 'the success count stays');
  assert.equal(sample(bad, 'kvm_backup_phase_duration_seconds_count', { operation: 'backup', phase: 'preflight', outcome: 'failure' }), 1);
  assert.equal(
    sample(bad, 'kvm_backup_activity_failures_total', { task_queue: nodeTaskQueue(w.node), activity: 'preflight', code: Code.BACKEND_XML_UNCONSISTENCY }),
    1,
  );

  const failedLine = await lineWhere(lines, (l) => l['msg'] === 'backup failed');
  assert.deepEqual([failedLine['level'], failedLine['vm'], failedLine['leafDn'], failedLine['code']], ['error', w.vm, failing.dn, Code.BACKEND_XML_UNCONSISTENCY]);
  const attempt = await lineWhere(lines, (l) => l['msg'] === 'activity attempt failed' && l['activity'] === 'preflight');
  assert.deepEqual([attempt['component'], attempt['node'], attempt['vm'], attempt['leafDn']], ['activity', w.node, w.vm, failing.dn]);
  assert.match(String(attempt['workflowId']), new RegExp(`^test-backup/${w.vm}/`));
});

test('kvm-backup worker --metrics-port: JSON log lines on stdout, /metrics served, exit 0 on SIGTERM', async () => {
  const w = await createWorld({ label: 'metrics-cli', noVm: true });
  cleanups.push(() => w.close());
  const port = await freePort();
  const cli = fileURLToPath(new URL('../../client/cli.js', import.meta.url));
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['KVM_BACKUP_LOG_LEVEL'];
  const child = spawn(process.execPath, [cli, 'worker', '--node-only', '--metrics-port', String(port), '--config', w.configFile], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // run-tests stops it if this test dies before it does
  const pidDir = process.env['KVM_BACKUP_PID_DIR'];
  if (pidDir) {
    mkdirSync(pidDir, { recursive: true });
    writeFileSync(join(pidDir, String(child.pid)), String(child.pid));
  }
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 30_000;
    while (!stdout.includes('workers running')) {
      if (child.exitCode !== null || Date.now() > deadline) assert.fail(`the worker did not start: ${stdout}${stderr}`);
      await sleep(50);
    }
    const listening = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l['msg'] === 'metrics endpoint listening');
    assert.ok(listening, `a JSON line announces the endpoint: ${stdout}`);
    assert.deepEqual([listening['level'], listening['component'], listening['node'], listening['url']], ['info', 'worker', w.node, `http://127.0.0.1:${port}/metrics`]);
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /# TYPE kvm_backup_guest_pause_seconds histogram/);
  } finally {
    child.kill('SIGTERM');
    const code = await exited;
    if (pidDir) rmSync(join(pidDir, String(child.pid)), { force: true });
    assert.equal(code, 0, `exit code after SIGTERM; stderr: ${stderr}`);
  }
});
