/**
 * The shipped alert rules and Grafana dashboard name only metrics the workers serve: the product's
 * and the process's from the real WorkerMetrics registry, the Temporal SDK's from the list a real
 * scrape confirms (test/helpers/sdk-metric-names.ts, checked by observability-endpoint.test.ts and,
 * for a failed workflow task's, by worker-upgrade.test.ts).
 * promtool checks the rules file and runs its unit tests (kvm-backup.rules.test.yml).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { WorkerMetrics } from '../../workers/metrics.js';
import { familiesOf, sampleNamesOf } from '../helpers/exposition.js';
import {
  dashboardQueries, metricNamesOf, promtool, PROMETHEUS_SERIES, ruleExpressions, RULES_FILE, RULES_TEST_FILE, type Query,
} from '../helpers/monitoring-files.js';
import { SDK_METRIC_FAMILIES, SDK_WORKFLOW_TASK_FAILURE_FAMILIES } from '../helpers/sdk-metric-names.js';

async function servedNames(): Promise<Set<string>> {
  const m = new WorkerMetrics();
  m.registry.collectProcessMetrics();
  const names = sampleNamesOf(familiesOf(await m.render()));
  for (const n of sampleNamesOf(new Map([...SDK_METRIC_FAMILIES, ...SDK_WORKFLOW_TASK_FAILURE_FAMILIES]))) names.add(n);
  for (const n of PROMETHEUS_SERIES) names.add(n);
  return names;
}

function unknownNames(queries: Query[], served: Set<string>): string[] {
  const unknown: string[] = [];
  for (const q of queries) {
    const names = metricNamesOf(q.expr);
    if (names.length === 0) unknown.push(`${q.where}: no metric in ${q.expr}`);
    for (const n of names) if (!served.has(n)) unknown.push(`${q.where}: ${n}`);
  }
  return unknown;
}

test('the name reader: metrics, not functions, labels, keywords, numbers or Grafana variables', () => {
  assert.deepEqual(
    metricNamesOf('histogram_quantile(0.9, sum by (le, task_queue) (rate(a_bucket{x="y{z}"}[5m]))) > 1e3 and on(instance) b offset 1h'),
    ['a_bucket', 'b'],
  );
  assert.deepEqual(metricNamesOf('count(min by (vm) (c{node=~"$node"}) > 26 * 3600) or vector(0)'), ['c']);
  assert.deepEqual(metricNamesOf('sum(rate(d_total[$__rate_interval])) by (code) / ignoring(code) group_left e'), ['d_total', 'e']);
  assert.deepEqual(metricNamesOf('(f unless f offset 30m) or increase(f[30m])'), ['f']);
});

test('every PromQL expression of the alert rules names only metrics a worker serves', async () => {
  const queries = ruleExpressions();
  assert.ok(queries.length >= 8, `${queries.length} rules`);
  assert.deepEqual(unknownNames(queries, await servedNames()), []);
});

test('every query of the Grafana dashboard names only metrics a worker serves', async () => {
  const queries = dashboardQueries();
  assert.ok(queries.length >= 20, `${queries.length} queries`);
  assert.deepEqual(unknownNames(queries, await servedNames()), []);
});

test('promtool: the rules file is valid and its unit tests pass', (t) => {
  const tool = promtool();
  if (!tool) {
    t.skip('no promtool and no apt-get to fetch it');
    return;
  }
  execFileSync(tool, ['check', 'rules', RULES_FILE], { stdio: 'pipe' });
  try {
    execFileSync(tool, ['test', 'rules', RULES_TEST_FILE], { cwd: dirname(RULES_TEST_FILE), stdio: 'pipe' });
  } catch (e) {
    const out = e as { stdout?: Buffer; stderr?: Buffer };
    assert.fail(`promtool test rules failed:\n${out.stdout?.toString() ?? ''}${out.stderr?.toString() ?? ''}`);
  }
});
