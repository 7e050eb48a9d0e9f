/**
 * Workflows that run during an upgrade go on with the new code: Temporal replays their histories, and
 * the new code must issue the same commands where the history has them. Histories recorded with the
 * version before issue 10 (test/fixtures/histories/) are replayed against the current workflows (with
 * the production interceptors): the crash-safe rotation and the lock's liveness check by describe are
 * behind `patched()`, the removed progress signal handler issues no command.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import proto from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from '../../workers/workflow-bundle.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/histories/', import.meta.url));
const quiet = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

test('histories of the previous version replay against the current workflows', { timeout: 120_000 }, async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(files, ['backup-one-go-rotating.json', 'restore-one-go.json', 'vm-lock-held-with-liveness-checks.json']);
  const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: quiet });
  for (const f of files) {
    // the SDK's historyFromJSON trips over its two protobufjs copies: the proto package's own decoder reads the JSON
    const history = proto.temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(`${FIXTURES}${f}`, 'utf8')) as Record<string, unknown>);
    await assert.doesNotReject(
      Worker.runReplayHistory({ workflowBundle: bundle }, history, f),
      `${f} replays`,
    );
  }
});
