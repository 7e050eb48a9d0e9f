/**
 * Upgrading the workers under a running backup (docs/upgrades.md), on a real Temporal server and
 * slapd with the stub node worker (no VM): a backup starts on the control worker of this build,
 * the worker stops while the node's merge is still running, and a worker of another build finishes
 * it. The other build is this one with a changed backupWorkflow (test/helpers/changed-build.ts):
 *
 * - early: before the phases, a directory check (an extra activity) and a warning, behind
 *   `patched(EARLY)`; an old run has passed that point already, so it must not take it;
 * - late: before the rotation, a warning behind `patched(LATE)`; an old run reaches it on the new
 *   build, so it takes it (patched() is false only where the history has already gone past).
 *
 * Without the patch the same change fails the old run's workflow task with a non-determinism error
 * and the run waits where it is until a build that can replay it takes over. A patch left dormant
 * ([Temporal] DORMANT_PATCHES) is not taken by new runs, whose histories then replay on the old build.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { DeterminismViolationError } from '@temporalio/workflow';
import { NativeConnection, Worker } from '@temporalio/worker';
import { connectWorker } from '../../adapters/temporal/connection.js';
import { dispatchFor, workflowIdFor, workflowInput } from '../../core/dispatch.js';
import { parseValidLeafDn } from '../../core/naming.js';
import { startWorkers, type RunningWorkers } from '../../workers/run-workers.js';
import { installRuntime } from '../../workers/runtime.js';
import { buildWorkflowBundle } from '../../workers/workflow-bundle.js';
import type { BackupOutcome } from '../../workflows/backup.js';
import { bundleChangedWorkflows, replaceOnce } from '../helpers/changed-build.js';
import { familiesOf } from '../helpers/exposition.js';
import { addDirectoryLeaf, addDirectoryVm } from '../helpers/history-scenarios.js';
import { SDK_WORKFLOW_TASK_FAILURE_FAMILIES } from '../helpers/sdk-metric-names.js';
import { startStubNodeWorker, type StubNodeWorker } from '../helpers/stub-node.js';
import { createWorld, type World } from '../helpers/world.js';

const EARLY = 'kvm-backup-upgrade-test-directory-check';
const LATE = 'kvm-backup-upgrade-test-rotation-note';
const EARLY_NOTE = 'upgrade test: the directory answered before the snapshot';
const LATE_NOTE = 'upgrade test: noted before the rotation';

/** The changed backupWorkflow; `guarded` false: the early change without its patch. */
function changedBackup(guarded: boolean): (compiled: string) => string {
  return (js) => {
    // backup.ts imports patched() already (its own patches)
    let s = replaceOnce(
      js,
      "import { CancellationScope, log, patched, setHandler, upsertSearchAttributes } from '@temporalio/workflow';",
      "import { CancellationScope, log, patched, setHandler, upsertSearchAttributes } from '@temporalio/workflow';",
    );
    s = replaceOnce(
      s,
      '    for (const step of steps) {',
      `    if (${guarded ? `patched('${EARLY}')` : 'true'}) {\n        await directory.pingDirectory();\n        warnings.push('${EARLY_NOTE}');\n    }\n    for (const step of steps) {`,
    );
    return replaceOnce(s, "        enter('rotate');", `        if (patched('${LATE}')) warnings.push('${LATE_NOTE}');\n        enter('rotate');`);
  };
}

let w: World;
let connection: NativeConnection;
let stub: StubNodeWorker;
const builds = { current: '', patched: '', unpatched: '' };
const running = new Set<RunningWorkers>();

before(async () => {
  // the product's Runtime before the first native connection (the SDK allows one per process), with
  // the SDK's metrics: the non-determinism error is counted where the alert reads it
  await installRuntime({ sdkMetrics: true });
  w = await createWorld({ label: 'upgrade', noVm: true });
  connection = await connectWorker(w.config.temporal);
  stub = await startStubNodeWorker(connection, w.config.temporal.namespace, { node: w.node, virtualizationRoot: w.paths.virtualizationRoot });
  // the build of the workers in the fleet: the run's bundle of this build's workflows, or bundled here
  const prebuilt = process.env['KVM_BACKUP_WORKFLOW_BUNDLE'];
  builds.current = prebuilt ?? join(w.dir, 'current-bundle.js');
  if (!prebuilt) writeFileSync(builds.current, await buildWorkflowBundle());
  builds.patched = await bundleChangedWorkflows(join(w.dir, 'build-patched'), 'backup.js', changedBackup(true));
  builds.unpatched = await bundleChangedWorkflows(join(w.dir, 'build-unpatched'), 'backup.js', changedBackup(false));
});

// a test that failed halfway leaves no worker of its build polling for the next
afterEach(async () => {
  for (const r of [...running]) await stop(r).catch(() => undefined);
});

after(async () => {
  await stub?.shutdown();
  await connection?.close();
  await w?.close();
});

/** A control worker (workflows and directory activities) running `bundle`, as `kvm-backup worker --control-only` runs it. */
async function controlWorker(bundle: string, dormantPatches: string[] = [], metricsPort?: number): Promise<RunningWorkers> {
  const saved = process.env['KVM_BACKUP_WORKFLOW_BUNDLE'];
  process.env['KVM_BACKUP_WORKFLOW_BUNDLE'] = bundle;
  try {
    const config = { ...w.config, temporal: { ...w.config.temporal, dormantPatches } };
    const r = await startWorkers(config, { node: false, control: true }, { controlQueue: w.controlQueue, ...(metricsPort === undefined ? {} : { metricsPort }) });
    running.add(r);
    return r;
  } finally {
    if (saved === undefined) delete process.env['KVM_BACKUP_WORKFLOW_BUNDLE'];
    else process.env['KVM_BACKUP_WORKFLOW_BUNDLE'] = saved;
  }
}

async function stop(r: RunningWorkers): Promise<void> {
  await r.shutdown();
  running.delete(r);
}

/** A one-go backup of a VM of its own, started as the watcher starts it. */
async function startBackup(label: string): Promise<WorkflowHandle> {
  const vm = await addDirectoryVm(w, label);
  const leaf = await addDirectoryLeaf(w, vm, 'backup');
  const dispatch = dispatchFor('backup')!;
  return w.client.workflow.start('backupWorkflow', {
    taskQueue: w.controlQueue,
    workflowId: workflowIdFor(parseValidLeafDn(leaf.dn), dispatch),
    args: [workflowInput(leaf.dn, dispatch)],
  });
}

/** What a run's history shows: activities scheduled, patch markers, failed workflow tasks. */
async function historyOf(h: WorkflowHandle) {
  const history = await h.fetchHistory();
  const events = history.events ?? [];
  const decoded = (e: (typeof events)[number]) =>
    Object.values(e.markerRecordedEventAttributes?.details ?? {})
      .flatMap((p) => p.payloads ?? [])
      .map((p) => Buffer.from(p.data ?? []).toString('utf8'))
      .join(' ');
  return {
    history,
    activities: events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? ''] : [])),
    patches: events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch').map(decoded),
    failedTasks: events.flatMap((e) => (e.workflowTaskFailedEventAttributes ? [e.workflowTaskFailedEventAttributes.failure?.message ?? ''] : [])),
  };
}

/** The run's result; fails at once when one of its workflow tasks fails (a non-determinism error) instead of waiting. */
async function finished(h: WorkflowHandle): Promise<BackupOutcome> {
  let done = false;
  const watch = (async () => {
    while (!done) {
      const { failedTasks } = await historyOf(h);
      if (failedTasks.length) throw new Error(`a workflow task of ${h.workflowId} failed: ${failedTasks[0]}`);
      await sleep(250);
    }
  })();
  try {
    return (await Promise.race([h.result(), watch])) as BackupOutcome;
  } finally {
    done = true;
    await watch.catch(() => undefined);
  }
}

/** Scrapes a worker's endpoint until it counts a non-determinism error of backupWorkflow; that sample. */
async function nondeterminismCounted(url: string): Promise<{ text: string; line: string; value: number }> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await (await fetch(url)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith('temporal_workflow_task_execution_failed_total{') && l.includes('failure_reason="NonDeterminismError"') && l.includes('workflow_type="backupWorkflow"'));
    if (line) return { text, line, value: Number(line.split(' ').at(-1)) };
    assert.ok(Date.now() < deadline, `no non-determinism error counted at ${url}:\n${text.split('\n').filter((l) => l.includes('workflow_task')).join('\n')}`);
    await sleep(250);
  }
}

const has = (patches: string[], id: string) => patches.some((p) => p.includes(id));

/** Replays a history against a bundle; resolves, or rejects with the SDK's error. */
async function replay(bundle: string, h: WorkflowHandle): Promise<void> {
  const { history } = await historyOf(h);
  await Worker.runReplayHistory({ workflowBundle: { codePath: bundle }, sinks: { outcomes: { record: { fn: () => undefined, callDuringReplay: false } } } }, history, h.workflowId);
}

test('a backup started on this build, its workers stopped in the middle, finishes on a build with a patched change; the branch it had passed is not taken, a new run takes it', { timeout: 180_000 }, async () => {
  const oldBuild = await controlWorker(builds.current);
  const merging = stub.hold('mergeBack');
  const oldRun = await startBackup('up-old');
  await merging.entered; // the VM is on its overlay, the node is merging
  await stop(oldBuild);

  const newBuild = await controlWorker(builds.patched);
  merging.release();
  const oldOutcome = await finished(oldRun);
  const old = await historyOf(oldRun);
  assert.ok(!oldOutcome.warnings.includes(EARLY_NOTE), `the old run took the branch it had passed: ${oldOutcome.warnings.join('; ')}`);
  assert.ok(!old.activities.includes('pingDirectory'), `no directory check in the old run: ${old.activities.join(' ')}`);
  assert.ok(!has(old.patches, EARLY), 'no marker for the early patch in the old run');
  // the rotation came after the upgrade: the old run took the late branch there, with its marker
  assert.ok(oldOutcome.warnings.includes(LATE_NOTE), `the late branch: ${oldOutcome.warnings.join('; ')}`);
  assert.ok(has(old.patches, LATE), 'the late marker in the old run');
  assert.deepEqual(old.failedTasks, [], 'no workflow task of the old run failed');

  const newRun = await startBackup('up-new');
  const newOutcome = await finished(newRun);
  const fresh = await historyOf(newRun);
  assert.ok(newOutcome.warnings.includes(EARLY_NOTE) && newOutcome.warnings.includes(LATE_NOTE), newOutcome.warnings.join('; '));
  // the early change lies before the phases, after the backup took its node slot
  assert.deepEqual(fresh.activities.slice(0, 5), ['requestVmLock', 'updateLeaf', 'loadBackupContext', 'requestNodeSlot', 'pingDirectory']);
  assert.ok(has(fresh.patches, EARLY) && has(fresh.patches, LATE), 'both markers in the new run');
  await stop(newBuild);

  // the two runs replay on the new build; the new run cannot continue on the old build (a mixed
  // fleet's hazard, docs/upgrades.md: why a new patch stays dormant until every worker has it)
  await replay(builds.patched, oldRun);
  await replay(builds.patched, newRun);
  await assert.rejects(replay(builds.current, newRun), (e: unknown) => {
    assert.ok(e instanceof DeterminismViolationError, String(e));
    assert.match(e.message, new RegExp(`Nondeterminism error: Non-deprecated patch marker encountered for change ${EARLY}, but there is no corresponding change command`));
    return true;
  });
});

test('without the patch, the stopped backup fails its workflow task with a non-determinism error and waits where it is; the patched build then finishes it', { timeout: 240_000 }, async () => {
  const oldBuild = await controlWorker(builds.current);
  const merging = stub.hold('mergeBack');
  const run = await startBackup('up-unpatched');
  await merging.entered;
  await stop(oldBuild);

  const broken = await controlWorker(builds.unpatched, [], 0);
  merging.release();
  let seen = await historyOf(run);
  const deadline = Date.now() + 60_000;
  while (seen.failedTasks.length === 0) {
    assert.ok(Date.now() < deadline, 'the unpatched build never took the workflow task');
    await sleep(200);
    seen = await historyOf(run);
  }
  // the new build's first command (the directory check) meets the old run's next event (the preflight phase's search attribute)
  assert.match(seen.failedTasks[0]!, /\[TMPRL1100\] Nondeterminism error: Activity machine does not handle this event: HistoryEvent\(id: \d+, UpsertWorkflowSearchAttributes\)/);
  // nothing moved: the merge's result is in the history, no step after it was scheduled, the run still runs
  assert.equal(seen.activities.at(-1), 'mergeBack');
  assert.equal((await run.describe()).status.name, 'RUNNING');
  await assert.rejects(replay(builds.unpatched, run), DeterminismViolationError);
  // and the worker counts it where KvmBackupWorkflowNondeterminism (deploy/prometheus) reads it
  const counted = await nondeterminismCounted(broken.metricsServer!.url);
  for (const [name, type] of SDK_WORKFLOW_TASK_FAILURE_FAMILIES) assert.equal(familiesOf(counted.text).get(name), type, name);
  assert.ok(counted.value >= 1, counted.line);
  await stop(broken);

  const fixed = await controlWorker(builds.patched);
  const outcome = (await run.result()) as BackupOutcome;
  assert.ok(!outcome.warnings.includes(EARLY_NOTE), outcome.warnings.join('; '));
  assert.equal(outcome.rotated.length, 0);
  await stop(fixed);
});

test('a patch left dormant (DORMANT_PATCHES) is not taken by a new run and leaves no marker: the old build replays that run', { timeout: 120_000 }, async () => {
  const rolling = await controlWorker(builds.patched, [EARLY, LATE]);
  const run = await startBackup('up-dormant');
  const outcome = await finished(run);
  const h = await historyOf(run);
  assert.ok(!outcome.warnings.includes(EARLY_NOTE) && !outcome.warnings.includes(LATE_NOTE), outcome.warnings.join('; '));
  assert.ok(!h.activities.includes('pingDirectory'));
  // the release's own patches (core/workflow-patches.ts) are taken as usual; only the dormant ones leave no marker
  assert.deepEqual(h.patches.filter((p) => has([p], EARLY) || has([p], LATE)), []);
  await stop(rolling);
  await replay(builds.current, run);
  await replay(builds.patched, run);
});
