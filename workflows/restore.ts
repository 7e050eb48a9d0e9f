/**
 * Restore of one VM from one backup leaf (docs/restore.md), in the vm-manager's steps:
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
import { condition, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { RestoreResult, UnretainedLarge } from '../activities/node/restore/index.js';
import { FINISHED, STEP_MODES } from '../core/provisioning.js';
import type { RestorePlan, RestoreStep } from '../core/restore-plan.js';
import { SA } from '../core/search-attributes.js';
import { confirmRestoreSignal, restoreProgressQuery, type RestoreProgress } from './definitions.js';
import { directory, LeafProtocol } from './leaf-protocol.js';
import { nodeProxies } from './node-proxies.js';
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
  /** Heartbeat timeout of every node activity: how fast a crashed node worker is noticed (default 30 s). */
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

  const leafAnswers = new LeafProtocol(leafDn, STEP_MODES[steps[0]!][0], (code) => {
    progress.phase = `failed (${code})`;
  });
  const fail = (error: unknown) => leafAnswers.fail(error);

  await leafAnswers.begin();
  let plan: RestorePlan;
  let node: ReturnType<typeof nodeProxies>;
  try {
    const ctx = await directory.loadBackupContext(leafDn);
    node = nodeProxies(ctx.node, request);
    progress.vm = ctx.leaf.vm;
    upsertSearchAttributes([{ key: SA.vm, value: ctx.leaf.vm }, { key: SA.node, value: ctx.node }, ...(ctx.pool ? [{ key: SA.pool, value: ctx.pool }] : [])]);
    enter('locate');
    plan = await node.quick(`find backup ${ctx.leaf.ou} of ${ctx.leaf.vm}`).locateBackup(ctx, request.withoutState, !(steps.length === 1 && steps[0] === 'cleanup'));
    progress.backupDir = plan.backupDir;
  } catch (e) {
    return fail(e);
  }
  const outcome: RestoreOutcome = { leafDn, vm: plan.vm, ou: plan.ou, steps, cancelled: false, warnings: progress.warnings, bytes: 0, resumedBytes: 0, copyMs: 0 };
  const answer = (step: RestoreStep, last: boolean) => leafAnswers.done(STEP_MODES[step][1], { processed: last && !oneGo });

  let large: UnretainedLarge | undefined;
  for (const [i, step] of steps.entries()) {
    if (i > 0) await leafAnswers.begin(STEP_MODES[step][0]);
    else leafAnswers.mode = STEP_MODES[step][0];
    try {
      if (step === 'unretainSmallFiles') {
        enter('unretain small files');
        progress.warnings.push(...(await node.quick(`copy ${plan.files.xml}, ${plan.files.ldif} → ${plan.retainDir}`).unretainSmallFiles(plan)).warnings);
      } else if (step === 'unretainLargeFiles') {
        enter('unretain large files');
        large = await node.long(`copy ${plan.files.state} and the images → ${plan.retainDir}, then check them`).unretainLargeFiles(plan);
        progress.warnings.push(...large.warnings);
        outcome.verified = large.verified;
        outcome.bytes += large.bytes;
        outcome.resumedBytes += large.resumedBytes;
        outcome.copyMs += large.copyMs;
      } else if (step === 'restore') {
        // step by step, the checks ran in the previous step; they are cheap to repeat and find the files in place
        large ??= await node.long(`check the files in ${plan.retainDir}`).unretainLargeFiles(plan);
        enter('restore');
        const images = large.images.map((i) => `${i.file} → ${i.destination}`).join(', ');
        outcome.result = await node.long(`stop ${plan.vm}, ${images}, ${plan.withoutState ? 'define and start' : 'restore its RAM state'}`).restoreVm(plan, large);
        progress.warnings.push(...outcome.result.warnings);
        enter('remove retain files');
        await node.quick(`remove ${plan.retainDir}`).cleanupRetain(plan);
      } else {
        enter('cleanup');
        await node.quick(`remove ${plan.retainDir}`).cleanupRetain(plan);
      }
      await answer(step, i === steps.length - 1);
    } catch (e) {
      // in one go nothing is left half-unretained: a failed restore before the VM was touched cleans up
      if (oneGo && step !== 'restore') await node.quick(`remove ${plan.retainDir}`).cleanupRetain(plan).catch(() => undefined);
      return fail(e);
    }

    if (oneGo && step === 'unretainSmallFiles') {
      enter('waiting for confirmation');
      progress.awaitingConfirmation = true;
      await condition(() => confirmation.decision !== undefined, request.confirmationTimeout ?? '1 day');
      progress.awaitingConfirmation = false;
      if (confirmation.decision !== true) {
        enter('cancelled');
        await leafAnswers.begin(STEP_MODES.cleanup[0]);
        try {
          await node.quick(`remove ${plan.retainDir}`).cleanupRetain(plan);
        } catch (e) {
          return fail(e);
        }
        await leafAnswers.done(FINISHED, { processed: true });
        return { ...outcome, cancelled: true };
      }
    }
  }
  if (oneGo) await leafAnswers.done(FINISHED, { processed: true });
  enter('done');
  upsertSearchAttributes([{ key: SA.exitCode, value: 0 }]);
  return outcome;
}
