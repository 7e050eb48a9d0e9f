/**
 * Upgrade safety (docs/upgrades.md): every stored workflow history (test/histories/, recorded by
 * `npm run record-histories`) replays against this build's workflow bundle without a
 * non-determinism error. A change to a workflow that a running workflow could not survive (an
 * activity inserted, removed or reordered, a timer or child workflow added, without `patched()`)
 * fails here, before a worker with it reaches a fleet. Needs no server: the SDK's replay worker
 * runs the histories in memory.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as workflows from '../../workflows/index.js';
import { buildWorkflowBundle } from '../../workers/workflow-bundle.js';
import { readStoredHistories } from '../helpers/history-files.js';
import { replayStoredHistories } from '../helpers/replay.js';

/** The bundle `npm test` built for every test file, or this build's, bundled here. */
async function workflowBundleCode(): Promise<string> {
  const prebuilt = process.env['KVM_BACKUP_WORKFLOW_BUNDLE'];
  return prebuilt && existsSync(prebuilt) ? readFileSync(prebuilt, 'utf8') : buildWorkflowBundle();
}

const histories = readStoredHistories();

test('the stored histories cover every workflow type and the paths docs/upgrades.md lists', () => {
  const types = Object.entries(workflows)
    .filter(([name, v]) => typeof v === 'function' && name.endsWith('Workflow'))
    .map(([name]) => name)
    .sort();
  const recorded = new Set(histories.map((h) => h.workflowType));
  assert.deepEqual(types.filter((t) => !recorded.has(t)), [], 'workflow types without a stored history');
  const names = new Set(histories.map((h) => h.name));
  for (const n of [
    'backup/one-go', 'backup/step-snapshot', 'backup/step-merge', 'backup/step-retain', 'backup/failure-compensation', 'backup/waiting-for-lock',
    'restore/one-go-confirmed', 'restore/one-go-cancelled', 'restore/step-unretainSmallFiles', 'restore/step-unretainLargeFiles', 'restore/step-restore',
    'restore/step-cleanup', 'delete/delete', 'verify/verify', 'scheduled-backup/group', 'vm-lock/contention', 'node-probe/probe',
    'scheduled-batch/batch', 'node-slots/contention', 'backup/waiting-for-slot', 'vm-lock/held-with-liveness-checks',
  ]) {
    assert.ok(names.has(n), `test/histories/${n}.json.gz is missing: run npm run record-histories`);
  }
});

test('every stored history replays against this build without a non-determinism error', { timeout: 120_000 }, async (t) => {
  const failures = await replayStoredHistories(await workflowBundleCode(), histories);
  for (const h of histories) {
    await t.test(`${h.name} (${h.workflowType}, ${h.history.events?.length} events, recorded ${h.recorded.at.slice(0, 10)} at ${h.recorded.commit})`, () => {
      const error = failures.get(h.name);
      if (error) assert.fail(`${h.name} does not replay: ${error.name}: ${error.message}\n(docs/upgrades.md: put the change behind patched())`);
    });
  }
});
