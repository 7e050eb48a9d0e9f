/**
 * The stoney cloud provisioning protocol on a backup leaf (docs/ldap-protocol.md): requested modes, the
 * `…ing` answer when a step starts, the `…ed` answer with its return value in the same modify,
 * `sstProvisioningState` = 0 for "to do" or the UTC timestamp of processing, and the per-phase
 * durations in `sstProvisioningExecutionTime`.
 */
import { leafTimestamp } from './naming.js';

/** Requested mode → [mode while running, mode when done]. */
export const STEP_MODES = {
  snapshot: ['snapshotting', 'snapshotted'],
  merge: ['merging', 'merged'],
  retain: ['retaining', 'retained'],
  delete: ['deleting', 'deleted'],
  unretainSmallFiles: ['unretainingSmallFiles', 'unretainedSmallFiles'],
  unretainLargeFiles: ['unretainingLargeFiles', 'unretainedLargeFiles'],
  restore: ['restoring', 'restored'],
  cleanup: ['cleaningUp', 'finished'],
} as const;

export type StepMode = keyof typeof STEP_MODES;
export type BackupStep = 'snapshot' | 'merge' | 'retain';
export const BACKUP_STEPS: readonly BackupStep[] = ['snapshot', 'merge', 'retain'];

/** The end of a complete backup (one go, or the last step of a scheduled run) and of a restore. */
export const FINISHED = 'finished';

/**
 * A leaf the control instance created and drives itself (fc-brokerd's first mode): not a request,
 * so no watcher acts on it. The CLI and the scheduler create their leaves with it.
 */
export const INITIALIZED = 'initialized';

/** The one-go backup request (this product's extension of the protocol). */
export const ONE_GO_BACKUP = 'backup';

/** The answer of the `delete` step once the iteration is gone (the leaf may then be removed). */
export const DELETED = STEP_MODES.delete[1];

export type Phase = 'snapshot' | 'merge' | 'retain' | 'downtime';

/** Durations in milliseconds, written as seconds with millisecond precision: `snapshot: 0.412`. */
export function executionTimeValues(times: Partial<Record<Phase, number>>): string[] {
  const order: Phase[] = ['snapshot', 'downtime', 'merge', 'retain'];
  return order.filter((p) => times[p] !== undefined).map((p) => `${p}: ${(times[p]! / 1000).toFixed(3)}`);
}

export function parseExecutionTimes(values: readonly string[]): Partial<Record<Phase, number>> {
  const out: Partial<Record<Phase, number>> = {};
  for (const v of values) {
    const m = /^(snapshot|downtime|merge|retain):\s*([\d.]+)$/.exec(v.trim());
    if (m) out[m[1] as Phase] = Math.round(Number(m[2]) * 1000);
  }
  return out;
}

export type LeafChanges = Record<string, string | string[] | null>;

/** The `…ing` answer: the node accepted the step. */
export function startedChanges(mode: string): LeafChanges {
  return { sstProvisioningMode: mode };
}

/** The `…ed` answer: mode, return value and durations in one modify (never apart, unlike the original). */
export function endedChanges(mode: string, returnValue: number, times?: Partial<Record<Phase, number>>): LeafChanges {
  const changes: LeafChanges = { sstProvisioningMode: mode, sstProvisioningReturnValue: String(returnValue) };
  if (times && Object.keys(times).length) changes['sstProvisioningExecutionTime'] = executionTimeValues(times);
  return changes;
}

/** A failure: the mode stays at the step's `…ing` value (as the original left it), with the code. */
export function failedChanges(runningMode: string, code: number, times?: Partial<Record<Phase, number>>): LeafChanges {
  return endedChanges(runningMode, code, times);
}

/** Marks the request as processed: the timestamp the framework wrote into sstProvisioningState. */
export function processedChanges(at: Date): LeafChanges {
  return { sstProvisioningState: leafTimestamp(at) };
}

/** A new backup leaf as fc-brokerd or LDAPKVMWrapper created it. */
export function newLeafAttributes(ou: string, mode: string): Record<string, string | string[]> {
  return {
    objectClass: ['top', 'organizationalUnit', 'sstProvisioning'],
    ou,
    sstProvisioningMode: mode,
    sstProvisioningState: '0',
    sstProvisioningExecutionDate: '0',
    sstProvisioningReturnValue: '0',
  };
}
