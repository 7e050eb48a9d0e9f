/**
 * Replaying stored histories (test/helpers/history-files.ts) against a workflow bundle with the SDK's
 * replay worker, in memory, no server: what the replay test and the recorder's own check use.
 */
import { Worker } from '@temporalio/worker';
import { installRuntime } from '../../workers/runtime.js';
import type { StoredHistory } from './history-files.js';

/** Replays each history against the bundle's code; the error of each that fails (a DeterminismViolationError or ReplayError), by history name. */
export async function replayStoredHistories(code: string, histories: StoredHistory[]): Promise<Map<string, Error>> {
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
  if (i !== histories.length) throw new Error(`the replay worker stopped after ${i} of ${histories.length} histories`);
  return failures;
}
