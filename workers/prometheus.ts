/**
 * Counters, gauges and histograms for the workers' Prometheus endpoint, kept and rendered by
 * prom-client (the text exposition format 0.0.4, https://prometheus.io/docs/instrumenting/exposition_formats/).
 * What this module adds is strictness prom-client leaves to its caller, because a wrong label set
 * is a silent bug in a dashboard months later:
 *
 * - every label of a metric must be given, no other (prom-client accepts a partial set and makes a
 *   second series without the missing label);
 * - names and label names are checked (`le` is the histograms' own label), buckets must increase;
 * - a counter never goes down or by a non-finite amount; a NaN or infinite observation is dropped.
 *
 * prom-client renders `le` before a histogram series' own labels; Prometheus does not care about
 * label order. Reading a value back (`get`, `countOf`) is asynchronous, as in prom-client.
 */
import * as client from 'prom-client';

export type Labels = Record<string, string | number>;

/** Content type of the 0.0.4 text format (prom-client's Registry.PROMETHEUS_CONTENT_TYPE). */
export const EXPOSITION_CONTENT_TYPE: string = client.Registry.PROMETHEUS_CONTENT_TYPE;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkNames(name: string, labelNames: readonly string[]): void {
  if (!NAME.test(name)) throw new Error(`metric name ${name} is not valid`);
  for (const l of labelNames) if (!LABEL.test(l) || l.startsWith('__') || l === 'le') throw new Error(`label ${l} of ${name} is not valid`);
}

/** The labels in the metric's own order, as strings; every label name must be given, no other. */
function labelSet(name: string, labelNames: readonly string[], labels: Labels): Record<string, string> {
  const given = Object.keys(labels);
  if (given.length !== labelNames.length || given.some((k) => !labelNames.includes(k))) {
    throw new Error(`${name} takes labels ${labelNames.join(', ')}, got ${given.join(', ')}`);
  }
  return Object.fromEntries(labelNames.map((n) => [n, String(labels[n])]));
}

function sameLabels(a: Partial<Record<string, string | number>>, b: Record<string, string>): boolean {
  return Object.keys(b).every((k) => String(a[k]) === b[k]);
}

export class Counter {
  constructor(
    readonly name: string,
    readonly labelNames: readonly string[],
    private readonly m: client.Counter<string>,
  ) {}

  /** Adds `by` (≥ 0; a counter never goes down). `inc(labels, 0)` makes the series visible at 0. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0) || !Number.isFinite(by)) throw new Error(`${this.name} cannot grow by ${by}`);
    this.m.inc(labelSet(this.name, this.labelNames, labels), by);
  }

  /** The series' value (0 if it has none yet). */
  async get(labels: Labels = {}): Promise<number> {
    const want = labelSet(this.name, this.labelNames, labels);
    return (await this.m.get()).values.find((v) => sameLabels(v.labels, want))?.value ?? 0;
  }
}

export class Gauge {
  constructor(
    readonly name: string,
    readonly labelNames: readonly string[],
    private readonly m: client.Gauge<string>,
  ) {}

  set(labels: Labels, value: number): void {
    this.m.set(labelSet(this.name, this.labelNames, labels), value);
  }

  /** Drops the series (a VM that left the directory). */
  remove(labels: Labels): void {
    this.m.remove(labelSet(this.name, this.labelNames, labels));
  }

  /** Drops every series. */
  reset(): void {
    this.m.reset();
  }

  async get(labels: Labels = {}): Promise<number | undefined> {
    const want = labelSet(this.name, this.labelNames, labels);
    return (await this.m.get()).values.find((v) => sameLabels(v.labels, want))?.value;
  }
}

export class Histogram {
  constructor(
    readonly name: string,
    readonly labelNames: readonly string[],
    readonly bounds: readonly number[],
    private readonly m: client.Histogram<string>,
  ) {}

  /** One observation; a NaN or infinite value is not one (dropped). */
  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    this.m.observe(labelSet(this.name, this.labelNames, labels), value);
  }

  /** How many observations the series has (0 if none). */
  async countOf(labels: Labels): Promise<number> {
    const want = labelSet(this.name, this.labelNames, labels);
    const count = (await this.m.get()).values.find((v) => v.metricName === `${this.name}_count` && sameLabels(v.labels, want));
    return count?.value ?? 0;
  }
}

/**
 * One process's metrics: a prom-client Registry of its own (never prom-client's global one, so two
 * WorkerMetrics in one test process do not collide).
 */
export class Registry {
  readonly prom = new client.Registry();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    this.check(name, labelNames);
    return new Counter(name, labelNames, new client.Counter({ name, help, labelNames: [...labelNames], registers: [this.prom] }));
  }

  /** `collect` runs before each scrape (prom-client's collect), e.g. to compute an age from a stored time. */
  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: () => void): Gauge {
    this.check(name, labelNames);
    const g = new client.Gauge({ name, help, labelNames: [...labelNames], registers: [this.prom], ...(collect ? { collect } : {}) });
    return new Gauge(name, labelNames, g);
  }

  histogram(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]): Histogram {
    this.check(name, labelNames);
    if (bounds.length === 0 || bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!)) throw new Error(`${name}: bucket bounds must increase`);
    const h = new client.Histogram({ name, help, labelNames: [...labelNames], buckets: [...bounds], registers: [this.prom] });
    return new Histogram(name, labelNames, bounds, h);
  }

  /** prom-client's process and Node.js metrics (process_resident_memory_bytes, nodejs_eventloop_lag_seconds, …). */
  collectProcessMetrics(): void {
    client.collectDefaultMetrics({ register: this.prom });
  }

  /** The names of the metric families registered (histograms without their _bucket/_sum/_count). */
  names(): string[] {
    return this.prom.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name);
  }

  private check(name: string, labelNames: readonly string[]): void {
    checkNames(name, labelNames);
    if (this.prom.getSingleMetric(name)) throw new Error(`metric ${name} registered twice`);
  }

  /** The whole exposition, one block per metric, ending with a newline. */
  render(): Promise<string> {
    return this.prom.metrics();
  }
}
