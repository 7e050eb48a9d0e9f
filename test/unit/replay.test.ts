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
import { Worker } from '@temporalio/worker';
import * as workflows from '../../workflows/index.js';
import { installRuntime } from '../../workers/runtime.js';
import { buildWorkflowBundle } from '../../workers/workflow-bundle.js';
import { readStoredHistories, type StoredHistory } from '../helpers/history-files.js';

/** The bundle `npm test` built for every test file, or this build's, bundled here. */
async function workflowBundleCode(): Promise<string> {
  const prebuilt = process.env['KVM_BACKUP_WORKFLOW_BUNDLE'];
  return prebuilt && existsSync(prebuilt) ? readFileSync(prebuilt, 'utf8') : buildWorkflowBundle();
}

/** Replays each history against `code`; the error of each that fails, by history name. */
export async function replayAll(code: string, histories: StoredHistory[]): Promise<Map<string, Error>> {
  // the product's Runtime: the SDK's own lines (a replay worker's state changes) stay at warnings
  await installRuntime();
  const failures = new Map<string, Error>();
  const results = Worker.runReplayHistories(
    {
      workflowBundle: { code },
      // the outcome sink of workflows/interceptors.ts is never called during replay; it must exist
      sinks: { outcomes: { record: { fn: () => undefined, callDuringReplay: false } } },
    },
    histories.map((h) => ({ workflowId: h.workflowId, history: h.history })),
  );
  // one history at a time, results in the order given
  let i = 0;
  for await (const r of results) {
    const h = histories[i++]!;
    if (r.error) failures.set(h.name, r.error);
  }
  assert.equal(i, histories.length, 'the replay worker stopped before the last history');
  return failures;
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
  ]) {
    assert.ok(names.has(n), `test/histories/${n}.json.gz is missing: run npm run record-histories`);
  }
});

test('every stored history replays against this build without a non-determinism error', { timeout: 120_000 }, async (t) => {
  const failures = await replayAll(await workflowBundleCode(), histories);
  for (const h of histories) {
    await t.test(`${h.name} (${h.workflowType}, ${h.history.events?.length} events, recorded ${h.recorded.at.slice(0, 10)} at ${h.recorded.commit})`, () => {
      const error = failures.get(h.name);
      if (error) assert.fail(`${h.name} does not replay: ${error.name}: ${error.message}\n(docs/upgrades.md: put the change behind patched())`);
    });
  }
});
