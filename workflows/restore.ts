/**
 * Restore of one VM from one backup leaf (SPEC §3, original §4), in the vm-manager's steps:
 *
 *   unretainSmallFiles  = the XML and LDIF to the retain directory
 *   (confirmation)      = vm-manager asks the operator; the CLI asks, or takes --yes
 *   unretainLargeFiles  = the state file and images too, then every check (37, 38, 44, 45)
 *   restore             = stop and undefine the VM, images back, restore or define + start, retain removed
 *   cleanup             = a cancelled restore: the retain directory removed
 *
 * Step by step (a leaf set to one of these modes) runs exactly that step and answers `…ing`, then
 * `…ed` with its return value and the processed stamp. In one go (the CLI) all run in order, with the
 * confirmation in between, and the leaf ends `finished` again. Nothing on the live VM changes before
 * every check has passed.
 */
import type { Duration } from '@temporalio/common';
import {
  ActivityCancellationType, condition, defineQuery, defineSignal, proxyActivities, setHandler, upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control/index.js';
import type { NodeActivities } from '../activities/node/index.js';
import type { RestoreResult, UnretainedLarge } from '../activities/node/restore/index.js';
import { Code } from '../core/exit-codes.js';
import { codeOf, DIRECTORY_RETRY, failure, LONG_STEP_RETRY, messageOf, STEP_RETRY } from '../core/failures.js';
import { nodeTaskQueue } from '../core/naming.js';
import { endedChanges, failedChanges, FINISHED, processedChanges, startedChanges, STEP_MODES } from '../core/provisioning.js';
import type { RestorePlan, RestoreStep } from '../core/restore-plan.js';
import { SA } from '../core/search-attributes.js';
import { lockableVmOf, withVmLock } from './vm-lock.js';

export interface RestoreRequest {
  leafDn: string;
  /** One step (vm-manager through LDAP); undefined = all in one go (the CLI). */
  steps?: RestoreStep[];
  /** One go: skip the confirmation point (the CLI's --yes). */
  confirmed?: boolean;
  /** Overrides sstRestoreVMWithoutState of the effective configuration. */
  withoutState?: boolean;
  /** How long a one-go restore waits at the confirmation point (default 1 day, then it cancels). */
  confirmationTimeout?: Duration;
  heartbeatTimeout?: Duration;
  attempts?: number;
}

export interface RestoreOutcome {
  leafDn: string;
  vm: string;
  ou: string;
  steps: RestoreStep[];
  cancelled: boolean;
  result?: RestoreResult;
  verified?: UnretainedLarge['verified'];
  warnings: string[];
  bytes: number;
  resumedBytes: number;
  /** Time the large files took to copy from the backup root (for throughput). */
  copyMs: number;
}

export interface RestoreProgress {
  phase: string;
  vm?: string;
  backupDir?: string;
  warnings: string[];
  awaitingConfirmation: boolean;
}

export const restoreProgressQuery = defineQuery<RestoreProgress>('progress');
/** true = go on with the large files and the restore; false = cancel (the retain files are removed). */
export const confirmRestoreSignal = defineSignal<[boolean]>('confirmRestore');

const directory = proxyActivities<ControlActivities>({ startToCloseTimeout: '2 minutes', retry: DIRECTORY_RETRY });

function nodeActivities(node: string, request: RestoreRequest) {
  const limit = <T extends typeof STEP_RETRY>(policy: T) => (request.attempts ? { ...policy, maximumAttempts: request.attempts } : policy);
  const common = {
    taskQueue: nodeTaskQueue(node),
    scheduleToStartTimeout: '10 minutes',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  } as const;
  return {
    quick: proxyActivities<NodeActivities>({ ...common, startToCloseTimeout: '10 minutes', retry: limit(STEP_RETRY) }),
    long: proxyActivities<NodeActivities>({
      ...common,
      startToCloseTimeout: '24 hours',
      heartbeatTimeout: request.heartbeatTimeout ?? '1 minute',
      retry: limit(LONG_STEP_RETRY),
    }),
  };
}

export async function restoreWorkflow(request: RestoreRequest): Promise<RestoreOutcome> {
  // query and signal answer from the start, also while the restore waits for the VM lock
  const progress: RestoreProgress = { phase: 'waiting for the VM lock', warnings: [], awaitingConfirmation: false };
  setHandler(restoreProgressQuery, () => progress);
  const confirmation: { decision?: boolean } = request.confirmed ? { decision: true } : {};
  setHandler(confirmRestoreSignal, (go) => {
    confirmation.decision ??= go;
  });
  const vm = lockableVmOf(request.leafDn);
  const run = () => runRestore(request, progress, confirmation);
  return vm ? withVmLock(vm, 'restore', run) : run();
}

async function runRestore(request: RestoreRequest, progress: RestoreProgress, confirmation: { decision?: boolean }): Promise<RestoreOutcome> {
  const { leafDn } = request;
  const oneGo = request.steps === undefined;
  const steps: RestoreStep[] = request.steps ?? ['unretainSmallFiles', 'unretainLargeFiles', 'restore'];
  progress.phase = 'starting';
  const enter = (phase: string) => {
    progress.phase = phase;
    upsertSearchAttributes([{ key: SA.phase, value: phase }]);
  };
  upsertSearchAttributes([{ key: SA.operation, value: 'restore' }, { key: SA.leaf, value: leafDn }]);

  let mode: string = STEP_MODES[steps[0]!][0];
  const fail = async (error: unknown): Promise<never> => {
    const code = codeOf(error);
    progress.phase = `failed (${code})`;
    upsertSearchAttributes([{ key: SA.exitCode, value: code }]);
    await directory.updateLeaf(leafDn, { ...failedChanges(mode, code), ...processedChanges(new Date()) }).catch(() => undefined);
    throw failure(code, messageOf(error), { leafDn, mode });
  };

  try {
    await directory.updateLeaf(leafDn, startedChanges(mode));
  } catch (e) {
    throw failure(Code.CANNOT_LOCK_MACHINE, `cannot lock the leaf ${leafDn}: ${messageOf(e)}`, { leafDn });
  }
  let plan: RestorePlan;
  let node: ReturnType<typeof nodeActivities>;
  try {
    const ctx = await directory.loadBackupContext(leafDn);
    node = nodeActivities(ctx.node, request);
    progress.vm = ctx.leaf.vm;
    upsertSearchAttributes([{ key: SA.vm, value: ctx.leaf.vm }, { key: SA.node, value: ctx.node }, ...(ctx.pool ? [{ key: SA.pool, value: ctx.pool }] : [])]);
    enter('locate');
    plan = await node.quick.locateBackup(ctx, request.withoutState, !(steps.length === 1 && steps[0] === 'cleanup'));
    progress.backupDir = plan.backupDir;
  } catch (e) {
    return fail(e);
  }
  const outcome: RestoreOutcome = { leafDn, vm: plan.vm, ou: plan.ou, steps, cancelled: false, warnings: progress.warnings, bytes: 0, resumedBytes: 0, copyMs: 0 };
  const answer = async (step: RestoreStep, last: boolean) => {
    const done = STEP_MODES[step][1];
    await directory.updateLeaf(leafDn, { ...endedChanges(done, 0), ...(last && !oneGo ? processedChanges(new Date()) : {}) });
  };

  let large: UnretainedLarge | undefined;
  for (const [i, step] of steps.entries()) {
    mode = STEP_MODES[step][0];
    if (i > 0) await directory.updateLeaf(leafDn, startedChanges(mode));
    try {
      if (step === 'unretainSmallFiles') {
        enter('unretain small files');
        progress.warnings.push(...(await node.quick.unretainSmallFiles(plan)).warnings);
      } else if (step === 'unretainLargeFiles') {
        enter('unretain large files');
        large = await node.long.unretainLargeFiles(plan);
        progress.warnings.push(...large.warnings);
        outcome.verified = large.verified;
        outcome.bytes += large.bytes;
        outcome.resumedBytes += large.resumedBytes;
        outcome.copyMs += large.copyMs;
      } else if (step === 'restore') {
        // step by step, the checks ran in the previous step; they are cheap to repeat and find the files in place
        large ??= await node.long.unretainLargeFiles(plan);
        enter('restore');
        outcome.result = await node.long.restoreVm(plan, large);
        progress.warnings.push(...outcome.result.warnings);
        enter('remove retain files');
        await node.quick.cleanupRetain(plan);
      } else {
        enter('cleanup');
        await node.quick.cleanupRetain(plan);
      }
      await answer(step, i === steps.length - 1);
    } catch (e) {
      // in one go nothing is left half-unretained: a failed restore before the VM was touched cleans up
      if (oneGo && step !== 'restore') await node.quick.cleanupRetain(plan).catch(() => undefined);
      return fail(e);
    }

    if (oneGo && step === 'unretainSmallFiles') {
      enter('waiting for confirmation');
      progress.awaitingConfirmation = true;
      await condition(() => confirmation.decision !== undefined, request.confirmationTimeout ?? '1 day');
      progress.awaitingConfirmation = false;
      if (confirmation.decision !== true) {
        enter('cancelled');
        mode = STEP_MODES.cleanup[0];
        await directory.updateLeaf(leafDn, startedChanges(mode));
        try {
          await node.quick.cleanupRetain(plan);
        } catch (e) {
          return fail(e);
        }
        await directory.updateLeaf(leafDn, { ...endedChanges(FINISHED, 0), ...processedChanges(new Date()) });
        return { ...outcome, cancelled: true };
      }
    }
  }
  if (oneGo) await directory.updateLeaf(leafDn, { ...endedChanges(FINISHED, 0), ...processedChanges(new Date()) });
  enter('done');
  upsertSearchAttributes([{ key: SA.exitCode, value: 0 }]);
  return outcome;
}
