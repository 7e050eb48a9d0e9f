/**
 * Names and shapes shared by the per-VM lock workflow (workflows/vm-lock.ts) and the activities
 * and clients that talk to it, so those never import workflow code. Pure.
 */
export const VM_LOCK_WORKFLOW = 'vmLockWorkflow';

export const VM_LOCK_SIGNALS = {
  acquire: 'acquireVmLock',
  release: 'releaseVmLock',
  granted: 'vmLockGranted',
  liveness: 'vmLockLiveness',
} as const;

export const VM_LOCK_STATE_QUERY = 'vmLockState';

export interface VmLockRequest {
  /** Unique per acquisition (a workflow may take the lock more than once). */
  requestId: string;
  workflowId: string;
  runId: string;
  /** What the holder does (backup, delete, restore), for the query and the scheduler. */
  operation: string;
}

export interface VmLockState {
  vm: string;
  holder?: VmLockRequest;
  waiting: VmLockRequest[];
}

/** True when some operation holds the VM or waits for it. */
export function vmBusy(state: VmLockState | undefined): boolean {
  return !!state && (!!state.holder || state.waiting.length > 0);
}
