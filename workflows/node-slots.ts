/**
 * How many backups one node runs at once: a counting semaphore per hypervisor (`node-slots/<node>`,
 * the per-VM lock of workflows/vm-lock.ts with `slots` holders instead of one). Every backup takes a
 * slot of its VM's node after it has its VM lock and has read its leaf, and gives it back however it
 * ends; a backup that waits for a slot says so in its phase. The semaphore is a workflow, so its
 * line survives worker restarts, and one workflow ID per node makes it one line for every control
 * worker, every scheduled run and the watcher's requests.
 *
 * Slots are granted in arrival order by signalling the requester; the requester signals release.
 * A holder that ends without releasing (terminated, timed out) is noticed by a liveness check of
 * every holder each minute, as the VM lock does it (workflows/vm-lock.ts): a local activity reads
 * the holder's run with describe, so nothing lands in the holder's history (a backup's history does
 * not grow with the time it holds its slot, BENCHMARKS.md "History events"), and its slot is freed
 * once that run has closed; a check that cannot answer keeps the holder. The number of
 * slots comes with each request ([Backup] MAX_CONCURRENT_BACKUPS of the control worker that sent it;
 * the newest applies). An idle semaphore completes after a minute; a busy one continues as new past
 * 2,000 history events, carrying its holders and its line.
 */
import {
  CancellationScope, condition, continueAsNew, getExternalWorkflowHandle, log, proxyLocalActivities, setHandler, upsertSearchAttributes, uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control/index.js';
import { DIRECTORY_RETRY } from '../core/failures.js';
import type { Duration } from '@temporalio/common';
import { nodeSlotsWorkflowId } from '../core/naming.js';
import type { NodeSlotRequest } from '../core/node-slots.js';
import { SA } from '../core/search-attributes.js';
import {
  acquireNodeSlotSignal, nodeSlotGrantedSignal, nodeSlotsStateQuery, releaseNodeSlotSignal,
} from './definitions.js';
import { directory } from './leaf-protocol.js';

export type { NodeSlotRequest, NodeSlotsState } from '../core/node-slots.js';

export interface NodeSlotsInput {
  node: string;
  /** Carried over by continue-as-new (a new semaphore learns the number from its first request). */
  slots?: number;
  holders?: NodeSlotRequest[];
  waiting?: NodeSlotRequest[];
  /** How often the holders are checked for life, in ms (default 60,000). */
  livenessCheckMs?: number;
  /** How long an idle semaphore waits for a request before it completes (default 1 minute). */
  idleTimeout?: Duration;
}

/** Histories stay short: a busy node's semaphore starts afresh now and then. */
const HISTORY_LIMIT = 2_000;

/** The liveness check, run beside the workflow (a marker in this history, nothing in the holder's). */
const liveness = proxyLocalActivities<ControlActivities>({ startToCloseTimeout: '30 seconds', retry: { ...DIRECTORY_RETRY, maximumAttempts: 3 } });

export async function nodeSlotsWorkflow(input: NodeSlotsInput): Promise<void> {
  let slots = input.slots ?? 1;
  const holders: NodeSlotRequest[] = [...(input.holders ?? [])];
  const waiting: NodeSlotRequest[] = [...(input.waiting ?? [])];
  setHandler(acquireNodeSlotSignal, (r) => {
    slots = Math.max(1, r.slots);
    if (holders.some((h) => h.requestId === r.requestId) || waiting.some((w) => w.requestId === r.requestId)) return; // a retried request
    waiting.push(r);
  });
  setHandler(releaseNodeSlotSignal, (requestId) => {
    // a holder done, or a waiter that gave up (cancelled, failed before its turn)
    for (const list of [holders, waiting]) {
      const i = list.findIndex((r) => r.requestId === requestId);
      if (i >= 0) list.splice(i, 1);
    }
  });
  setHandler(nodeSlotsStateQuery, () => ({ node: input.node, slots, holders: [...holders], waiting: [...waiting] }));
  upsertSearchAttributes([{ key: SA.node, value: input.node }, { key: SA.operation, value: 'node-slots' }]);

  const livenessMs = input.livenessCheckMs ?? 60_000;
  let checkedAt = Date.now();
  const idle = () => holders.length === 0 && waiting.length === 0;
  const grantable = () => holders.length < slots && waiting.length > 0;
  for (;;) {
    if (idle()) {
      await condition(() => waiting.length > 0, input.idleTimeout ?? '1 minute');
      // a request may arrive together with the timeout: look at the line, not at the timer
      if (waiting.length === 0) return;
      checkedAt = Date.now();
    }
    if (workflowInfo().historyLength > HISTORY_LIMIT) {
      await continueAsNew<typeof nodeSlotsWorkflow>({ ...input, slots, holders, waiting });
    }
    if (grantable()) await grant(waiting.splice(0, slots - holders.length));
    const dueMs = Math.max(1, checkedAt + livenessMs - Date.now());
    await condition(() => grantable() || idle(), dueMs);
    if (Date.now() - checkedAt >= livenessMs) {
      await dropDeadHolders();
      checkedAt = Date.now();
    }
  }

  /** Holders are recorded before the signal, so a release that crosses the grant is not lost. */
  async function grant(next: NodeSlotRequest[]): Promise<void> {
    holders.push(...next);
    await Promise.all(
      next.map(async (r) => {
        try {
          await getExternalWorkflowHandle(r.workflowId, r.runId).signal(nodeSlotGrantedSignal, r.requestId);
        } catch (e) {
          log.warn('backup slot requester is gone before its turn', { node: input.node, vm: r.vm, requester: r.workflowId, error: String(e) });
          release(r.requestId);
        }
      }),
    );
  }

  async function dropDeadHolders(): Promise<void> {
    await Promise.all(
      [...holders].map(async (h) => {
        let running = true;
        try {
          running = await liveness.nodeSlotHolderRunning({ workflowId: h.workflowId, runId: h.runId });
        } catch (e) {
          log.warn('cannot tell whether the backup slot holder still runs; it keeps its slot', { node: input.node, vm: h.vm, holder: h.workflowId, error: String(e) });
        }
        if (!running) {
          log.warn('backup slot holder ended without releasing its slot; freeing it', { node: input.node, vm: h.vm, holder: h.workflowId });
          release(h.requestId);
        }
      }),
    );
  }

  function release(requestId: string): void {
    const i = holders.findIndex((h) => h.requestId === requestId);
    if (i >= 0) holders.splice(i, 1);
  }
}

/**
 * Runs `fn` while this workflow holds a backup slot of `node`; waits in line (after `onWait()`)
 * while the node runs as many backups as it may. `fn` may give the slot back early with `release()`
 * once its last step on the node is done (the signal goes out while `fn` goes on); else it is given
 * back however `fn` ends. With no limit configured ([Backup] MAX_CONCURRENT_BACKUPS = 0) `fn` runs
 * at once.
 */
export async function withNodeSlot<T>(node: string, vm: string, onWait: () => void, fn: (release: () => void) => Promise<T>): Promise<T> {
  const requestId = uuid4();
  let granted = false;
  setHandler(nodeSlotGrantedSignal, (id) => {
    if (id === requestId) granted = true;
  });
  const { workflowId, runId } = workflowInfo();
  let unlimited = false;
  let released: Promise<void> | undefined;
  const release = () => {
    released ??= CancellationScope.nonCancellable(() => getExternalWorkflowHandle(nodeSlotsWorkflowId(node)).signal(releaseNodeSlotSignal, requestId)).catch((e) =>
      log.warn('could not give back the backup slot; it is freed when this run has ended', { node, vm, error: String(e) }),
    );
  };
  onWait();
  try {
    const { slots } = await directory.requestNodeSlot({ node, request: { requestId, workflowId, runId, vm, operation: 'backup' } });
    unlimited = slots === 0;
    await condition(() => granted || unlimited);
    return await fn(() => {
      if (!unlimited) release();
    });
  } finally {
    if (!unlimited) release();
    await released;
  }
}
