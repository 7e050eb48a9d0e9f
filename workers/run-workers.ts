/**
 * Starts the workers of one process from the global configuration: the node worker for this
 * hypervisor ([Global] ENVIRONMENT), the control worker, or both.
 */
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { ControlDeps } from '../activities/control/index.js';
import type { NodeDeps } from '../activities/node/index.js';
import { StoneyDirectory } from '../adapters/ldap/stoney-directory.js';
import { notificationChannels } from '../adapters/notify/index.js';
import { connectClient, connectWorker, ensureSearchAttributes, missingAttributesMessage } from '../adapters/temporal/connection.js';
import type { GlobalConfig } from '../core/global-config.js';
import { describeTemporal } from '../core/temporal-settings.js';
import { KNOWN_PATCH_IDS } from '../core/workflow-patches.js';
import { BackupFreshness } from './backup-freshness.js';
import { createControlWorker } from './control-worker.js';
import { productLog } from './logging.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { WorkerMetrics } from './metrics.js';
import { createNodeWorker, nodeActivitySlots, nodeDeps } from './node-worker.js';
import { controlWorkerObservation, nodeWorkerObservation } from './observability.js';
import { installRuntime } from './runtime.js';

export interface RunningWorkers {
  workers: Worker[];
  /** Resolves when every worker has stopped (after `shutdown()` or a fatal error). */
  done: Promise<void>;
  shutdown(): Promise<void>;
  /** This process's counters, and its Prometheus endpoint if one was asked for. */
  metrics: WorkerMetrics;
  metricsServer?: MetricsServer;
  /** The control worker's per-VM last successful backup, read from the directory (backup-freshness.ts). */
  freshness?: BackupFreshness;
}

export async function startWorkers(
  config: GlobalConfig,
  which: { node: boolean; control: boolean },
  options: {
    libvirtUri?: string;
    controlQueue?: string;
    /** Tests wrap the real node dependencies to inject faults into one call. */
    wrapNodeDeps?: (deps: NodeDeps) => NodeDeps;
    /** Tests wrap the real control dependencies (the directory, the notification channels). */
    wrapControlDeps?: (deps: ControlDeps) => ControlDeps;
    /** Prometheus endpoint port; overrides [Metrics] PORT (0 there = none; 0 here = any free port, for tests). */
    metricsPort?: number;
  } = {},
): Promise<RunningWorkers> {
  const port = options.metricsPort ?? (config.metrics.port || undefined);
  // the SDK's own metrics only where an endpoint will serve them (sdk-metrics.ts)
  const runtime = await installRuntime({ sdkMetrics: port !== undefined });
  const metrics = new WorkerMetrics();
  if (which.control) metrics.initOperations();
  if (port !== undefined) metrics.registry.collectProcessMetrics();
  const log = productLog({ component: 'worker', node: config.environment });
  const target = config.temporal;
  const client = await connectClient(target);
  // a namespace that does not let us register them (Temporal Cloud) does not stop the worker: the
  // operator is told which to register (docs/configuration.md, "Search attributes")
  const attributes = await ensureSearchAttributes(client, target.namespace).finally(() => client.connection.close());
  if (attributes.added.length) log.info('search attributes registered', { namespace: target.namespace, attributes: attributes.added });
  if (attributes.missing.length) log.warn(missingAttributesMessage(attributes), { namespace: target.namespace, reason: attributes.refusal });
  const connection: NativeConnection = await connectWorker(target);
  log.info('connected to Temporal', { temporal: describeTemporal(target) });
  const workers: Worker[] = [];
  if (which.node) {
    workers.push(
      await createNodeWorker({
        connection,
        namespace: target.namespace,
        observation: nodeWorkerObservation(metrics, config.environment),
        maxConcurrentActivities: nodeActivitySlots(config.backup.maxConcurrentBackups),
        deps: (options.wrapNodeDeps ?? ((d) => d))(nodeDeps({
          environment: config.environment,
          ...(options.libvirtUri ? { libvirtUri: options.libvirtUri } : {}),
          virtualizationRoot: config.backup.virtualizationRoot,
          defaultMethod: config.backup.snapshotMethod,
          copyRateMiB: config.backup.copyBandwidthMiB,
          liveMaxDowntimeMs: config.backup.liveMaxDowntimeMs,
          restic: config.backup.restic,
          transport: { api: config.service.transportApi, gateway: config.gateway },
          exportCommand: config.backup.exportCommand,
        })),
      }),
    );
  }
  let freshness: BackupFreshness | undefined;
  if (which.control) {
    const directory = StoneyDirectory.fromConfig(config.database);
    const dormant = config.temporal.dormantPatches;
    // a rolling upgrade is under way (docs/upgrades.md); an ID this build does not know is a leftover to remove
    if (dormant.length) log.info('workflow patches left dormant', { patches: dormant });
    const unknown = dormant.filter((p) => !KNOWN_PATCH_IDS.has(p));
    if (unknown.length) log.warn('[Temporal] DORMANT_PATCHES names patches this build does not have', { patches: unknown });
    freshness = new BackupFreshness(directory, metrics.freshness);
    const f = freshness;
    workers.push(
      await createControlWorker({
        connection,
        namespace: target.namespace,
        taskQueue: options.controlQueue ?? config.temporal.controlTaskQueue,
        dormantPatches: dormant,
        observation: controlWorkerObservation(metrics, (o) => f.outcome(o)),
        deps: (options.wrapControlDeps ?? ((d) => d))({
          directory,
          maxConcurrentBackups: config.backup.maxConcurrentBackups,
          notifier: { channels: notificationChannels(config.notify, config.temporal.uiUrl ? { uiUrl: config.temporal.uiUrl } : {}) },
        }),
      }),
    );
    freshness.start();
  }
  const metricsServer =
    port === undefined ? undefined : await startMetricsServer(() => metrics.exposition(runtime.sdkMetricsUrl), { port, address: config.metrics.address });
  if (metricsServer) log.info('metrics endpoint listening', { url: metricsServer.url });
  const done = Promise.all(workers.map((w) => w.run()))
    .then(() => connection.close())
    .finally(() => {
      freshness?.stop();
      return metricsServer?.close();
    });
  return {
    workers,
    metrics,
    ...(metricsServer ? { metricsServer } : {}),
    ...(freshness ? { freshness } : {}),
    done,
    shutdown: async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}
