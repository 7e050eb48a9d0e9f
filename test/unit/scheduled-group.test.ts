import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchWindow, chunked, nodeBatches } from '../../core/scheduled-group.js';

test('chunked keeps the order and cuts at the size; a bad size is refused', () => {
  assert.deepEqual(chunked([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(chunked([], 3), []);
  assert.throws(() => chunked([1], 0), RangeError);
});

test('nodeBatches: per node in name order, members in their order, batches of at most the size', () => {
  const m = (vm: string, node: string) => ({ vm, node });
  const members = [m('a', 'n2'), m('b', 'n1'), m('c', 'n2'), m('d', 'n2'), m('e', 'n1'), m('f', 'n2')];
  assert.deepEqual(
    nodeBatches(members, 3).map(({ node, batches }) => ({ node, batches: batches.map((b) => b.map((x) => x.vm)) })),
    [
      { node: 'n1', batches: [['b', 'e']] },
      { node: 'n2', batches: [['a', 'c', 'd'], ['f']] },
    ],
  );
});

test('nodeBatches of 5,000 members over 20 nodes: 250 per node in batches of at most 200', () => {
  const members = Array.from({ length: 5_000 }, (_, i) => ({ vm: `vm-${i}`, node: `node-${String(i % 20).padStart(2, '0')}` }));
  const plan = nodeBatches(members, 200);
  assert.equal(plan.length, 20);
  for (const { batches } of plan) assert.deepEqual(batches.map((b) => b.length), [200, 50]);
});

test('batchWindow: the node slots and one waiting; no limit runs the batch side by side', () => {
  assert.equal(batchWindow(2, 200), 3);
  assert.equal(batchWindow(2, 2), 2);
  assert.equal(batchWindow(0, 200), 200);
});
