/**
 * The node worker: one per hypervisor, polling `kvm-backup.node.<ENVIRONMENT>` with the activities
 * that touch libvirt and local files. Few concurrent activities: they copy gigabytes.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createNodeActivities, type NodeDeps } from '../activities/node/index.js';
import { nodeTaskQueue } from '../core/naming.js';
import type { WorkerObservation } from './observability.js';

export interface NodeWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: NodeDeps;
  maxConcurrentActivities?: number;
  /** Activity interceptors for logs and metrics (observability.ts). */
  observation?: WorkerObservation;
}

export async function createNodeWorker(o: NodeWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: nodeTaskQueue(o.deps.environment),
    activities: createNodeActivities(o.deps),
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities ?? 4,
    // long copies resume from their heartbeats, so a short grace period loses nothing
    shutdownGraceTime: '5 seconds',
    identity: `node-worker@${o.deps.environment}/${process.pid}`,
    ...o.observation,
  });
}
