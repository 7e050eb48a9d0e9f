/**
 * Histories recorded by the code before the node slots and the batched scheduled runs (a scheduled
 * run of three VMs, one of them sequenced, on a simulated node; binary protobuf History in
 * test/fixtures/histories/) replay without a nondeterminism error on today's workflows: runs and
 * backups in flight during an upgrade go on as they began. The workflow code is bundled as the
 * control worker bundles it; no server. The fixtures were recorded with the code of commit 34aab88 (its
 * control worker, `kvm-backup worker --control-only`, and a simulated node of
 * test/helpers/simulated-nodes.ts), fetched with `fetchHistory()` and written with `History.encode`.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { installRuntime } from '../../workers/runtime.js';
import { workflowSource, WORKFLOW_INTERCEPTOR_MODULES } from '../../workers/workflow-bundle.js';

// dist/test/unit → the fixtures in the source tree
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/histories/', import.meta.url));

test('histories from before the node slots and the batches replay unchanged', { timeout: 120_000 }, async () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.binpb')).sort();
  assert.ok(files.length >= 3, `fixtures in ${FIXTURES}`);
  const histories = files.map((f) => ({
    workflowId: f.replace(/\.binpb$/, ''),
    history: proto.temporal.api.history.v1.History.decode(readFileSync(join(FIXTURES, f))),
  }));
  await installRuntime(); // the SDK's own lines (webpack) at warnings
  const source = workflowSource();
  const results = Worker.runReplayHistories(
    { ...source, ...('workflowsPath' in source ? { interceptors: { workflowModules: WORKFLOW_INTERCEPTOR_MODULES } } : {}), replayName: 'upgrade' },
    histories,
  );
  const failed: string[] = [];
  let replayed = 0;
  for await (const r of results) {
    replayed++;
    if (r.error) failed.push(`${r.workflowId}: ${String(r.error)}`);
  }
  assert.deepEqual(failed, []);
  assert.equal(replayed, files.length);
});
