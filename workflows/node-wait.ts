/**
 * Node activities that say when they wait for their node. A node step waits in its node's task
 * queue until that node's worker picks it up; with the worker down (the hypervisor rebooting, the
 * worker being upgraded) the workflow would show nothing but its phase. Here each call waits in
 * growing windows (NODE_WAITS): when a window ends with no worker having started the step (a
 * schedule-to-start timeout, which Temporal never retries), the workflow sets KvmWaitingFor to the
 * node (`kvm-backup status` shows "waiting for node X") and schedules the step again; once the step
 * has run, KvmWaitingFor is cleared. The whole wait keeps the old bound (the call's
 * scheduleToStartTimeout, 10 minutes by default): then the step fails as before.
 *
 * Histories from before this (no `kvm-backup-node-wait` marker) replay with the single call they had.
 *
 * A compensation (compensateOnNode, below) waits in windows too, but without a bound: it never
 * gives up, and says "waiting for node X" in its progress and in KvmWaitingFor after each window.
 */
import { WORKFLOW_PATCHES } from '../core/workflow-patches.js';
import { msToNumber } from '@temporalio/common/lib/time.js';
import { TimeoutType, type Duration } from '@temporalio/common';
import { ActivityFailure, patched, TimeoutFailure, upsertSearchAttributes } from '@temporalio/workflow';
import type { NodeActivities } from '../activities/node/index.js';
import { SA } from '../core/search-attributes.js';

export const NODE_WAIT_PATCH = WORKFLOW_PATCHES.nodeWait.id;

/** How long successive calls wait for the node's worker; the last repeats until the bound is spent. */
export const NODE_WAITS: readonly Duration[] = ['30 seconds', '2 minutes', '10 minutes'];

/** The activity ended because no worker of its task queue started it in time. */
export function isScheduleToStartTimeout(e: unknown): boolean {
  const cause = e instanceof ActivityFailure ? e.cause : e;
  return cause instanceof TimeoutFailure && cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
}

/**
 * The node's activities, each call waiting for the worker as described above. `make` builds the
 * activity proxy for one call with a given schedule-to-start timeout (ms); `boundMs` is the whole
 * wait allowed per call.
 */
export function waitingForNode(node: string, make: (scheduleToStartMs: number) => NodeActivities, bound: Duration): NodeActivities {
  const boundMs = msToNumber(bound);
  const say = (waiting: boolean) => upsertSearchAttributes([{ key: SA.waitingFor, value: waiting ? node : null }]);
  return new Proxy({} as NodeActivities, {
    get(_, name) {
      // not a thenable, and only activity names
      if (typeof name !== 'string' || name === 'then') return undefined;
      return async (...args: unknown[]) => {
        const call = (ms: number) => (make(ms) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]!(...args);
        if (!patched(NODE_WAIT_PATCH)) return call(boundMs);
        let waited = 0;
        let said = false;
        for (let i = 0; ; i++) {
          const windowMs = Math.min(msToNumber(NODE_WAITS[Math.min(i, NODE_WAITS.length - 1)]!), boundMs - waited);
          try {
            const result = await call(windowMs);
            if (said) say(false);
            return result;
          } catch (e) {
            waited += windowMs;
            if (!isScheduleToStartTimeout(e) || waited >= boundMs) {
              if (said) say(false);
              throw e;
            }
            if (!said) say(true);
            said = true;
          }
        }
      };
    },
  });
}

/**
 * How long successive compensation calls wait for the node's worker before the workflow says it is
 * waiting for that node (then calls again, waiting longer). Growing, so a node that stays down for
 * days adds a handful of history events an hour, not one a minute.
 */
export const COMPENSATION_WAITS: readonly Duration[] = ['30 seconds', '2 minutes', '10 minutes', '1 hour'];

/**
 * Runs a compensation on `node` as long as it takes: each call may wait for the node's worker a
 * while (COMPENSATION_WAITS); when it has waited that long in vain, `waiting(true)` is told (the
 * workflow's status and search attribute say "waiting for node X") and the call is made again. A
 * node that comes back picks the call up; `waiting(false)` is told once the compensation has ended.
 * Any other failure is the compensation's own and is thrown.
 */
export async function compensateOnNode<T>(call: (scheduleToStart: Duration) => Promise<T>, waiting: (now: boolean) => void): Promise<T> {
  let waited = false;
  for (let i = 0; ; i++) {
    try {
      const result = await call(COMPENSATION_WAITS[Math.min(i, COMPENSATION_WAITS.length - 1)]!);
      if (waited) waiting(false);
      return result;
    } catch (e) {
      if (!isScheduleToStartTimeout(e)) {
        if (waited) waiting(false);
        throw e;
      }
      waited = true;
      waiting(true);
    }
  }
}
