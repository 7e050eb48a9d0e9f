import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ANSWER_MODES, dispatchFor, REQUEST_MODES, temporalReusePolicy, workflowIdFor, workflowInput,
} from '../../core/dispatch.js';
import { leafDn, parseValidLeafDn } from '../../core/naming.js';
import { STEP_MODES } from '../../core/provisioning.js';

const SUB = 'ou=virtualization,ou=services,dc=stoney-cloud,dc=org';
const leaf = parseValidLeafDn(leafDn(SUB, 'vm-1', '20261127T030000Z'));

test('every step mode of the seed, the one-go extension and the vm-manager cancel dispatch to a workflow', () => {
  assert.deepEqual([...REQUEST_MODES].sort(), [...Object.keys(STEP_MODES), 'backup', 'finished'].sort());
  const rows = Object.fromEntries(REQUEST_MODES.map((m) => [m, dispatchFor(m)!]));
  assert.deepEqual(
    Object.fromEntries(Object.entries(rows).map(([m, d]) => [m, [d.workflow, d.steps?.join('+') ?? 'all']])),
    {
      backup: ['backupWorkflow', 'all'],
      snapshot: ['backupWorkflow', 'snapshot'],
      merge: ['backupWorkflow', 'merge'],
      retain: ['backupWorkflow', 'retain'],
      delete: ['deleteWorkflow', 'all'],
      unretainSmallFiles: ['restoreWorkflow', 'unretainSmallFiles'],
      unretainLargeFiles: ['restoreWorkflow', 'unretainLargeFiles'],
      restore: ['restoreWorkflow', 'restore'],
      cleanup: ['restoreWorkflow', 'cleanup'],
      finished: ['restoreWorkflow', 'cleanup'],
    },
  );
  assert.equal(rows['backup']!.doneMode, 'finished');
  assert.equal(rows['snapshot']!.runningMode, 'snapshotting');
  assert.equal(rows['delete']!.doneMode, 'deleted');
});

test('answers and intermediate modes are not requests, and garbage is neither', () => {
  for (const m of ['snapshotting', 'snapshotted', 'merged', 'retained', 'initialized', 'deleting', 'deleted', 'restored', 'cleaningUp']) {
    assert.ok(ANSWER_MODES.has(m), m);
    assert.equal(dispatchFor(m), undefined, m);
  }
  for (const m of ['', 'Snapshot', 'snapshot ', 'toString', '__proto__', 'constructor', 'rm -rf /']) {
    assert.equal(dispatchFor(m), undefined, JSON.stringify(m));
    assert.equal(ANSWER_MODES.has(m), false, JSON.stringify(m));
  }
});

test('workflow IDs derive from the leaf, plus the step when one step is asked for', () => {
  assert.equal(workflowIdFor(leaf, dispatchFor('backup')!), 'backup/vm-1/20261127T030000Z');
  assert.equal(workflowIdFor(leaf, dispatchFor('merge')!), 'backup/vm-1/20261127T030000Z/merge');
  assert.equal(workflowIdFor(leaf, dispatchFor('delete')!), 'delete/vm-1/20261127T030000Z');
  assert.equal(workflowIdFor(leaf, dispatchFor('unretainSmallFiles')!), 'restore/vm-1/20261127T030000Z/unretainSmallFiles');
  assert.deepEqual(workflowInput(leaf.dn, dispatchFor('retain')!), { leafDn: leaf.dn, steps: ['retain'] });
  assert.deepEqual(workflowInput(leaf.dn, dispatchFor('backup')!), { leafDn: leaf.dn });
});

test('a completed backup step never runs again for its leaf; a completed restore may be asked again', () => {
  for (const m of ['backup', 'snapshot', 'merge', 'retain', 'delete']) assert.equal(temporalReusePolicy(dispatchFor(m)!), 'ALLOW_DUPLICATE_FAILED_ONLY', m);
  for (const m of ['unretainSmallFiles', 'unretainLargeFiles', 'restore', 'cleanup']) assert.equal(temporalReusePolicy(dispatchFor(m)!), 'ALLOW_DUPLICATE', m);
});

test('the vm-manager\'s cancel (finished with state 0) asks for the restore cleanup', () => {
  const d = dispatchFor('finished')!;
  assert.equal(d.workflow, 'restoreWorkflow');
  assert.deepEqual(d.steps, ['cleanup']);
  assert.equal(d.runningMode, 'cleaningUp');
  assert.equal(d.doneMode, 'finished');
  assert.ok(!ANSWER_MODES.has('finished'));
});
