/** Asks one node worker about its hypervisor, through that node's task queue. */
import { proxyActivities } from '@temporalio/workflow';
import type { NodeActivities } from '../activities/node/index.js';
import type { NodeProbe } from '../activities/node/probe.js';
import { nodeTaskQueue } from '../core/naming.js';
import { STEP_RETRY } from '../core/failures.js';

export async function probeNodeWorkflow(node: string): Promise<NodeProbe> {
  const { probeNode } = proxyActivities<NodeActivities>({
    taskQueue: nodeTaskQueue(node),
    startToCloseTimeout: '1 minute',
    // a node without a worker must not leave the probe waiting forever
    scheduleToStartTimeout: '30 seconds',
    retry: STEP_RETRY,
  });
  return probeNode();
}
