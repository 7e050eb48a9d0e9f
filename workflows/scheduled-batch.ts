/**
 * One batch of a scheduled run (workflows/scheduled-backup.ts): up to a few hundred VMs of one node,
 * backed up `window` at a time (the node's slots and one more, so the next backup already waits at
 * the node's slots when one ends), each followed by its retention. A batch child keeps each history
 * of a large pool's run short: about ten events per VM here, a handful per batch in the run.
 */
import { log, upsertSearchAttributes } from '@temporalio/workflow';
import type { ScheduledCandidate } from '../activities/control/scheduling.js';
import { codeOf, messageOf } from '../core/failures.js';
import { SA } from '../core/search-attributes.js';
import { applyRetention, backupChild, failMember, inLanes, type ScheduledBackupOutcome } from './scheduled-members.js';

export interface ScheduledBatchInput {
  /** The schedule's group and pool, and the run's leaf ou. */
  group: string;
  pool?: string;
  ou: string;
  /** The node all members were on at preparation. */
  node: string;
  /** Which of the node's batches this is (1-based), of how many. */
  batch: number;
  batches: number;
  members: ScheduledCandidate[];
  /** Backups in flight at once (core/scheduled-group.ts, batchWindow). */
  window: number;
}

export type ScheduledBatchOutcome = Pick<ScheduledBackupOutcome, 'finished' | 'failed' | 'removed'>;

export async function scheduledBatchWorkflow(input: ScheduledBatchInput): Promise<ScheduledBatchOutcome> {
  upsertSearchAttributes([
    { key: SA.operation, value: 'scheduled-batch' },
    { key: SA.node, value: input.node },
    ...(input.pool ? [{ key: SA.pool, value: input.pool }] : []),
  ]);
  const outcome: ScheduledBatchOutcome = { finished: [], failed: [], removed: [] };
  const retention: Array<Promise<void>> = [];
  await inLanes(input.members, input.window, async (c: ScheduledCandidate) => {
    try {
      await backupChild(c, undefined);
    } catch (e) {
      failMember(outcome, input.ou, c, e);
      return;
    }
    outcome.finished.push(c.vm);
    // beside the next backups: retention takes no node slot, and its lane is free for the next VM
    retention.push(
      applyRetention(c, outcome).catch((e) =>
        log.warn('retention could not read the finished leaves; the next run tries again', { vm: c.vm, code: codeOf(e), error: messageOf(e) }),
      ),
    );
  });
  await Promise.all(retention);
  return outcome;
}
