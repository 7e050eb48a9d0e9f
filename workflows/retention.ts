/**
 * The scheduler's retention of one VM (docs/ldap-protocol.md#retention): the `finished` leaves its
 * policy does not keep (core/retention.ts: keep-last plus the daily, weekly and monthly rules),
 * oldest first, each deleted by a `deleteWorkflow` child (`delete/<vm>/<ou>`, answering `deleting`
 * → `deleted` on the leaf) and then removed.
 *
 * A scheduled run does this inline after each finished backup (`pruneFinishedLeaves`, so its history
 * is the same as before the calendar rules). `retentionWorkflow` does the same on its own: for an
 * operator who changed a VM's policy and wants it applied before the next run
 * (`temporal workflow start --type retentionWorkflow --input '{"vm":"<uuid>"}'`), and for tests.
 */
import { ParentClosePolicy, log, startChild, upsertSearchAttributes } from '@temporalio/workflow';
import { codeOf, messageOf } from '../core/failures.js';
import { parseValidLeafDn, workflowIdForLeaf } from '../core/naming.js';
import { describeRetention, type RetentionPolicy } from '../core/retention.js';
import { SA } from '../core/search-attributes.js';
import { directory as control } from './leaf-protocol.js';

export interface PruneResult {
  /** Leaves whose iteration was deleted and which were then removed, oldest first. */
  removed: string[];
  /** Leaves whose deletion failed: they keep their answer (`deleting` + code) for an operator. */
  failed: Array<{ leafDn: string; code: number; message: string }>;
}

/**
 * Deletes the iterations of the finished leaves of `vm` that `retention` (else keep-last `keep`, as
 * runs started before the calendar rules) does not keep. A failed deletion is logged and listed,
 * never thrown: the other leaves still go.
 */
export async function pruneFinishedLeaves(input: { vm: string; keep: number; retention?: RetentionPolicy | undefined }): Promise<PruneResult> {
  const result: PruneResult = { removed: [], failed: [] };
  const excess = await control.finishedLeavesBeyond({ vm: input.vm, keep: input.keep, ...(input.retention ? { retention: input.retention } : {}) });
  for (const dn of excess) {
    const leaf = parseValidLeafDn(dn);
    try {
      const child = await startChild('deleteWorkflow', {
        workflowId: workflowIdForLeaf(leaf, 'delete'),
        args: [{ leafDn: dn }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
        typedSearchAttributes: [
          { key: SA.vm, value: leaf.vm },
          { key: SA.operation, value: 'delete' },
          { key: SA.leaf, value: dn },
        ],
      });
      await child.result();
      if (await control.removeDeletedLeaf(dn)) result.removed.push(dn);
    } catch (e) {
      // the leaf keeps its answer (deleting + code); the next run tries again
      log.warn('retention could not delete an iteration', { dn, code: codeOf(e), error: messageOf(e) });
      result.failed.push({ leafDn: dn, code: codeOf(e), message: messageOf(e) });
    }
  }
  return result;
}

export interface RetentionRequest {
  /** The VM (sstVirtualMachine). */
  vm: string;
  /** The policy to apply; default: the VM's effective configuration now (VM → pool → cloud-wide). */
  retention?: RetentionPolicy;
}

export interface RetentionOutcome extends PruneResult {
  vm: string;
  /** The policy applied. */
  retention: RetentionPolicy;
}

/**
 * Applies a VM's retention to its finished leaves now. Fails with 23 (VM not in the directory), 32 or
 * 39 (its configuration) before anything is deleted; a deletion that fails is in `failed`.
 */
export async function retentionWorkflow(request: RetentionRequest): Promise<RetentionOutcome> {
  upsertSearchAttributes([{ key: SA.vm, value: request.vm }, { key: SA.operation, value: 'retention' }]);
  const retention = request.retention ?? (await control.retentionOf(request.vm));
  log.info('applying retention', { vm: request.vm, keep: describeRetention(retention) });
  const pruned = await pruneFinishedLeaves({ vm: request.vm, keep: retention.last, retention });
  return { vm: request.vm, retention, ...pruned };
}
