/**
 * Names and shapes shared by the per-node backup slots (workflows/node-slots.ts: a counting
 * semaphore per hypervisor, `[Backup] MAX_CONCURRENT_BACKUPS` slots) and the activities and clients
 * that talk to it, so those never import workflow code. Pure.
 */
export const NODE_SLOTS_WORKFLOW = 'nodeSlotsWorkflow';

export const NODE_SLOT_SIGNALS = {
  acquire: 'acquireNodeSlot',
  release: 'releaseNodeSlot',
  granted: 'nodeSlotGranted',
} as const;

export const NODE_SLOTS_STATE_QUERY = 'nodeSlotsState';

export interface NodeSlotRequest {
  /** Unique per acquisition (a workflow run may take a slot more than once, e.g. after a retry). */
  requestId: string;
  workflowId: string;
  runId: string;
  /** The VM the backup is for (for the query, the logs and the tests). */
  vm: string;
  /** What the holder does (backup), for the query. */
  operation: string;
  /**
   * The slots per node the requester's control worker is configured with ([Backup]
   * MAX_CONCURRENT_BACKUPS, ≥ 1): the newest request's value applies from then on.
   */
  slots: number;
}

export interface NodeSlotsState {
  node: string;
  /** How many backups the node may run at once now. */
  slots: number;
  /** The backups running on the node (holding a slot), in the order they got it. */
  holders: NodeSlotRequest[];
  /** The backups waiting for a slot, first in line first. */
  waiting: NodeSlotRequest[];
}

/** What the phase of a backup says while it waits for a slot on its node (progress query, KvmPhase). */
export function waitingForSlotPhase(node: string): string {
  return `waiting for a backup slot on node ${node}`;
}
