/**
 * The activity side of the per-VM lock: a workflow cannot signal-with-start another workflow, so
 * this activity does it for the requester, through the worker's own Temporal client; and a read of
 * the lock's state for the scheduler ("is a backup of this VM still running?"); and the lock's check
 * that its holder still runs.
 */
import { Context } from '@temporalio/activity';
import { readVmLockState, workflowRunIsOpen } from '../../adapters/temporal/vm-lock-state.js';
import { VM_LOCK_SIGNALS, VM_LOCK_WORKFLOW, type VmLockRequest, type VmLockState } from '../../core/vm-lock.js';

export function createVmLockActivities() {
  return {
    /** Puts `request` in the line of the VM's lock, starting the lock workflow if none runs. */
    async requestVmLock(input: { lockWorkflowId: string; vm: string; request: VmLockRequest }): Promise<void> {
      const { client, info } = Context.current();
      await client.workflow.signalWithStart(VM_LOCK_WORKFLOW, {
        workflowId: input.lockWorkflowId,
        // the lock lives on the queue of the workflows that use it (this activity runs on it)
        taskQueue: info.taskQueue,
        args: [{ vm: input.vm }],
        signal: VM_LOCK_SIGNALS.acquire,
        signalArgs: [input.request],
      });
    },

    /**
     * The lock's liveness check: does the holder's run still run? (describe, so the holder's
     * history gets no event; the lock runs it as a local activity).
     */
    async vmLockHolderRunning(holder: Pick<VmLockRequest, 'workflowId' | 'runId'>): Promise<boolean> {
      return workflowRunIsOpen(Context.current().client, holder.workflowId, holder.runId);
    },

    /** Who holds and who waits for the VM's lock; undefined when the VM is free. */
    async vmLockState(vm: string): Promise<VmLockState | undefined> {
      return readVmLockState(Context.current().client, vm);
    },
  };
}
