/**
 * What a scheduled run does for its members, shared by the run (workflows/scheduled-backup.ts) and
 * its batches (workflows/scheduled-batch.ts): one VM's backup as a child under the leaf's own
 * workflow ID, the sequenced members step by step, and fc-brokerd's retention after a finished backup.
 */
import { log, ParentClosePolicy, startChild } from '@temporalio/workflow';
import type { ScheduledCandidate } from '../activities/control/scheduling.js';
import type { ScheduledGroupInput } from '../core/scheduled-group.js';
import { codeOf, messageOf } from '../core/failures.js';
import { parseValidLeafDn, workflowIdForLeaf } from '../core/naming.js';
import { FINISHED, type BackupStep } from '../core/provisioning.js';
import { SA } from '../core/search-attributes.js';
import type { BackupOutcome } from './backup.js';
import { LeafProtocol } from './leaf-protocol.js';
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

/** Records a member's failure in the outcome and the log. */
export function failMember(outcome: Pick<ScheduledBackupOutcome, 'failed'>, ou: string, c: ScheduledCandidate, e: unknown): void {
  outcome.failed.push({ vm: c.vm, code: codeOf(e), message: messageOf(e) });
  log.warn('scheduled backup failed', { vm: c.vm, ou, code: codeOf(e), error: messageOf(e) });
}

/** Snapshots in stop order, merges in start order, then the exports; a VM that fails drops out. */
export async function runInSequence(
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
export async function backupChild(c: ScheduledCandidate, step: BackupStep | undefined): Promise<BackupOutcome> {
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
export async function applyRetention(c: ScheduledCandidate, outcome: Pick<ScheduledBackupOutcome, 'removed'>): Promise<void> {
  const pruned = await pruneFinishedLeaves({ vm: c.vm, keep: c.iterations, retention: c.retention });
  outcome.removed.push(...pruned.removed);
}

/** Runs `fn` for every item, at most `lanes` at a time, in order of the items (deterministic). */
export async function inLanes<T>(items: readonly T[], lanes: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, items.length)) }, lane));
}
