/**
 * The node worker: one per hypervisor, polling `kvm-backup.node.<ENVIRONMENT>` with the activities
 * that touch libvirt and local files. Few concurrent activities: they copy gigabytes.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createNodeActivities, type NodeDeps } from '../activities/node/index.js';
import { copyFile } from '../adapters/host/copy.js';
import { Files } from '../adapters/host/files.js';
import { Images } from '../adapters/host/images.js';
import { Virsh } from '../adapters/host/virsh.js';
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

/**
 * Activities one node worker runs at once for `maxConcurrentBackups` ([Backup]
 * MAX_CONCURRENT_BACKUPS, 0 = no limit): one per backup that holds a slot (each runs one step at a
 * time), plus two for a restore or a compensation beside them; never fewer than 4.
 */
export function nodeActivitySlots(maxConcurrentBackups: number): number {
  return Math.max(4, maxConcurrentBackups + 2);
}

export async function createNodeWorker(o: NodeWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: nodeTaskQueue(o.deps.environment),
    activities: createNodeActivities(o.deps),
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities ?? nodeActivitySlots(0),
    // long copies resume from their heartbeats, so a short grace period loses nothing
    shutdownGraceTime: '5 seconds',
    identity: `node-worker@${o.deps.environment}/${process.pid}`,
    ...o.observation,
  });
}

/** The real dependencies of a node worker, from its configuration: the host adapters on this machine. */
export function nodeDeps(o: {
  environment: string;
  libvirtUri?: string;
  virtualizationRoot: string;
  defaultMethod: NodeDeps['defaultMethod'];
  copyRateMiB: number;
  liveMaxDowntimeMs: number;
}): NodeDeps {
  const libvirtUri = o.libvirtUri ?? 'qemu:///system';
  return {
    environment: o.environment,
    virsh: new Virsh(libvirtUri),
    images: new Images(),
    files: new Files(),
    copy: copyFile,
    libvirtUri,
    virtualizationRoot: o.virtualizationRoot,
    defaultMethod: o.defaultMethod,
    copyRateMiB: o.copyRateMiB,
    liveMaxDowntimeMs: o.liveMaxDowntimeMs,
  };
}
