/**
 * Starts the workers of one process from the global configuration: the node worker for this
 * hypervisor ([Global] ENVIRONMENT), the control worker, or both.
 */
import type { NativeConnection, Worker } from '@temporalio/worker';
import { Directory } from '../activities/control/directory.js';
import { nodeDeps, type NodeDeps } from '../activities/node/index.js';
import type { GlobalConfig } from '../core/global-config.js';
import { createControlWorker } from './control-worker.js';
import { createNodeWorker } from './node-worker.js';
import { installRuntime } from './runtime.js';
import { connectClient, connectWorker, ensureSearchAttributes } from './temporal.js';

export interface RunningWorkers {
  workers: Worker[];
  /** Resolves when every worker has stopped (after `shutdown()` or a fatal error). */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startWorkers(
  config: GlobalConfig,
  which: { node: boolean; control: boolean },
  options: {
    libvirtUri?: string;
    controlQueue?: string;
    /** Tests wrap the real node dependencies to inject faults into one call. */
    wrapNodeDeps?: (deps: NodeDeps) => NodeDeps;
  } = {},
): Promise<RunningWorkers> {
  installRuntime();
  const target = config.temporal;
  const client = await connectClient(target);
  await ensureSearchAttributes(client, target.namespace);
  await client.connection.close();
  const connection: NativeConnection = await connectWorker(target);
  const workers: Worker[] = [];
  if (which.node) {
    workers.push(
      await createNodeWorker({
        connection,
        namespace: target.namespace,
        deps: (options.wrapNodeDeps ?? ((d) => d))(nodeDeps({
          environment: config.environment,
          ...(options.libvirtUri ? { libvirtUri: options.libvirtUri } : {}),
          virtualizationRoot: config.backup.virtualizationRoot,
          defaultMethod: config.backup.snapshotMethod,
          copyRateMiB: config.backup.copyBandwidthMiB,
          liveMaxDowntimeMs: config.backup.liveMaxDowntimeMs,
        })),
      }),
    );
  }
  if (which.control) {
    const db = config.database;
    workers.push(
      await createControlWorker({
        connection,
        namespace: target.namespace,
        taskQueue: options.controlQueue ?? config.temporal.controlTaskQueue,
        deps: {
          directory: new Directory({ url: db.url, bindDn: db.bindDn, password: db.password }),
          serviceSubtree: db.serviceSubtree,
          cloudWideConfigurationDn: db.cloudWideConfigurationDn,
        },
      }),
    );
  }
  const done = Promise.all(workers.map((w) => w.run())).then(() => connection.close());
  return {
    workers,
    done,
    shutdown: async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}
