/** Asks one node worker about its hypervisor, through that node's task queue. */
import type { NodeProbe } from '../activities/node/probe.js';
import { nodeProxies } from './node-proxies.js';

export async function probeNodeWorkflow(node: string): Promise<NodeProbe> {
  // a node without a worker must not leave the probe waiting long
  return nodeProxies(node, { scheduleToStartTimeout: '30 seconds', attempts: 5 }).quick(`probe node ${node}`).probeNode();
}
