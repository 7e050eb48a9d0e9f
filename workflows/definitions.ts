/**
 * The queries and signals of the workflows, defined once and imported by the workflows that handle
 * them and by the CLI and tests that send them (the Temporal samples' shared definitions). Names
 * that activities send without importing workflow code live in core/ (progress.ts, vm-lock.ts).
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Phase } from '../core/provisioning.js';
import { NODE_SLOT_SIGNALS, NODE_SLOTS_STATE_QUERY, type NodeSlotRequest, type NodeSlotsState } from '../core/node-slots.js';
import { VM_LOCK_SIGNALS, VM_LOCK_STATE_QUERY, type VmLockRequest, type VmLockState } from '../core/vm-lock.js';

/** What a running backup reports: its phase, the durations so far, warnings, the running copy. */
export interface BackupProgress {
  phase: string;
  vm?: string;
  node?: string;
  times: Partial<Record<Phase, number>>;
  warnings: string[];
  /** The node whose worker the compensation waits for (it has not picked the compensation up). */
  waitingFor?: string;
}

/** What a running restore reports; `awaitingConfirmation` while a one-go restore waits for its "yes". */
export interface RestoreProgress {
  phase: string;
  vm?: string;
  backupDir?: string;
  warnings: string[];
  awaitingConfirmation: boolean;
}

/**
 * Backups and restores answer the same query name, each with its own shape; `phase` is common. The
 * progress of a running copy is not here: it is in the pending activity's heartbeat details
 * (core/progress.ts), read with describe, so it adds nothing to the history.
 */
export const PROGRESS_QUERY = 'progress';
export const backupProgressQuery = defineQuery<BackupProgress>(PROGRESS_QUERY);
export const restoreProgressQuery = defineQuery<RestoreProgress>(PROGRESS_QUERY);
export const phaseQuery = defineQuery<{ phase?: string }>(PROGRESS_QUERY);

/** true = go on with the large files and the restore; false = cancel (the retain files are removed). */
export const confirmRestoreSignal = defineSignal<[boolean]>('confirmRestore');

export const acquireVmLockSignal = defineSignal<[VmLockRequest]>(VM_LOCK_SIGNALS.acquire);
export const releaseVmLockSignal = defineSignal<[string]>(VM_LOCK_SIGNALS.release);
export const vmLockGrantedSignal = defineSignal<[string]>(VM_LOCK_SIGNALS.granted);
/** Sent to the holder only to learn whether it still runs; it needs no answer. */
export const vmLockLivenessSignal = defineSignal<[]>(VM_LOCK_SIGNALS.liveness);
export const vmLockStateQuery = defineQuery<VmLockState>(VM_LOCK_STATE_QUERY);

export const acquireNodeSlotSignal = defineSignal<[NodeSlotRequest]>(NODE_SLOT_SIGNALS.acquire);
export const releaseNodeSlotSignal = defineSignal<[string]>(NODE_SLOT_SIGNALS.release);
export const nodeSlotGrantedSignal = defineSignal<[string]>(NODE_SLOT_SIGNALS.granted);
/** Sent to each holder of a node slot only to learn whether it still runs. */
export const nodeSlotsStateQuery = defineQuery<NodeSlotsState>(NODE_SLOTS_STATE_QUERY);
