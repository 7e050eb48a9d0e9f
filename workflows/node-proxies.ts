/**
 * How workflows call the activities of a VM's node: on that node's task queue, with a timeout per
 * kind of step, and a one-line summary per call that says what the step does to which file (shown
 * in the Temporal UI's event history).
 */
import type { Duration } from '@temporalio/common';
import { ActivityCancellationType, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { NodeActivities } from '../activities/node/index.js';
import { COMPENSATION_RETRY, LONG_STEP_RETRY, STEP_RETRY } from '../core/failures.js';
import { nodeTaskQueue } from '../core/naming.js';
import { waitingForNode } from './node-wait.js';

export interface NodeProxyOptions {
  /** How fast a crashed node worker is noticed in long steps (their heartbeat timeout). */
  heartbeatTimeout?: Duration;
  /** At most this many attempts per step (default: the retry policies of core/failures.ts). */
  attempts?: number;
  /** How long an attempt waits for the node's worker to pick it up (default 10 minutes). */
  scheduleToStartTimeout?: Duration;
}

export type NodeCall = (summary: string) => NodeActivities;

export function nodeProxies(node: string, o: NodeProxyOptions = {}): { quick: NodeCall; long: NodeCall; compensation: NodeCall } {
  const limit = (policy: typeof STEP_RETRY) => (o.attempts ? { ...policy, maximumAttempts: o.attempts } : policy);
  const heartbeatTimeout = o.heartbeatTimeout ?? '1 minute';
  const common = {
    taskQueue: nodeTaskQueue(node),
    // a node worker that is down (or restarting after a crash) gets this long per attempt
    scheduleToStartTimeout: o.scheduleToStartTimeout ?? '10 minutes',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  } as const;
  const kind =
    (options: ActivityOptions): NodeCall =>
    (summary) =>
      proxyActivities<NodeActivities>({ ...options, summary });
  // quick and long steps say when they wait for their node's worker (node-wait.ts)
  const waiting =
    (options: ActivityOptions): NodeCall =>
    (summary) =>
      waitingForNode(node, (ms) => proxyActivities<NodeActivities>({ ...options, scheduleToStartTimeout: ms, summary }), options.scheduleToStartTimeout!);
  return {
    quick: waiting({ ...common, startToCloseTimeout: '10 minutes', retry: limit(STEP_RETRY) }),
    long: waiting({ ...common, startToCloseTimeout: '24 hours', heartbeatTimeout, retry: limit(LONG_STEP_RETRY) }),
    // putting a VM back on its own images never gives up, and waits for its node as long as it takes
    compensation: kind({ ...common, scheduleToStartTimeout: undefined, startToCloseTimeout: '2 hours', heartbeatTimeout, retry: COMPENSATION_RETRY }),
  };
}
