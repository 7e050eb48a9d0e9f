/**
 * What a schedule hands its run: the group of VMs backed up at one time, with the order the
 * sequence attributes ask for, and how a run cuts a large group into batches per node. Shared by the
 * scheduler (client) and the scheduled run (workflows/scheduled-backup.ts). Pure.
 */
export interface ScheduledGroupInput {
  /** The group's key (also the schedule's ID below the prefix). */
  group: string;
  pool?: string;
  /** Every VM the run backs up, by name. */
  members: string[];
  /** Members named in sstVirtualizationVirtualMachineSequenceStop/-Start, in that order. */
  stopOrder: string[];
  startOrder: string[];
  /** The site's nodes: a VM that moved to another node meanwhile is skipped at run time. */
  nodes: string[];
  /** At most this many VMs per batch workflow (default DEFAULT_BATCH_SIZE); the scheduler leaves it out, tests set it. */
  batchSize?: number;
}

/** A run at most this many VMs' backups in one batch workflow (its history stays far below 10,000 events). */
export const DEFAULT_BATCH_SIZE = 200;
/** Members checked and given their leaves per `prepareScheduledRun` call, and how many calls run at once. */
export const PREPARE_CHUNK = 100;
export const PREPARE_PARALLEL = 4;

/** `items` cut into pieces of at most `size`, in order. */
export function chunked<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size ${size} is not a positive integer`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The side-by-side members of a run, per node (nodes in name order), each node's members in their
 * order cut into batches of at most `batchSize`: a node's batches run one after the other, the
 * nodes side by side, so every node is busy from the start and no batch's history grows with the pool.
 */
export function nodeBatches<C extends { node: string }>(members: readonly C[], batchSize: number): Array<{ node: string; batches: C[][] }> {
  const byNode = new Map<string, C[]>();
  for (const m of members) {
    const list = byNode.get(m.node);
    if (list) list.push(m);
    else byNode.set(m.node, [m]);
  }
  return [...byNode.keys()].sort().map((node) => ({ node, batches: chunked(byNode.get(node)!, batchSize) }));
}

/**
 * How many of a batch's backups are in flight at once: the node's slots and one more, so the next
 * backup already waits at the node's slots (VM lock taken, leaf read) when one ends. `slots` 0 (no
 * limit) runs the whole batch side by side.
 */
export function batchWindow(slots: number, batchSize: number): number {
  return slots === 0 ? batchSize : Math.min(batchSize, slots + 1);
}
