/**
 * The `delete` step (retention, docs/ldap-protocol.md): removes one backup iteration, the leaf's
 * own, from the backup root on the VM's node, answering `deleting`, then `deleted` with its return
 * value and the processed stamp in one modify. The iteration is found from the leaf and the layout
 * alone, so an old iteration can be deleted after the VM was undefined or its disks changed. The
 * leaf itself stays: fc-brokerd removes it on `deleted`, and so does this product's scheduler when
 * it drives retention. Unlike the original, the return value tells the truth (a file that cannot
 * be removed is 13, not 0) and the empty directory goes too.
 */
import { upsertSearchAttributes } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import { STEP_MODES } from '../core/provisioning.js';
import { SA } from '../core/search-attributes.js';
import { directory, LeafProtocol } from './leaf-protocol.js';
import { nodeProxies } from './node-proxies.js';
import { lockableVmOf, withVmLock } from './vm-lock.js';

export interface DeleteRequest {
  /** DN of the backup leaf whose iteration is removed. */
  leafDn: string;
  /** Heartbeat timeout of the node activity: how fast a crashed node worker is noticed (default 30 s). */
  heartbeatTimeout?: Duration;
}

export interface DeleteOutcome {
  leafDn: string;
  vm: string;
  ou: string;
  /** False when the iteration directory was already gone (nothing to do is not an error). */
  deleted: boolean;
}

const [RUNNING, DONE] = STEP_MODES.delete;

export async function deleteWorkflow(request: DeleteRequest): Promise<DeleteOutcome> {
  const vm = lockableVmOf(request.leafDn);
  // a DN that names no (valid) VM cannot be locked; the step then fails on its own with the right code
  return vm ? withVmLock(vm, 'delete', () => deleteIteration(request)) : deleteIteration(request);
}

async function deleteIteration(request: DeleteRequest): Promise<DeleteOutcome> {
  const { leafDn } = request;
  upsertSearchAttributes([{ key: SA.operation, value: 'delete' }, { key: SA.leaf, value: leafDn }, { key: SA.phase, value: 'delete' }]);
  const leafAnswers = new LeafProtocol(leafDn, RUNNING, (code) => upsertSearchAttributes([{ key: SA.phase, value: `failed (${code})` }]));
  await leafAnswers.begin();
  try {
    const ctx = await directory.loadBackupContext(leafDn);
    upsertSearchAttributes([{ key: SA.vm, value: ctx.leaf.vm }, { key: SA.node, value: ctx.node }]);
    const node = nodeProxies(ctx.node, request);
    const { deleted } = await node.quick(`delete backup ${ctx.leaf.ou} of ${ctx.leaf.vm}`).deleteIteration(ctx);
    await leafAnswers.done(DONE, { processed: true });
    upsertSearchAttributes([{ key: SA.phase, value: 'done' }, { key: SA.exitCode, value: 0 }]);
    return { leafDn, vm: ctx.leaf.vm, ou: ctx.leaf.ou, deleted };
  } catch (e) {
    return leafAnswers.fail(e);
  }
}
