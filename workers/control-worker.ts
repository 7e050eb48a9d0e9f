/**
 * The control worker: runs every workflow, and the activities that read and write LDAP, on the
 * shared control task queue. Any number may run; Temporal spreads the work.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createControlActivities, type ControlDeps } from '../activities/control/index.js';
import { CONTROL_TASK_QUEUE } from '../core/naming.js';
import { patchActivation } from '../core/workflow-patches.js';
import type { WorkerObservation } from './observability.js';
import { workflowSource } from './workflow-bundle.js';

export interface ControlWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: ControlDeps;
  taskQueue?: string;
  /** Interceptors and the outcome sink for logs and metrics (observability.ts). */
  observation?: WorkerObservation;
  /** Workflow patches left untaken in runs that reach them here ([Temporal] DORMANT_PATCHES, docs/upgrades.md). */
  dormantPatches?: readonly string[];
}

export async function createControlWorker(o: ControlWorkerOptions): Promise<Worker> {
  const decide = patchActivation(o.dormantPatches ?? []);
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue ?? CONTROL_TASK_QUEUE,
    ...workflowSource(),
    activities: createControlActivities(o.deps),
    shutdownGraceTime: '5 seconds',
    identity: `control-worker/${process.pid}`,
    ...(decide ? { patchActivationCallback: decide } : {}),
    ...o.observation,
  });
}
