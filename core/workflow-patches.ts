/**
 * The patches in the workflow code (docs/upgrades.md): every `patched(…)` and `deprecatePatch(…)` of
 * workflows/ names its ID from here, so a release's new patches can be read in one place and left
 * dormant during a rolling upgrade. Pure.
 *
 * A dormant patch ([Temporal] DORMANT_PATCHES) is not taken by a run that reaches it on this worker
 * and leaves no marker, so the run replays on workers that do not know the patch yet; a run whose
 * history has the marker takes the new branch on every worker that knows it, dormant or not. The
 * SDK's `patchActivationCallback` (experimental in @temporalio/worker 1.24, pinned) does the work.
 */
export interface WorkflowPatch {
  /** The patch ID recorded in the history's marker; never changed once released. */
  id: string;
  /** What the new branch does. */
  change: string;
  /** When it came: the change that brought it (docs/upgrades.md lists when it may go). */
  since: string;
}

export const WORKFLOW_PATCHES = {
  failureNotification: {
    id: 'kvm-backup-failure-notification',
    change: 'a failed backup, restore, deletion or scheduled run calls the notifyFailure activity (mail, webhook) after its code is on the leaf',
    since: 'failure notifications (2026-11)',
  },
  nodeWait: {
    id: 'kvm-backup-node-wait',
    change: "a node step waits for its node's worker in growing windows and says so (KvmWaitingFor, status) instead of one 10-minute wait",
    since: 'waiting for a node shown (2026-11)',
  },
  crashSafeRotation: {
    id: 'kvm-backup-crash-safe-rotation',
    change: "a backup's rotation only marks the iterations beyond those kept (.deleting-<ou>); after their leaves are removed, purgeDeletedIterations removes their files",
    since: 'crash-safe deletion of iterations (2026-11)',
  },
  lockLivenessByDescribe: {
    id: 'kvm-backup-lock-liveness-by-describe',
    change: "the VM lock checks its holder with a local activity (describe) instead of a liveness signal, and continues as new while held",
    since: 'bounded histories (2026-11)',
  },
  nodeSlots: {
    id: 'kvm-backup-node-slots',
    change: "a backup takes a slot of its node (node-slots/<node>, [Backup] MAX_CONCURRENT_BACKUPS) after its VM lock and leaf read, and writes its leaf answers and reads its LDIF as local activities while it holds it",
    since: 'per-node backup slots (2026-11)',
  },
  batchedRun: {
    id: 'kvm-backup-batched-run',
    change: 'a scheduled run prepares its members in chunks and backs up the one-go members per node in scheduledBatchWorkflow children of at most 200 VMs',
    since: 'batched scheduled runs (2026-11)',
  },
} as const satisfies Record<string, WorkflowPatch>;

/** Every patch ID this build's workflows know. */
export const KNOWN_PATCH_IDS: ReadonlySet<string> = new Set(Object.values(WORKFLOW_PATCHES).map((p) => p.id));

/**
 * The worker's answer to "take this patch in a run that reaches it now?": no for the dormant ones,
 * yes for the others; undefined when none is dormant (the SDK's default: every patch is taken).
 */
export function patchActivation(dormant: readonly string[]): ((input: { patchId: string }) => boolean) | undefined {
  if (dormant.length === 0) return undefined;
  const off = new Set(dormant);
  return ({ patchId }) => !off.has(patchId);
}

/** `[Temporal] DORMANT_PATCHES`: patch IDs separated by commas or blanks; empty or absent = none. */
export function parseDormantPatches(value: string | undefined): string[] {
  return [...new Set((value ?? '').split(/[\s,]+/).filter(Boolean))];
}
