/**
 * Backup of one VM for one LDAP backup leaf (docs/backup.md). Reads like the phase list:
 *
 *   snapshot  = preflight → snapshot (RAM + disks at one instant) → copy to retain
 *   merge     = block-commit every overlay back into its image
 *   retain    = export to the backup root with a manifest, then rotate
 *
 * Before the first phase the backup waits for a slot on its node (workflows/node-slots.ts, [Backup]
 * MAX_CONCURRENT_BACKUPS), holding only its own VM's lock meanwhile; the slot is held to the end.
 *
 * The leaf mirrors each phase (…ing, then …ed with its return value in the same modify). Any failure
 * after the snapshot runs the compensation first, so the VM ends running on its own images, then the
 * workflow fails with the exit code (also written to the leaf). Node activities run on the task
 * queue of the VM's node; directory activities on this workflow's own queue.
 */
import { CancellationScope, log, patched, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import { stagingStateFile, type BackupContext, type PreparedBackup, type SnapshotResult } from '../core/backup-plan.js';
import type { SnapshotMethod } from '../core/global-config.js';
import { DELETING_PREFIX, deletingDirName } from '../core/layout.js';
import { waitingForSlotPhase } from '../core/node-slots.js';
import { BACKUP_STEPS, FINISHED, STEP_MODES, type BackupStep, type Phase } from '../core/provisioning.js';
import { describeRetention } from '../core/retention.js';
import { SA } from '../core/search-attributes.js';
import { WORKFLOW_PATCHES } from '../core/workflow-patches.js';
import { backupProgressQuery, type BackupProgress } from './definitions.js';
import { directory, LeafProtocol, localDirectory } from './leaf-protocol.js';
import { nodeProxies } from './node-proxies.js';
import { withNodeSlot } from './node-slots.js';
import { compensateOnNode } from './node-wait.js';
import { lockableVmOf, withVmLock } from './vm-lock.js';

export interface BackupRequest {
  /** DN of the backup leaf `ou=<YYYYMMDDTHHMMSSZ>,ou=backup,sstVirtualMachine=<vm>,…`. */
  leafDn: string;
  /** All phases by default (one go); one step when a control instance asks step by step. */
  steps?: BackupStep[];
  /** Overrides the configuration's (or the node's) snapshot method for this backup. */
  snapshotMethod?: SnapshotMethod;
  /** Heartbeat timeout of every node activity: how fast a crashed node worker is noticed (default 30 s). */
  heartbeatTimeout?: Duration;
  /** At most this many attempts per node step (default: the retry policies of core/failures.ts). */
  attempts?: number;
}

/** Backups record the node slot they ran in (workflows/node-slots.ts); histories from before it replay without. */
const NODE_SLOTS_PATCH = WORKFLOW_PATCHES.nodeSlots.id;

export interface BackupOutcome {
  leafDn: string;
  vm: string;
  ou: string;
  node: string;
  steps: BackupStep[];
  method?: SnapshotResult['method'];
  pauseMs?: number;
  times: Partial<Record<Phase, number>>;
  bytes: number;
  /** Bytes that retried copies did not copy again (they resumed after a crash). */
  resumedBytes: number;
  warnings: string[];
  rotated: string[];
}

export async function backupWorkflow(request: BackupRequest): Promise<BackupOutcome> {
  // the progress query answers from the start, also while the backup waits for the VM lock
  const progress: BackupProgress = { phase: 'waiting for the VM lock', times: {}, warnings: [] };
  setHandler(backupProgressQuery, () => progress);
  const vm = lockableVmOf(request.leafDn);
  return vm ? withVmLock(vm, 'backup', () => runBackup(request, progress)) : runBackup(request, progress);
}

async function runBackup(request: BackupRequest, progress: BackupProgress): Promise<BackupOutcome> {
  const steps = BACKUP_STEPS.filter((s) => (request.steps ?? BACKUP_STEPS).includes(s));
  const leafDn = request.leafDn;
  const { times, warnings } = progress;
  progress.phase = 'starting';
  const enter = (phase: string) => {
    progress.phase = phase;
    upsertSearchAttributes([{ key: SA.phase, value: phase }]);
  };

  const leafAnswers = new LeafProtocol(leafDn, STEP_MODES[steps[0] ?? 'snapshot'][0], (code) => {
    progress.phase = `failed (${code})`;
  });
  let answeredFailure = false;
  const fail = (error: unknown) => {
    answeredFailure = true;
    return leafAnswers.fail(error, times);
  };

  // ---- lock the leaf and read what it asks for -------------------------------------------------
  let ctx: BackupContext;
  await leafAnswers.begin();
  try {
    ctx = await directory.loadBackupContext(leafDn);
  } catch (e) {
    return fail(e);
  }
  const { leaf } = ctx;
  progress.vm = leaf.vm;
  progress.node = ctx.node;
  upsertSearchAttributes([
    { key: SA.vm, value: leaf.vm },
    { key: SA.node, value: ctx.node },
    { key: SA.operation, value: 'backup' },
    { key: SA.leaf, value: leafDn },
    ...(ctx.pool ? [{ key: SA.pool, value: ctx.pool }] : []),
  ]);
  const node = nodeProxies(ctx.node, request);
  const method = request.snapshotMethod ?? ctx.configuration.config.snapshotMethod;
  const outcome: BackupOutcome = { leafDn, vm: leaf.vm, ou: leaf.ou, node: ctx.node, steps, times, bytes: 0, resumedBytes: 0, warnings, rotated: [] };

  let ldif = directory;

  /** The phases on the node, one go or the steps asked for; fails (after the compensation) with the code. */
  const runPhases = async (releaseNode: () => void = () => undefined): Promise<void> => {
    let prepared: PreparedBackup | undefined;
    const prepare = async (purpose: BackupStep): Promise<PreparedBackup> => {
      enter('preflight');
      const p = await node.quick(`preflight of ${leaf.vm} for ${purpose}: disks, free space, RAM disk`).preflight(ctx, method, purpose);
      warnings.push(...p.warnings);
      for (const w of p.warnings) log.warn(w, { leafDn });
      upsertSearchAttributes([{ key: SA.snapshotMethod, value: p.active ? p.plan.method : 'offline' }]);
      return p;
    };
    /**
     * Puts the VM back on its own images, running if it ran; cannot be cancelled and never gives up. It
     * waits for its node as long as it takes, saying so in the progress and in KvmWaitingFor.
     */
    const compensate = async () => {
      if (!prepared) return;
      const p = prepared;
      enter('compensating');
      const images = p.plan.disks.map((d) => d.path).join(', ');
      const waiting = (now: boolean) => {
        if (now) progress.waitingFor = ctx.node;
        else delete progress.waitingFor;
        progress.phase = now ? `compensating: waiting for node ${ctx.node}` : 'compensating';
        upsertSearchAttributes([{ key: SA.waitingFor, value: now ? ctx.node : null }]);
      };
      const { actions } = await CancellationScope.nonCancellable(() =>
        compensateOnNode((within) => node.compensation(`put ${leaf.vm} back on ${images}, running`, within).ensureOnOwnImages(p), waiting),
      );
      for (const a of actions) log.warn(`compensation: ${a}`, { leafDn });
    };

    // ---- the phases --------------------------------------------------------------------------------
    for (const step of steps) {
      try {
        prepared ??= await prepare(step);
      } catch (e) {
        return fail(e); // nothing has changed yet
      }
      try {
        // in one go the VM may be on its overlays here: a leaf that cannot be written is compensated too
        if (step !== steps[0]) await leafAnswers.begin(STEP_MODES[step][0]);
        if (step === 'snapshot') {
          enter('snapshot');
          const p = prepared;
          const what = p.active ? `RAM → ${stagingStateFile(p)}, ${p.plan.disks.map((d) => `${d.target} → ${d.overlay}`).join(', ')}` : 'shut off: no overlay';
          const snap = await node.long(`${p.active ? p.plan.method : 'offline'} snapshot of ${leaf.vm}: ${what}`).takeSnapshot(p);
          outcome.method = snap.method;
          outcome.pauseMs = snap.pauseMs;
          times.downtime = Math.max(0, snap.pauseMs);
          upsertSearchAttributes([{ key: SA.guestPauseMs, value: Math.max(0, snap.pauseMs) }]);
          enter('copy to retain');
          const exported = await ldif.exportLdif(leaf.vm);
          warnings.push(...exported.warnings);
          const copied = await node
            .long(`copy ${prepared.plan.disks.map((d) => d.path).join(', ')}, state, XML, LDIF → ${prepared.plan.retainDir}`)
            .copyToRetain(prepared, exported.ldif);
          outcome.bytes += copied.bytes;
          outcome.resumedBytes += copied.resumedBytes;
          times.snapshot = snap.durationMs + copied.durationMs;
        } else if (step === 'merge') {
          enter('merge');
          const commits = prepared.plan.disks.map((d) => `${d.overlay} → ${d.path}`).join(', ');
          times.merge = (await node.long(`block commit ${commits}`).mergeBack(prepared)).durationMs;
        } else {
          enter('export');
          const exported = await node.long(`copy ${prepared.plan.retainDir} → ${prepared.plan.backupDir}, manifest last`).exportBackup(prepared);
          outcome.bytes += exported.bytes;
          outcome.resumedBytes += exported.resumedBytes;
          times.retain = exported.durationMs;
        }
        // step by step, the last step answers with the processed stamp in the same modify
        const last = step === steps[steps.length - 1] && steps.length < BACKUP_STEPS.length;
        await leafAnswers.done(STEP_MODES[step][1], { times, processed: last });
      } catch (e) {
        await compensate();
        return fail(e);
      }
    }

    // ---- one go: rotate and finish -------------------------------------------------------------------
    if (steps.length === BACKUP_STEPS.length && prepared) {
      enter('rotate');
      leafAnswers.mode = STEP_MODES.retain[1];
      try {
        // crash-safe (activities/node/backup/rotate.ts): the iterations are marked, their leaves
        // removed, then their files; a retry or the next rotation finishes a deletion once begun
        const { plan } = prepared;
        // plans from before the calendar rules carry no retention: keep-last as then
        const keep = plan.retention ?? plan.iterations;
        const rotation = await node
          .quick(`rotate ${plan.backupVmDir}: keep ${describeRetention(keep)}${plan.repository ? '' : `, mark the others ${DELETING_PREFIX}<ou>`}`)
          .rotateIterations(plan, keep);
        // the node's part is done unless marked iterations are left to purge: its slot goes to the
        // next backup while the directory is answered
        if (!rotation.deleted.length) releaseNode();
        outcome.rotated = await directory.deleteLeaves(leaf.vm, rotation.deleted);
        // histories from before this step (rotateIterations deleted the files itself) replay without it
        if (patched(WORKFLOW_PATCHES.crashSafeRotation.id) && rotation.deleted.length) {
          await node.quick(`delete ${rotation.deleted.map(deletingDirName).join(', ')} in ${plan.backupVmDir}`).purgeDeletedIterations(plan);
        }
        releaseNode();
        await leafAnswers.done(FINISHED, { times, processed: true });
      } catch (e) {
        return fail(e);
      }
    }
  };

  // histories recorded before the node slots existed replay without them
  if (patched(NODE_SLOTS_PATCH)) {
    // holding a node slot, the directory steps between node steps run as local activities
    leafAnswers.answers = localDirectory;
    ldif = localDirectory;
    try {
      await withNodeSlot(ctx.node, leaf.vm, () => enter(waitingForSlotPhase(ctx.node)), runPhases);
    } catch (e) {
      // the phases answer their own failures; one while waiting for the slot (cancelled, Temporal away) is answered here
      if (answeredFailure) throw e;
      return fail(e);
    }
  } else {
    await runPhases();
  }
  enter('done');
  upsertSearchAttributes([{ key: SA.exitCode, value: 0 }]);
  return outcome;
}
