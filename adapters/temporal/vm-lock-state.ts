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
