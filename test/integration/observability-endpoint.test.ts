/**
 * A worker's one Prometheus endpoint on the real stack, without a VM (a backup of a VM libvirt does
 * not know fails in preflight, 23, which is all these tests need):
 *
 * - it serves the product's metrics, the process's and the Temporal SDK's own `temporal_*` families,
 *   no family twice; every SDK family of test/helpers/sdk-metric-names.ts (the list the unit test of
 *   the rules and the dashboard relies on) and every metric those files name is in the real scrape;
 * - the per-VM last successful backup comes from the directory: at start, again after a backup of
 *   that VM ended, and the same after a worker restart;
 * - `kvm-backup worker --metrics-port N`, as systemd runs it, serves the SDK's families too and still
 *   exits 0 on SIGTERM with the SDK's exporter running.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { leafDn, leafTimestamp, nodeTaskQueue } from '../../core/naming.js';
import { newLeafAttributes } from '../../core/provisioning.js';
import { freePort } from '../../stack/daemon.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { startWorkers, type RunningWorkers } from '../../workers/run-workers.js';
import { addLeaf, startBackup } from '../helpers/backup.js';
import { familiesOf, sampleNamesOf } from '../helpers/exposition.js';
import { dashboardQueries, metricNamesOf, PROMETHEUS_SERIES, ruleExpressions } from '../helpers/monitoring-files.js';
import { SDK_METRIC_FAMILIES, SDK_WORKFLOW_TASK_FAILURE_FAMILIES } from '../helpers/sdk-metric-names.js';
import { createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return res.text();
}

async function scrapeUntil(url: string, ready: (text: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await scrape(url);
    if (ready(text)) return text;
    if (Date.now() > deadline) assert.fail(`${what} did not show within ${timeoutMs} ms:\n${text}`);
    await sleep(200);
  }
}

/** The samples of one metric: their label sets (as objects) and values. */
function samples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

function lastSuccess(text: string, w: World): number | undefined {
  return samples(text, 'kvm_backup_last_success_timestamp_seconds').find((s) => s.labels['vm'] === w.vm)?.value;
}

/** A backup of the world's VM that fails in preflight (the VM is not defined in libvirt): the control worker hears its end. */
async function failingBackup(w: World): Promise<void> {
  const leaf = await addLeaf(w);
  await assert.rejects((await startBackup(w, { leafDn: leaf.dn, attempts: 1 })).result());
}

async function start(w: World): Promise<RunningWorkers> {
  const workers = await startWorkers(w.config, { node: true, control: true }, { controlQueue: w.controlQueue, metricsPort: 0 });
  cleanups.push(() => workers.shutdown());
  return workers;
}

test("one endpoint: the product's, the process's and the SDK's metrics; every metric the rules and the dashboard name is served", async () => {
  const w = await createWorld({ label: 'obs-sdk', noVm: true });
  cleanups.push(() => w.close());
  const workers = await start(w);
  const url = workers.metricsServer!.url;
  await failingBackup(w);

  // the SDK's exporter publishes what it recorded a little later
  const text = await scrapeUntil(url, (t) => [...SDK_METRIC_FAMILIES.keys()].every((n) => familiesOf(t).has(n)), 'every SDK family');
  const families = familiesOf(text); // throws if a family is declared twice
  for (const [name, type] of SDK_METRIC_FAMILIES) assert.equal(families.get(name), type, name);
  assert.deepEqual(samples(text, 'kvm_backup_sdk_metrics_up').map((s) => s.value), [1]);
  const nodePollers = samples(text, 'temporal_num_pollers').filter((s) => s.labels['task_queue'] === nodeTaskQueue(w.node) && s.labels['poller_type'] === 'activity_task');
  assert.ok(nodePollers.length === 1 && nodePollers[0]!.value > 0, `activity pollers on the node queue: ${JSON.stringify(nodePollers)}`);
  assert.ok(samples(text, 'process_resident_memory_bytes')[0]!.value > 0);
  // the labels the dashboard groups the SDK's series by
  assert.ok(samples(text, 'temporal_worker_task_slots_used').some((s) => s.labels['worker_type'] === 'ActivityWorker'));
  assert.ok(samples(text, 'temporal_activity_execution_failed_total').some((s) => s.labels['activity_type'] === 'preflight'));
  assert.ok(samples(text, 'temporal_workflow_failed_total').some((s) => s.labels['workflow_type'] === 'backupWorkflow'));

  // a failed workflow task's families appear only after one failed: worker-upgrade.test.ts checks them
  const served = sampleNamesOf(new Map([...families, ...SDK_WORKFLOW_TASK_FAILURE_FAMILIES]));
  const missing = [...ruleExpressions(), ...dashboardQueries()]
    .flatMap((q) => metricNamesOf(q.expr).map((n) => ({ where: q.where, n })))
    .filter(({ n }) => !served.has(n) && !PROMETHEUS_SERIES.has(n))
    .map(({ where, n }) => `${where}: ${n}`);
  assert.deepEqual(missing, []);

  // the SDK's endpoint gone: the product's part is still served, and says so
  const alone = await workers.metrics.exposition('http://127.0.0.1:9/metrics');
  assert.match(alone, /^kvm_backup_sdk_metrics_up 0$/m);
  assert.doesNotMatch(alone, /^temporal_/m);
});

test('the last successful backup of a VM comes from the directory: at start, after a backup ended, after a restart', async () => {
  const w = await createWorld({ label: 'obs-fresh', noVm: true });
  cleanups.push(() => w.close());
  const hoursAgo = (h: number) => leafTimestamp(new Date(Date.now() - h * 3600_000));
  const addAnswered = async (ou: string, mode: string, returnValue: number) =>
    w.directory.add(leafDn(DEMO_SERVICE_SUBTREE, w.vm, ou), { ...newLeafAttributes(ou, mode), sstProvisioningState: ou, sstProvisioningReturnValue: String(returnValue) });
  const seconds = (ou: string) => Date.parse(`${ou.slice(0, 4)}-${ou.slice(4, 6)}-${ou.slice(6, 8)}T${ou.slice(9, 11)}:${ou.slice(11, 13)}:${ou.slice(13, 15)}Z`) / 1000;
  const old = hoursAgo(50);
  await addAnswered(old, 'finished', 0);
  await addAnswered(hoursAgo(26), 'snapshotting', 33); // newer, failed: not a backup

  let workers = await start(w);
  let text = await scrapeUntil(workers.metricsServer!.url, (t) => lastSuccess(t, w) !== undefined, 'the VM\'s last successful backup');
  assert.equal(lastSuccess(text, w), seconds(old));
  const series = samples(text, 'kvm_backup_last_success_age_seconds').find((s) => s.labels['vm'] === w.vm)!;
  assert.deepEqual(series.labels, { vm: w.vm, node: w.node, pool: w.pool });
  assert.ok(Math.abs(series.value - (Date.now() / 1000 - seconds(old))) < 120, `age ${series.value} s`);

  // fc-brokerd finishes a newer backup: seen once a backup of the VM ends on this worker, not before
  const newer = hoursAgo(2);
  await addAnswered(newer, 'finished', 0);
  assert.equal(lastSuccess(await scrape(workers.metricsServer!.url), w), seconds(old));
  await failingBackup(w);
  await scrapeUntil(workers.metricsServer!.url, (t) => lastSuccess(t, w) === seconds(newer), 'the newer backup after the outcome');

  // a restart: the first value served is the directory's, never "none"
  await workers.shutdown();
  workers = await start(w);
  text = await scrapeUntil(workers.metricsServer!.url, (t) => lastSuccess(t, w) !== undefined, 'the last successful backup after the restart');
  assert.equal(lastSuccess(text, w), seconds(newer));
});

test('kvm-backup worker --metrics-port: the SDK families on the one endpoint, exit 0 on SIGTERM', async () => {
  const w = await createWorld({ label: 'obs-cli', noVm: true });
  cleanups.push(() => w.close());
  const port = await freePort();
  const cli = fileURLToPath(new URL('../../client/cli.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'worker', '--node-only', '--metrics-port', String(port), '--config', w.configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // run-tests stops it if this test dies before it does
  const pidDir = process.env['KVM_BACKUP_PID_DIR'];
  if (pidDir) {
    mkdirSync(pidDir, { recursive: true });
    writeFileSync(join(pidDir, String(child.pid)), String(child.pid));
  }
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 30_000;
    while (!output.includes('workers running')) {
      if (child.exitCode !== null || Date.now() > deadline) assert.fail(`the worker did not start: ${output}`);
      await sleep(50);
    }
    const text = await scrapeUntil(`http://127.0.0.1:${port}/metrics`, (t) => familiesOf(t).has('temporal_num_pollers'), 'the SDK pollers');
    assert.match(text, /^kvm_backup_sdk_metrics_up 1$/m);
    assert.ok(samples(text, 'temporal_num_pollers').some((s) => s.labels['task_queue'] === nodeTaskQueue(w.node)));
  } finally {
    child.kill('SIGTERM');
    const code = await exited;
    if (pidDir) rmSync(join(pidDir, String(child.pid)), { force: true });
    assert.equal(code, 0, `exit code after SIGTERM; output: ${output}`);
  }
});
