/**
 * One scheduled run of a group of VMs (one Temporal Schedule, client/scheduler/), doing what
 * fc-brokerd did at a cron time, without its bugs:
 *
 * 1. The leaf ou is the scheduled time in UTC (fc-brokerd wrote local time with a literal Z).
 * 2. Each VM is checked again now: still in the directory on one of the site's nodes, not excluded
 *    from backup, no backup or restore of it still running (then it is skipped, with the reason);
 *    its leaf is created `initialized`, which no watcher acts on, because this run drives it.
 * 3. VMs named in sstVirtualizationVirtualMachineSequenceStop/-Start are backed up step by step:
 *    snapshots one after the other in stop order (each VM frozen and running on its overlay before
 *    the next is touched), then back onto their own images (merge) in start order, then the
 *    exports; each leaf then `finished`, as fc-brokerd wrote it. The other VMs run in one go, side
 *    by side. Either way through the backup workflow under the leaf's own workflow ID.
 * 4. Retention after each finished backup: the finished leaves the VM's policy does not keep
 *    (sstBackupNumberOfIterations and the daily, weekly, monthly rules, core/retention.ts) get
 *    their iteration deleted (the delete workflow answers `deleting` → `deleted`) and are removed.
 */
import {
  ApplicationFailure, ParentClosePolicy, log, startChild, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ScheduledCandidate } from '../activities/control/scheduling.js';
import type { ScheduledGroupInput } from '../core/scheduled-group.js';
import { codeOf, messageOf } from '../core/failures.js';
import { leafTimestamp, parseValidLeafDn, workflowIdForLeaf } from '../core/naming.js';
import { FINISHED, type BackupStep } from '../core/provisioning.js';
import { SA } from '../core/search-attributes.js';
import type { BackupOutcome } from './backup.js';
import { directory as control, LeafProtocol } from './leaf-protocol.js';
import { notifyFailure } from './notify.js';
import { pruneFinishedLeaves } from './retention.js';

export interface ScheduledBackupOutcome {
  ou: string;
  finished: string[];
  skipped: Array<{ vm: string; reason: string }>;
  failed: Array<{ vm: string; code: number; message: string }>;
  /** Leaves removed by retention. */
  removed: string[];
  /** The order the steps ran in, e.g. `snapshot vm-b`, `merge vm-a` (for the log and the tests). */
  steps: string[];
}

const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/** The time the schedule meant (a manual trigger: now), to the second. */
function scheduledTime(): Date {
  const info = workflowInfo();
  const at = info.typedSearchAttributes.get(SCHEDULED_START);
  return at instanceof Date && !Number.isNaN(at.getTime()) ? at : info.startTime;
}

export async function scheduledBackupWorkflow(input: ScheduledGroupInput): Promise<ScheduledBackupOutcome> {
  try {
    return await scheduledRun(input);
  } catch (e) {
    // each VM's backup that failed has reported itself (its own workflow's failure path); a run that
    // failed on its own (the directory unreachable, a bug) reports here
    if (!(e instanceof ApplicationFailure && e.type === INCOMPLETE)) await notifyFailure({ code: codeOf(e), message: messageOf(e) });
    throw e;
  }
}

const INCOMPLETE = 'ScheduledBackupIncomplete';

async function scheduledRun(input: ScheduledGroupInput): Promise<ScheduledBackupOutcome> {
  const ou = leafTimestamp(scheduledTime());
  upsertSearchAttributes([{ key: SA.operation, value: 'scheduled-backup' }, ...(input.pool ? [{ key: SA.pool, value: input.pool }] : [])]);
  const outcome: ScheduledBackupOutcome = { ou, finished: [], skipped: [], failed: [], removed: [], steps: [] };

  const run = await control.prepareScheduledRun({ members: input.members, nodes: input.nodes, ou });
  outcome.skipped.push(...run.skipped);
  for (const s of run.skipped) log.info('VM skipped this time', { vm: s.vm, ou, reason: s.reason });

  const ordered = new Set([...input.stopOrder, ...input.startOrder]);
  const sequenced = run.ready.filter((c) => ordered.has(c.vm));
  const together = run.ready.filter((c) => !ordered.has(c.vm));
  const fail = (c: ScheduledCandidate, e: unknown) => {
    outcome.failed.push({ vm: c.vm, code: codeOf(e), message: messageOf(e) });
    log.warn('scheduled backup failed', { vm: c.vm, ou, code: codeOf(e), error: messageOf(e) });
  };

  await Promise.all([
    runInSequence(sequenced, input, outcome, fail),
    ...together.map(async (c) => {
      try {
        await backupChild(c, undefined);
        outcome.finished.push(c.vm);
      } catch (e) {
        fail(c, e);
      }
    }),
  ]);

  for (const c of run.ready.filter((r) => outcome.finished.includes(r.vm))) {
    await applyRetention(c, outcome);
  }
  if (outcome.failed.length) {
    throw ApplicationFailure.nonRetryable(
      `scheduled backup ${ou}: ${outcome.failed.map((f) => `${f.vm} failed (${f.code})`).join(', ')}; ${outcome.finished.length} finished`,
      INCOMPLETE,
      outcome,
    );
  }
  return outcome;
}

/** Snapshots in stop order, merges in start order, then the exports; a VM that fails drops out. */
async function runInSequence(
  members: ScheduledCandidate[],
  input: ScheduledGroupInput,
  outcome: ScheduledBackupOutcome,
  fail: (c: ScheduledCandidate, e: unknown) => void,
): Promise<void> {
  if (members.length === 0) return;
  const rank = (order: string[]) => (c: ScheduledCandidate) => {
    const i = order.indexOf(c.vm);
    return i < 0 ? order.length : i; // not named in this list: after those that are, in name order
  };
  const sorted = (order: string[]) => [...members].sort((a, b) => rank(order)(a) - rank(order)(b) || a.vm.localeCompare(b.vm));
  const alive = new Set(members.map((c) => c.vm));
  const step = async (c: ScheduledCandidate, s: BackupStep) => {
    if (!alive.has(c.vm)) return;
    outcome.steps.push(`${s} ${c.vm}`);
    try {
      await backupChild(c, s);
    } catch (e) {
      alive.delete(c.vm);
      fail(c, e);
    }
  };
  for (const c of sorted(input.stopOrder)) await step(c, 'snapshot');
  for (const c of sorted(input.startOrder)) await step(c, 'merge');
  await Promise.all(members.map((c) => step(c, 'retain')));
  for (const c of members.filter((m) => alive.has(m.vm))) {
    await new LeafProtocol(c.leafDn, FINISHED).done(FINISHED, { processed: true });
    outcome.finished.push(c.vm);
  }
}

/** The backup workflow for one VM's leaf, one step or all of them, under the leaf's workflow ID. */
async function backupChild(c: ScheduledCandidate, step: BackupStep | undefined): Promise<BackupOutcome> {
  const leaf = parseValidLeafDn(c.leafDn);
  const base = workflowIdForLeaf(leaf, 'backup');
  const child = await startChild('backupWorkflow', {
    workflowId: step ? `${base}/${step}` : base,
    args: [step ? { leafDn: c.leafDn, steps: [step] } : { leafDn: c.leafDn }],
    // a backup that has begun must end (the VM must not stay on an overlay) even if this run is terminated
    parentClosePolicy: ParentClosePolicy.ABANDON,
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    typedSearchAttributes: [
      { key: SA.vm, value: leaf.vm },
      { key: SA.operation, value: 'backup' },
      { key: SA.leaf, value: leaf.dn },
    ],
  });
  return (await child.result()) as BackupOutcome;
}

/** fc-brokerd's retention, by the VM's policy (workflows/retention.ts), oldest first. */
async function applyRetention(c: ScheduledCandidate, outcome: ScheduledBackupOutcome): Promise<void> {
  const pruned = await pruneFinishedLeaves({ vm: c.vm, keep: c.iterations, retention: c.retention });
  outcome.removed.push(...pruned.removed);
}
