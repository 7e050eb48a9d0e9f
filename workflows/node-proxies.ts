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
import type { Duration } from '@temporalio/common';
import { ActivityCancellationType, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { NodeActivities } from '../activities/node/index.js';
import { COMPENSATION_RETRY, LONG_STEP_RETRY, STEP_RETRY } from '../core/failures.js';
import { nodeTaskQueue } from '../core/naming.js';
import { waitingForNode } from './node-wait.js';

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
  const waiting =
    (options: ActivityOptions): NodeCall =>
    (summary) =>
      waitingForNode(node, (ms) => proxyActivities<NodeActivities>({ ...options, scheduleToStartTimeout: ms, summary }), options.scheduleToStartTimeout!);
  return {
    // quick and long steps say when they wait for their node's worker (node-wait.ts, patched)
    quick: waiting({ ...common, startToCloseTimeout: '10 minutes', retry: limit(STEP_RETRY) }),
    long: waiting({ ...common, startToCloseTimeout: '24 hours', retry: limit(LONG_STEP_RETRY) }),
    // putting a VM back on its own images never gives up; compensateOnNode (node-wait.ts) bounds
    // each call's wait for the node's worker so the workflow can say that it waits
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

