/**
 * One VM, one operation at a time: a lock workflow per VM (`vm-lock/<vm>`, the Temporal samples'
 * mutex). Backup, delete and restore workflows call `withVmLock(vm, …)` around their work: an
 * activity signal-with-starts the lock workflow with a request, the lock grants requests in arrival
 * order by signalling the requester, and the requester signals release when it is done (also when
 * it fails or is cancelled). A holder that ends without releasing (terminated, timed out) is noticed
 * by a liveness check every minute: a local activity reads the holder's run with describe (nothing
 * lands in the holder's history, so a backup of many hours keeps a short history), and the lock
 * moves on when that run has closed. The lock's own history stays short: it continues as new past
 * HISTORY_LIMIT events, between holders or while one holds it (the holder and the line carried
 * over). An idle lock workflow completes after a minute; the next request starts a new run.
 */
import {
  CancellationScope, condition, continueAsNew, getExternalWorkflowHandle, log, patched, proxyLocalActivities, setHandler, upsertSearchAttributes,
  uuid4, workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control/index.js';
import { DIRECTORY_RETRY } from '../core/failures.js';
import type { Duration } from '@temporalio/common';
import { parseLeafDn, vmLockWorkflowId } from '../core/naming.js';
import { SA } from '../core/search-attributes.js';
import { WORKFLOW_PATCHES } from '../core/workflow-patches.js';
import type { VmLockRequest } from '../core/vm-lock.js';
import {
  acquireVmLockSignal, releaseVmLockSignal, vmLockGrantedSignal, vmLockLivenessSignal, vmLockStateQuery,
} from './definitions.js';
import { directory } from './leaf-protocol.js';

export type { VmLockRequest, VmLockState } from '../core/vm-lock.js';

export interface VmLockInput {
  vm: string;
  /** Carried over by continue-as-new. */
  waiting?: VmLockRequest[];
  /** Carried over by continue-as-new while a request holds the lock (it was granted in an earlier run). */
  holder?: VmLockRequest;
  /** Continue as new past this many history events (default HISTORY_LIMIT; tests set less). */
  historyLimit?: number;
  /** How often the holder is checked for life (default 1 minute). */
  livenessCheck?: Duration;
  /** How long an idle lock waits for a request before it completes (default 1 minute). */
  idleTimeout?: Duration;
}

/** Histories stay short: a long-lived lock of a busy VM starts afresh now and then. */
const HISTORY_LIMIT = 2_000;

/** The patch that brought the liveness check by describe and continue-as-new while held (histories of older runs replay without it). */
const LIVENESS_BY_DESCRIBE = WORKFLOW_PATCHES.lockLivenessByDescribe.id;

/** The liveness check, run beside the workflow (a marker in this history, nothing in the holder's). */
const liveness = proxyLocalActivities<ControlActivities>({ startToCloseTimeout: '30 seconds', retry: { ...DIRECTORY_RETRY, maximumAttempts: 3 } });

/** False only when the holder's run is known to have closed; an unanswered check keeps the holder. */
async function holderRuns(vm: string, holder: VmLockRequest): Promise<boolean> {
  try {
    return await liveness.vmLockHolderRunning({ workflowId: holder.workflowId, runId: holder.runId });
  } catch (e) {
    log.warn('cannot tell whether the lock holder still runs; it keeps the lock', { vm, holder: holder.workflowId, error: String(e) });
    return true;
  }
}

export async function vmLockWorkflow(input: VmLockInput): Promise<void> {
  const waiting: VmLockRequest[] = [...(input.waiting ?? [])];
  let holder: VmLockRequest | undefined = input.holder;
  let holderReleased = false;
  const historyLimit = input.historyLimit ?? HISTORY_LIMIT;
  const restart = (held: VmLockRequest | undefined) => {
    const { holder: _, ...rest } = input;
    return continueAsNew<typeof vmLockWorkflow>({ ...rest, waiting, ...(held ? { holder: held } : {}) });
  };
  setHandler(acquireVmLockSignal, (r) => {
    if (holder?.requestId === r.requestId || waiting.some((w) => w.requestId === r.requestId)) return; // a retried request
    waiting.push(r);
  });
  setHandler(releaseVmLockSignal, (requestId) => {
    if (holder?.requestId === requestId) holderReleased = true;
    else {
      // a waiter that gave up (cancelled, failed before its turn)
      const i = waiting.findIndex((w) => w.requestId === requestId);
      if (i >= 0) waiting.splice(i, 1);
    }
  });
  setHandler(vmLockStateQuery, () => ({ vm: input.vm, ...(holder ? { holder } : {}), waiting: [...waiting] }));
  upsertSearchAttributes([{ key: SA.vm, value: input.vm }]);

  const livenessCheck = input.livenessCheck ?? '1 minute';
  for (;;) {
    if (!holder) {
      if (waiting.length === 0) {
        await condition(() => waiting.length > 0, input.idleTimeout ?? '1 minute');
        // a request may arrive together with the timeout: look at the queue, not at the timer
        if (waiting.length === 0) return;
      }
      if (workflowInfo().historyLength > historyLimit) await restart(undefined);
      const next = waiting.shift()!;
      try {
        await getExternalWorkflowHandle(next.workflowId, next.runId).signal(vmLockGrantedSignal, next.requestId);
      } catch (e) {
        log.warn('lock requester is gone before its turn', { vm: input.vm, requester: next.workflowId, error: String(e) });
        continue;
      }
      holder = next;
      holderReleased = false;
    }
    while (!holderReleased) {
      if (await condition(() => holderReleased, livenessCheck)) break;
      if (!patched(LIVENESS_BY_DESCRIBE)) {
        // a run that began before this check existed replays as it ran: the liveness signal
        const gone = await getExternalWorkflowHandle(holder.workflowId, holder.runId).signal(vmLockLivenessSignal).then(() => false, () => true);
        if (gone) break;
        continue;
      }
      if (!(await holderRuns(input.vm, holder))) {
        log.warn('lock holder ended without releasing the lock; releasing it', { vm: input.vm, holder: holder.workflowId });
        break;
      }
      if (workflowInfo().historyLength > historyLimit) await restart(holder);
    }
    holder = undefined;
  }
}

/**
 * Runs `fn` while this workflow holds the lock of `vm`; waits in line when another operation holds
 * it. The lock is released however `fn` ends.
 */
export async function withVmLock<T>(vm: string, operation: string, fn: () => Promise<T>): Promise<T> {
  const requestId = uuid4();
  let granted = false;
  setHandler(vmLockGrantedSignal, (id) => {
    if (id === requestId) granted = true;
  });
  // lock runs of earlier versions checked liveness by this signal; it needs no answer
  setHandler(vmLockLivenessSignal, () => undefined);
  const lockId = vmLockWorkflowId(vm);
  const { workflowId, runId } = workflowInfo();
  upsertSearchAttributes([{ key: SA.phase, value: 'waiting for the VM lock' }]);
  try {
    await directory.requestVmLock({ lockWorkflowId: lockId, vm, request: { requestId, workflowId, runId, operation } });
    await condition(() => granted);
    return await fn();
  } finally {
    await CancellationScope.nonCancellable(() => getExternalWorkflowHandle(lockId).signal(releaseVmLockSignal, requestId)).catch((e) =>
      log.warn('could not release the VM lock; it frees itself when this run has ended', { vm, error: String(e) }),
    );
  }
}

/** The VM a leaf DN names, when its name is one a lock can carry (else the caller runs unlocked and fails on its own). */
export function lockableVmOf(leafDn: string): string | undefined {
  const vm = parseLeafDn(leafDn)?.vm;
  if (!vm) return undefined;
  try {
    vmLockWorkflowId(vm);
    return vm;
  } catch {
    return undefined;
  }
}
