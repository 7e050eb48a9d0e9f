import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from '../../workers/prometheus.js';

test('counters: HELP, TYPE, one line per label set, label values escaped', async () => {
  const r = new Registry();
  const c = r.counter('kvm_backup_operations_total', 'Operations that ended.\nSecond line \\ kept.', ['operation', 'outcome', 'code']);
  c.inc({ operation: 'backup', outcome: 'success', code: 0 });
  c.inc({ operation: 'backup', outcome: 'success', code: 0 });
  c.inc({ operation: 'backup', outcome: 'failure', code: 33 }, 1);
  c.inc({ operation: 'we"ird\\name\n', outcome: 'x', code: 1 }, 0);
  assert.equal(
    await r.render(),
    [
      '# HELP kvm_backup_operations_total Operations that ended.\\nSecond line \\\\ kept.',
      '# TYPE kvm_backup_operations_total counter',
      'kvm_backup_operations_total{operation="backup",outcome="success",code="0"} 2',
      'kvm_backup_operations_total{operation="backup",outcome="failure",code="33"} 1',
      'kvm_backup_operations_total{operation="we\\"ird\\\\name\\n",outcome="x",code="1"} 0',
      '',
    ].join('\n'),
  );
});

test('histograms: cumulative buckets, +Inf, _sum and _count', async () => {
  const r = new Registry();
  const h = r.histogram('kvm_backup_guest_pause_seconds', 'Guest pause.', ['method'], [0.01, 0.05, 0.1]);
  for (const v of [0.004, 0.02, 0.02, 0.5]) h.observe({ method: 'live' }, v);
  assert.equal(
    await r.render(),
    [
      '# HELP kvm_backup_guest_pause_seconds Guest pause.',
      '# TYPE kvm_backup_guest_pause_seconds histogram',
      'kvm_backup_guest_pause_seconds_bucket{le="0.01",method="live"} 1',
      'kvm_backup_guest_pause_seconds_bucket{le="0.05",method="live"} 3',
      'kvm_backup_guest_pause_seconds_bucket{le="0.1",method="live"} 3',
      'kvm_backup_guest_pause_seconds_bucket{le="+Inf",method="live"} 4',
      'kvm_backup_guest_pause_seconds_sum{method="live"} 0.544',
      'kvm_backup_guest_pause_seconds_count{method="live"} 4',
      '',
    ].join('\n'),
  );
});

test('misuse is refused: wrong labels, a falling counter, bad names, unordered buckets, a name twice', async () => {
  const r = new Registry();
  const c = r.counter('a_total', 'a', ['x']);
  assert.throws(() => c.inc({ y: '1' }), /takes labels x/);
  assert.throws(() => c.inc({ x: '1', y: '2' }), /takes labels x/);
  assert.throws(() => c.inc({ x: '1' }, -1), /cannot grow/);
  assert.throws(() => r.counter('a_total', 'again'), /twice/);
  assert.throws(() => r.counter('bad-name', 'x'), /not valid/);
  assert.throws(() => r.counter('b_total', 'x', ['le']), /not valid/);
  assert.throws(() => r.histogram('h', 'x', [], [1, 1]), /increase/);
  const h = r.histogram('h2', 'x', [], [1]);
  h.observe({}, NaN);
  assert.equal(await h.countOf({}), 0, 'NaN is not an observation');
});

test('a metric without series still announces itself', async () => {
  const r = new Registry();
  r.counter('kvm_backup_bytes_copied_total', 'Bytes.', ['operation', 'phase']);
  assert.equal(await r.render(), '# HELP kvm_backup_bytes_copied_total Bytes.\n# TYPE kvm_backup_bytes_copied_total counter\n');
});
