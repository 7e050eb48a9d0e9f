/**
 * One scheduled run of a group of VMs (one Temporal Schedule, client/scheduler/), doing what
 * fc-brokerd did at a cron time, without its bugs:
 *
 * 1. The leaf ou is the scheduled time in UTC (fc-brokerd wrote local time with a literal Z).
 * 2. Each VM is checked again now: still in the directory on one of the site's nodes, not excluded
 *    from backup, no backup or restore of it still running (then it is skipped, with the reason);
 *    its leaf is created `initialized`, which no watcher acts on, because this run drives it. The
 *    members are checked in chunks of 100, four chunks at a time.
 * 3. VMs named in sstVirtualizationVirtualMachineSequenceStop/-Start are backed up step by step:
 *    snapshots one after the other in stop order (each VM frozen and running on its overlay before
 *    the next is touched), then back onto their own images (merge) in start order, then the
 *    exports; each leaf then `finished`, as fc-brokerd wrote it.
 * 4. The other VMs run in one go, per node: each node's members in batch workflows of at most 200
 *    VMs (one after the other), the nodes side by side; a batch keeps as many backups in flight as
 *    the node has slots, plus one waiting for the next free slot ([Backup] MAX_CONCURRENT_BACKUPS,
 *    workflows/node-slots.ts). So a pool of 50 VMs on one node does not start 50 snapshots at
 *    03:00, a pool spread over many nodes keeps each of them busy, and no workflow history grows
 *    with the pool (docs/ldap-protocol.md, "A scheduled run").
 * 5. Retention after each finished backup: the finished leaves the VM's policy does not keep
 *    (sstBackupNumberOfIterations and the daily, weekly, monthly rules, core/retention.ts) get
 *    their iteration deleted (the delete workflow answers `deleting` → `deleted`) and are removed
 *    (workflows/retention.ts).
 *
 * Runs recorded before the batches (no `kvm-backup-batched-run` marker) replay the old way: every
 * member side by side in this workflow.
 */
import {
  ApplicationFailure, log, patched, startChild, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { PreparedRun, ScheduledCandidate } from '../activities/control/scheduling.js';
import {
  batchWindow, chunked, DEFAULT_BATCH_SIZE, nodeBatches, PREPARE_CHUNK, PREPARE_PARALLEL, type ScheduledGroupInput,
} from '../core/scheduled-group.js';
import { codeOf, messageOf } from '../core/failures.js';
import { leafTimestamp } from '../core/naming.js';
import { SA } from '../core/search-attributes.js';
import { WORKFLOW_PATCHES } from '../core/workflow-patches.js';
import { directory as control } from './leaf-protocol.js';
import { notifyFailure } from './notify.js';
import type { ScheduledBatchInput, ScheduledBatchOutcome } from './scheduled-batch.js';
import {
  applyRetention, backupChild, failMember, inLanes, runInSequence, type ScheduledBackupOutcome,
} from './scheduled-members.js';

export type { ScheduledBackupOutcome } from './scheduled-members.js';

const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/** Marks runs that prepare in chunks and back up in batches per node. */
const BATCHED_RUN_PATCH = WORKFLOW_PATCHES.batchedRun.id;

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
  const batched = patched(BATCHED_RUN_PATCH);
  const ou = leafTimestamp(scheduledTime());
  upsertSearchAttributes([{ key: SA.operation, value: 'scheduled-backup' }, ...(input.pool ? [{ key: SA.pool, value: input.pool }] : [])]);
  const outcome: ScheduledBackupOutcome = { ou, finished: [], skipped: [], failed: [], removed: [], steps: [] };
  const fail = (c: ScheduledCandidate, e: unknown) => failMember(outcome, ou, c, e);

  const run = batched ? await prepareInChunks(input, ou) : await control.prepareScheduledRun({ members: input.members, nodes: input.nodes, ou });
  outcome.skipped.push(...run.skipped);
  for (const s of run.skipped) log.info('VM skipped this time', { vm: s.vm, ou, reason: s.reason });

  const ordered = new Set([...input.stopOrder, ...input.startOrder]);
  const sequenced = run.ready.filter((c) => ordered.has(c.vm));
  const together = run.ready.filter((c) => !ordered.has(c.vm));

  if (batched) {
    await Promise.all([runInSequence(sequenced, input, outcome, fail), runBatches(together, input, ou, run.slots ?? 0, outcome)]);
    // the batches applied retention to their own members
    for (const c of sequenced.filter((r) => outcome.finished.includes(r.vm))) await applyRetention(c, outcome);
  } else {
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
    for (const c of run.ready.filter((r) => outcome.finished.includes(r.vm))) await applyRetention(c, outcome);
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

/** The members checked and given their leaves in chunks, a few chunks at a time, in member order. */
async function prepareInChunks(input: ScheduledGroupInput, ou: string): Promise<PreparedRun> {
  const chunks = chunked(input.members, PREPARE_CHUNK);
  const results: PreparedRun[] = [];
  await inLanes([...chunks.keys()], PREPARE_PARALLEL, async (i) => {
    results[i] = await control.prepareScheduledRun({ members: chunks[i]!, nodes: input.nodes, ou });
  });
  return {
    ready: results.flatMap((r) => r.ready),
    skipped: results.flatMap((r) => r.skipped),
    slots: results[0]?.slots ?? 0,
  };
}

/** Every node's members in batch workflows, one batch after the other per node, the nodes side by side. */
async function runBatches(members: ScheduledCandidate[], input: ScheduledGroupInput, ou: string, slots: number, outcome: ScheduledBackupOutcome): Promise<void> {
  const batchSize = input.batchSize ?? DEFAULT_BATCH_SIZE;
  const window = batchWindow(slots, batchSize);
  const { workflowId } = workflowInfo();
  // a candidate without a node comes only from an older activity: it runs as a batch of its own node ''
  const perNode = nodeBatches(members.map((c) => ({ ...c, node: c.node ?? '' })), batchSize);
  await Promise.all(
    perNode.map(async ({ node, batches }) => {
      for (const [i, batch] of batches.entries()) {
        const args: ScheduledBatchInput = {
          group: input.group, ...(input.pool ? { pool: input.pool } : {}), ou, node, batch: i + 1, batches: batches.length, members: batch, window,
        };
        try {
          const child = await startChild('scheduledBatchWorkflow', { workflowId: `${workflowId}/batch/${node}/${i + 1}`, args: [args] });
          const r = (await child.result()) as ScheduledBatchOutcome;
          outcome.finished.push(...r.finished);
          outcome.failed.push(...r.failed);
          outcome.removed.push(...r.removed);
        } catch (e) {
          // the batch itself failed (terminated, a bug): its members count as failed, the next batch goes on
          for (const c of batch) if (!outcome.finished.includes(c.vm)) failMember(outcome, ou, c, e);
        }
      }
    }),
  );
}
