/**
 * The end of one backup, restore, delete or verify, as the workflow interceptor (workflows/interceptors.ts)
 * reports it to its worker through a sink: the worker counts it for Prometheus. Pure and shared by
 * the workflow bundle and the worker.
 */
export type Operation = 'backup' | 'restore' | 'delete' | 'verify';
export type Outcome = 'success' | 'failure' | 'cancelled';

export interface OperationOutcome {
  operation: Operation;
  outcome: Outcome;
  /** The exit code (0 on success), as in sstProvisioningReturnValue. */
  code: number;
  /** From the workflow's start to its end (workflow time), lock wait included. */
  durationMs: number;
  /** The VM its request names (never a metric label: the control worker re-reads that VM's backups). */
  vm?: string;
}

const OPERATION_OF_WORKFLOW: Record<string, Operation> = {
  backupWorkflow: 'backup',
  restoreWorkflow: 'restore',
  deleteWorkflow: 'delete',
  verifyWorkflow: 'verify',
};

/** The operation a workflow type performs; undefined for the helpers (VM lock, schedules, node probe). */
export function operationOfWorkflow(workflowType: string | undefined): Operation | undefined {
  return workflowType ? OPERATION_OF_WORKFLOW[workflowType] : undefined;
}

/** A restore the operator declined ends without error but did nothing: counted as cancelled. */
export function outcomeOfResult(result: unknown): Outcome {
  return result !== null && typeof result === 'object' && (result as { cancelled?: unknown }).cancelled === true ? 'cancelled' : 'success';
}
