/** The progress a node's heartbeat details carry (core/progress.ts): the report, its rate, and reading it back. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProgressMeter, progressOfDetails } from '../../core/progress.js';

const MiB = 2 ** 20;
const copying = (name: string, bytes: number, total = 100 * MiB) => ({ phase: 'retain', current: { name, bytes, total } });

test('the rate is measured over the window, per file, and starts again with the next file', () => {
  const m = new ProgressMeter('copyToRetain', 3_000);
  assert.deepEqual(m.report(copying('a', 0), 0), { activity: 'copyToRetain', file: 'a', bytes: 0, total: 100 * MiB, at: 0 });
  assert.equal(m.report(copying('a', 4 * MiB), 1_000)?.rateMiB, undefined, 'no rate within the first window');
  assert.equal(m.report(copying('a', 24 * MiB), 3_000)?.rateMiB, 8);
  assert.equal(m.report(copying('a', 30 * MiB), 4_000)?.rateMiB, 8, 'the last rate is kept until the next window');
  assert.equal(m.report(copying('a', 36 * MiB), 6_000)?.rateMiB, 4);
  assert.equal(m.report(copying('b', 1 * MiB), 7_000)?.rateMiB, undefined, 'another file: no rate of the previous one');
});

test('a block job reports as the block commit of its disk; details without progress report nothing', () => {
  const m = new ProgressMeter('mergeBack');
  assert.deepEqual(m.report({ phase: 'merge', disk: 'vda', cur: 5, end: 10 }, 1), { activity: 'mergeBack', file: 'block commit of vda', bytes: 5, total: 10, at: 1 });
  assert.equal(m.report({ phase: 'snapshot' }, 2), undefined);
});

test('reading details back: the report with its rate, or bytes and total of details without one', () => {
  const progress = { activity: 'exportBackup', file: 'x', bytes: 5, total: 10, rateMiB: 3, at: 9 };
  assert.deepEqual(progressOfDetails({ ...copying('x', 1, 10), progress }), progress);
  assert.deepEqual(progressOfDetails(copying('x', 1, 10)), { file: 'x', bytes: 1, total: 10 });
  assert.equal(progressOfDetails(undefined), undefined);
  assert.equal(progressOfDetails({ phase: 'restore' }), undefined);
});
