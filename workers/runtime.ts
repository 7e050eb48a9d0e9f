/**
 * The Temporal SDK's Runtime of this process, installed once, before the first worker or native
 * connection (the SDK allows one per process):
 *
 * - logging goes through the product's log (logging.ts): workflow and activity lines follow the
 *   LOG_* switches; the SDK's own lines (worker state changes, webpack output) stay at warnings and
 *   errors unless KVM_BACKUP_SDK_LOG_LEVEL raises them, since its INFO lines drown the product's events;
 * - with `sdkMetrics`, the SDK exports its own metrics on a free loopback port (sdk-metrics.ts),
 *   which the product's endpoint merges into its scrape. Only the first installation of a process
 *   decides: a later call that asks for them without getting them is logged.
 */
import { Runtime } from '@temporalio/worker';
import { productLog, temporalLogger } from './logging.js';
import { freeLoopbackPort, sdkMetricsExporter } from './sdk-metrics.js';

export interface InstalledRuntime {
  /** The SDK's own Prometheus endpoint on 127.0.0.1, if this process's Runtime exports its metrics. */
  sdkMetricsUrl?: string;
}

let installing: Promise<InstalledRuntime> | undefined;

async function install(sdkMetrics: boolean): Promise<InstalledRuntime> {
  const port = sdkMetrics ? await freeLoopbackPort() : undefined;
  Runtime.install({
    logger: temporalLogger(),
    telemetryOptions: {
      logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
      ...(port !== undefined ? { metrics: sdkMetricsExporter(port) } : {}),
    },
  });
  return port !== undefined ? { sdkMetricsUrl: `http://127.0.0.1:${port}/metrics` } : {};
}

export async function installRuntime(o: { sdkMetrics?: boolean } = {}): Promise<InstalledRuntime> {
  const first = !installing;
  installing ??= install(o.sdkMetrics === true);
  const runtime = await installing;
  if (!first && o.sdkMetrics && !runtime.sdkMetricsUrl) {
    productLog({ component: 'worker' }).warn('the Temporal SDK metrics are not exported: this process installed its SDK Runtime without them');
  }
  return runtime;
}
