/**
 * How workflows call the activities of a VM's node: on that node's task queue, with a timeout per
 * kind of step, and a one-line summary per call that says what the step does to which file (shown
 * in the Temporal UI's event history).
 *
 * Every node activity heartbeats while it runs (activities/node/heartbeat.ts), and every kind of call
 * has a heartbeat timeout: a node worker that dies in any step is noticed within that timeout (30 s by
 * default) and the step is retried, by the worker again once it is back (docs/architecture.md,
 * "Crashes"). The start-to-close timeouts only bound a step that runs but never ends.
 */
import { TimeoutType, type Duration } from '@temporalio/common';
import { ActivityCancellationType, ActivityFailure, proxyActivities, TimeoutFailure, type ActivityOptions } from '@temporalio/workflow';
import type { NodeActivities } from '../activities/node/index.js';
import { COMPENSATION_RETRY, LONG_STEP_RETRY, STEP_RETRY } from '../core/failures.js';
import { nodeTaskQueue } from '../core/naming.js';

export interface NodeProxyOptions {
  /** How fast a crashed node worker is noticed, in any step (the heartbeat timeout; default 30 s). */
  heartbeatTimeout?: Duration;
  /** At most this many attempts per step (default: the retry policies of core/failures.ts). */
  attempts?: number;
  /** How long an attempt waits for the node's worker to pick it up (default 10 minutes). */
  scheduleToStartTimeout?: Duration;
}

export const DEFAULT_HEARTBEAT_TIMEOUT: Duration = '30 seconds';

export type NodeCall = (summary: string) => NodeActivities;

export interface NodeProxies {
  quick: NodeCall;
  long: NodeCall;
  /**
   * Putting a VM back on its own images: never gives up. `scheduleToStart` bounds one call's wait for
   * the node's worker, so the workflow learns that it waits (compensateOnNode); undefined = no bound.
   */
  compensation: (summary: string, scheduleToStart?: Duration) => NodeActivities;
}

export function nodeProxies(node: string, o: NodeProxyOptions = {}): NodeProxies {
  const limit = (policy: typeof STEP_RETRY) => (o.attempts ? { ...policy, maximumAttempts: o.attempts } : policy);
  const heartbeatTimeout = o.heartbeatTimeout ?? DEFAULT_HEARTBEAT_TIMEOUT;
  const common = {
    taskQueue: nodeTaskQueue(node),
    heartbeatTimeout,
    // a node worker that is down (or restarting after a crash) gets this long per attempt
    scheduleToStartTimeout: o.scheduleToStartTimeout ?? '10 minutes',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  } as const;
  const kind =
    (options: ActivityOptions): NodeCall =>
    (summary) =>
      proxyActivities<NodeActivities>({ ...options, summary });
  return {
    quick: kind({ ...common, startToCloseTimeout: '10 minutes', retry: limit(STEP_RETRY) }),
    long: kind({ ...common, startToCloseTimeout: '24 hours', retry: limit(LONG_STEP_RETRY) }),
    compensation: (summary, scheduleToStart) => {
      const { scheduleToStartTimeout: _, ...rest } = common;
      return proxyActivities<NodeActivities>({
        ...rest,
        ...(scheduleToStart ? { scheduleToStartTimeout: scheduleToStart } : {}),
        startToCloseTimeout: '2 hours',
        retry: COMPENSATION_RETRY,
        summary,
      });
    },
  };
}

/**
 * How long successive compensation calls wait for the node's worker before the workflow says it is
 * waiting for that node (then calls again, waiting longer). Growing, so a node that stays down for
 * days adds a handful of history events an hour, not one a minute.
 */
export const COMPENSATION_WAITS: readonly Duration[] = ['30 seconds', '2 minutes', '10 minutes', '1 hour'];

/** The activity ended because no worker of its task queue picked it up in time. */
export function isScheduleToStartTimeout(e: unknown): boolean {
  const cause = e instanceof ActivityFailure ? e.cause : e;
  return cause instanceof TimeoutFailure && cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
}

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
