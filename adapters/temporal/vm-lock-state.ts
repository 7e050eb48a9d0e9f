/** Reads the per-VM lock (workflows/vm-lock.ts) from outside: who holds it and who waits. */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { vmLockWorkflowId } from '../../core/naming.js';
import { VM_LOCK_STATE_QUERY, type VmLockState } from '../../core/vm-lock.js';

/** Who holds and who waits for the VM's lock; undefined when no lock workflow runs (the VM is free). */
export async function readVmLockState(client: Client, vm: string): Promise<VmLockState | undefined> {
  const handle = client.workflow.getHandle(vmLockWorkflowId(vm));
  try {
    if ((await handle.describe()).status.name !== 'RUNNING') return undefined;
    return await handle.query<VmLockState>(VM_LOCK_STATE_QUERY);
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return undefined;
    throw e;
  }
}

/**
 * Whether the lock's holder (one run of a backup, restore or delete workflow) still runs: false when
 * that run has closed (completed, failed, terminated, timed out) or is unknown. Read with describe,
 * so the check adds nothing to the holder's history. Errors (Temporal unreachable) are thrown.
 */
export async function workflowRunIsOpen(client: Client, workflowId: string, runId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(workflowId, runId).describe()).status.name === 'RUNNING';
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return false;
    throw e;
  }
}
