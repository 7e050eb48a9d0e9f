/**
 * Which workflow answers which request on a backup leaf: the one table the watcher (and anything
 * else that starts work from a leaf) reads. A leaf asks by setting sstProvisioningMode to a request
 * mode with sstProvisioningState = 0 (docs/ldap-protocol.md).
 *
 * - The standard modes are the step-by-step protocol of fc-brokerd and vm-manager: exactly that one
 *   step runs, answering `…ing`, then `…ed` with its return value.
 * - `backup` is this product's extension: all phases in one go (snapshot → merge → retain → rotate),
 *   mirroring every mode on the leaf and ending `finished`.
 *
 * Workflow IDs derive from the leaf (`<operation>/<vm>/<ou>`, plus `/<step>` for one step), so a
 * second start for the same request attaches to the running one (conflict policy USE_EXISTING).
 * The reuse policy says what happens once that workflow has closed:
 * - backup steps and delete: only a failed (or cancelled, terminated, timed-out) run may run again;
 *   a completed one never does (a leaf is one backup, a second snapshot would overwrite it);
 * - restore steps: may run again, because restoring the same backup twice (next week, say) is a real
 *   request; a replayed change cannot start one, since a processed leaf no longer shows state 0.
 *
 * Pure: no Temporal client here, only names, so the lead's restore workflow plugs in by name.
 */
import { workflowIdForLeaf, type LeafRef, type Operation } from './naming.js';
import { FINISHED, INITIALIZED, ONE_GO_BACKUP, STEP_MODES, type StepMode } from './provisioning.js';

/** Workflow types a leaf can start (registered by the control worker under these names). */
export type LeafWorkflow = 'backupWorkflow' | 'restoreWorkflow' | 'deleteWorkflow';

export type ReusePolicy = 'failed-only' | 'always';

/** The request modes: the seed's step modes plus the one-go extension. */
export const ONE_GO_MODE = ONE_GO_BACKUP;
/**
 * The vm-manager cancels a restore at its confirmation point by writing `finished` with state 0
 * (docs/restore.md, Confirmation); only that writes `finished` without the processed stamp. It is a
 * request to remove what the restore unretained (the original left those files behind).
 */
export const VM_MANAGER_CANCEL_MODE = FINISHED;
export type RequestMode = StepMode | typeof ONE_GO_MODE | typeof VM_MANAGER_CANCEL_MODE;

export interface Dispatch {
  mode: RequestMode;
  workflow: LeafWorkflow;
  operation: Operation;
  /** The steps the workflow runs; undefined = all of them (one go). */
  steps?: string[];
  reuse: ReusePolicy;
  /** The mode the leaf shows while the work runs and when it is done (for answers and logs). */
  runningMode: string;
  doneMode: string;
}

type Row = Omit<Dispatch, 'mode' | 'runningMode' | 'doneMode'>;

const TABLE: Record<RequestMode, Row> = {
  backup: { workflow: 'backupWorkflow', operation: 'backup', reuse: 'failed-only' },
  snapshot: { workflow: 'backupWorkflow', operation: 'backup', steps: ['snapshot'], reuse: 'failed-only' },
  merge: { workflow: 'backupWorkflow', operation: 'backup', steps: ['merge'], reuse: 'failed-only' },
  retain: { workflow: 'backupWorkflow', operation: 'backup', steps: ['retain'], reuse: 'failed-only' },
  delete: { workflow: 'deleteWorkflow', operation: 'delete', reuse: 'failed-only' },
  unretainSmallFiles: { workflow: 'restoreWorkflow', operation: 'restore', steps: ['unretainSmallFiles'], reuse: 'always' },
  unretainLargeFiles: { workflow: 'restoreWorkflow', operation: 'restore', steps: ['unretainLargeFiles'], reuse: 'always' },
  restore: { workflow: 'restoreWorkflow', operation: 'restore', steps: ['restore'], reuse: 'always' },
  cleanup: { workflow: 'restoreWorkflow', operation: 'restore', steps: ['cleanup'], reuse: 'always' },
  finished: { workflow: 'restoreWorkflow', operation: 'restore', steps: ['cleanup'], reuse: 'always' },
};

export const REQUEST_MODES = Object.keys(TABLE) as RequestMode[];

/**
 * Modes that are not requests but answers or intermediate states (ours, the original's, the
 * broker's): seen with state 0 they are echoes of work in progress and are ignored, never answered 18.
 */
export const ANSWER_MODES: ReadonlySet<string> = new Set(
  [INITIALIZED, ...Object.values(STEP_MODES).flatMap(([running, done]) => [running, done])].filter((m) => m !== VM_MANAGER_CANCEL_MODE),
);

export function dispatchFor(mode: string): Dispatch | undefined {
  if (!Object.prototype.hasOwnProperty.call(TABLE, mode)) return undefined;
  const row = TABLE[mode as RequestMode];
  const [runningMode, doneMode] =
    mode === ONE_GO_MODE ? ['snapshotting', FINISHED] : mode === VM_MANAGER_CANCEL_MODE ? STEP_MODES.cleanup : STEP_MODES[mode as StepMode];
  return { mode: mode as RequestMode, ...row, runningMode, doneMode };
}

/** `<operation>/<vm>/<ou>` for one go, `<operation>/<vm>/<ou>/<step>` for one step. */
export function workflowIdFor(leaf: LeafRef, dispatch: Dispatch): string {
  const base = workflowIdForLeaf(leaf, dispatch.operation);
  return dispatch.steps ? `${base}/${dispatch.steps.join('+')}` : base;
}

/** The workflow's single argument: the leaf DN and, step by step, the steps. Never a secret. */
export function workflowInput(leafDn: string, dispatch: Dispatch): { leafDn: string; steps?: string[] } {
  return dispatch.steps ? { leafDn, steps: [...dispatch.steps] } : { leafDn };
}

/** Temporal's names for the reuse policy of a dispatch. */
export function temporalReusePolicy(dispatch: Dispatch): 'ALLOW_DUPLICATE_FAILED_ONLY' | 'ALLOW_DUPLICATE' {
  return dispatch.reuse === 'failed-only' ? 'ALLOW_DUPLICATE_FAILED_ONLY' : 'ALLOW_DUPLICATE';
}
