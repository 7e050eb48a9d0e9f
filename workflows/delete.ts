/**
 * The `delete` step (retention, original §1.5): removes one backup iteration, the leaf's own, from
 * the backup root on the VM's node, answering `deleting`, then `deleted` with its return value and
 * the processed stamp in one modify. The leaf itself stays: fc-brokerd removes it on `deleted`, and
 * so does this product's scheduler when it drives retention. Unlike the original, the return value
 * tells the truth (a file that cannot be removed is 13, not 0) and the empty directory goes too.
 */
import { ActivityCancellationType, log, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control/index.js';
import type { NodeActivities } from '../activities/node/index.js';
import type { BackupContext } from '../core/backup-plan.js';
import { Code } from '../core/exit-codes.js';
import { codeOf, DIRECTORY_RETRY, failure, messageOf, STEP_RETRY } from '../core/failures.js';
import { nodeTaskQueue } from '../core/naming.js';
import { endedChanges, failedChanges, processedChanges, startedChanges } from '../core/provisioning.js';
import { SA } from '../core/search-attributes.js';
import { lockableVmOf, withVmLock } from './vm-lock.js';

export interface DeleteRequest {
  /** DN of the backup leaf whose iteration is removed. */
  leafDn: string;
}

export interface DeleteOutcome {
  leafDn: string;
  vm: string;
  ou: string;
  /** False when the iteration directory was already gone (nothing to do is not an error). */
  deleted: boolean;
}

const RUNNING = 'deleting';
const DONE = 'deleted';

const directory = proxyActivities<ControlActivities>({ startToCloseTimeout: '2 minutes', retry: DIRECTORY_RETRY });

function nodeActivities(node: string) {
  return proxyActivities<NodeActivities>({
    taskQueue: nodeTaskQueue(node),
    scheduleToStartTimeout: '10 minutes',
    startToCloseTimeout: '30 minutes',
    retry: STEP_RETRY,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
}

export async function deleteWorkflow(request: DeleteRequest): Promise<DeleteOutcome> {
  const vm = lockableVmOf(request.leafDn);
  // a DN that names no (valid) VM cannot be locked; the step then fails on its own with the right code
  return vm ? withVmLock(vm, 'delete', () => deleteIteration(request)) : deleteIteration(request);
}

async function deleteIteration({ leafDn }: DeleteRequest): Promise<DeleteOutcome> {
  upsertSearchAttributes([{ key: SA.operation, value: 'delete' }, { key: SA.leaf, value: leafDn }, { key: SA.phase, value: 'delete' }]);
  try {
    await directory.updateLeaf(leafDn, startedChanges(RUNNING));
  } catch (e) {
    throw failure(Code.CANNOT_LOCK_MACHINE, `cannot lock the leaf ${leafDn}: ${messageOf(e)}`, { leafDn });
  }
  try {
    const ctx: BackupContext = await directory.loadBackupContext(leafDn);
    upsertSearchAttributes([{ key: SA.vm, value: ctx.leaf.vm }, { key: SA.node, value: ctx.node }]);
    const node = nodeActivities(ctx.node);
    // the node's own plan says where this leaf's iteration lives (its virtualization root, its disks)
    const { plan } = await node.preflight(ctx, undefined, 'retain');
    const { deleted } = await node.deleteIteration(plan, ctx.leaf.ou);
    await directory.updateLeaf(leafDn, { ...endedChanges(DONE, 0), ...processedChanges(new Date()) });
    upsertSearchAttributes([{ key: SA.phase, value: 'done' }, { key: SA.exitCode, value: 0 }]);
    return { leafDn, vm: ctx.leaf.vm, ou: ctx.leaf.ou, deleted };
  } catch (e) {
    const code = codeOf(e);
    upsertSearchAttributes([{ key: SA.phase, value: `failed (${code})` }, { key: SA.exitCode, value: code }]);
    await directory
      .updateLeaf(leafDn, { ...failedChanges(RUNNING, code), ...processedChanges(new Date()) })
      .catch((err) => log.error('cannot write the failure to the leaf', { leafDn, error: messageOf(err) }));
    throw failure(code, messageOf(e), { leafDn, mode: RUNNING });
  }
}
