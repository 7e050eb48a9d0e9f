/**
 * The Temporal SDK's own metrics (its Core's Prometheus exporter: pollers, task slots, schedule-to-
 * start and execution latencies, failures, requests to the server), served on the product's
 * endpoint beside the product's own (docs/observability.md, "One endpoint"):
 *
 * - the Runtime (runtime.ts) has the SDK export them on a free port of the loopback interface,
 *   chosen when the Runtime is installed, once per process;
 * - each scrape of the product's /metrics reads the SDK's endpoint (2 s at most) and appends its
 *   families that carry the SDK's prefix `temporal_`, so no family can appear twice;
 * - `kvm_backup_sdk_metrics_up` says whether the SDK's part made it into this scrape (1) or not (0).
 *
 * Names follow Prometheus conventions: durations in seconds with the unit in the name, counters
 * ending `_total` (e.g. `temporal_activity_schedule_to_start_latency_seconds_bucket`,
 * `temporal_activity_execution_failed_total`): the SDK's reference names plus those suffixes.
 */
import { createServer } from 'node:net';
import type { MetricsExporterConfig } from '@temporalio/worker';

/** The prefix of every SDK metric (the SDK's default). */
export const SDK_METRIC_PREFIX = 'temporal_';

const SCRAPE_TIMEOUT_MS = 2_000;

/** The Runtime's metrics option: the SDK's Prometheus exporter on 127.0.0.1:`port`. */
export function sdkMetricsExporter(port: number): MetricsExporterConfig {
  return {
    metricPrefix: SDK_METRIC_PREFIX,
    prometheus: { bindAddress: `127.0.0.1:${port}`, useSecondsForDurations: true, unitSuffix: true, countersTotalSuffix: true },
  };
}

/**
 * A port of 127.0.0.1 nobody listens on now (the system's choice for port 0). The SDK's exporter
 * cannot report the port it got for 0, so the port is chosen here and handed to it; another
 * process taking it in between makes the Runtime's installation fail, and the worker with it.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no free loopback port'))));
    });
  });
}

/** The metric family a line of the exposition belongs to (the name of a sample, or of a HELP/TYPE line). */
function nameOfLine(line: string): string | undefined {
  if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) return line.split(' ')[2];
  if (line === '' || line.startsWith('#')) return undefined;
  return /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
}

/** The lines of an SDK exposition whose metric carries the SDK's prefix (e.g. no `target_info`), ending with a newline. */
export function sdkFamilies(text: string): string {
  const kept = text.split('\n').filter((line) => nameOfLine(line)?.startsWith(SDK_METRIC_PREFIX));
  return kept.length ? `${kept.join('\n')}\n` : '';
}

/** The SDK's exposition from its loopback endpoint (only its `temporal_` families), or undefined if it did not answer in time. */
export async function scrapeSdk(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (!res.ok) return undefined;
    return sdkFamilies(await res.text());
  } catch {
    return undefined;
  }
}
