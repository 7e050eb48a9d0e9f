/**
 * Counters and histograms with labels, rendered in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). A few dozen lines instead of a
 * dependency: the workers expose a handful of series and need nothing else from a client library.
 */

export type Labels = Record<string, string | number>;

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatNumber(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return Number.isNaN(n) ? 'NaN' : String(n);
}

function renderLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const pairs = names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`);
  if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return pairs.length ? `{${pairs.join(',')}}` : '';
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

abstract class Metric<S> {
  protected readonly series = new Map<string, { values: string[]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`metric name ${name} is not valid`);
    for (const l of labelNames) if (!LABEL.test(l) || l.startsWith('__') || l === 'le') throw new Error(`label ${l} of ${name} is not valid`);
  }

  protected abstract fresh(): S;
  abstract readonly type: 'counter' | 'histogram';
  protected abstract renderSeries(labels: string[], state: S): string[];

  /** The series for these labels; every label name must be given, no other. */
  protected at(labels: Labels): S {
    const given = Object.keys(labels);
    if (given.length !== this.labelNames.length || given.some((k) => !this.labelNames.includes(k))) {
      throw new Error(`${this.name} takes labels ${this.labelNames.join(', ')}, got ${given.join(', ')}`);
    }
    const values = this.labelNames.map((n) => String(labels[n]));
    const key = JSON.stringify(values);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { values, state: this.fresh() }));
    return s.state;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const { values, state } of this.series.values()) lines.push(...this.renderSeries(values, state));
    return lines.join('\n');
  }
}

export class Counter extends Metric<{ value: number }> {
  readonly type = 'counter';

  protected fresh() {
    return { value: 0 };
  }

  /** Adds `by` (≥ 0; a counter never goes down). `inc(labels, 0)` makes the series visible at 0. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0) || !Number.isFinite(by)) throw new Error(`${this.name} cannot grow by ${by}`);
    this.at(labels).value += by;
  }

  get(labels: Labels = {}): number {
    return this.at(labels).value;
  }

  protected renderSeries(values: string[], state: { value: number }): string[] {
    return [`${this.name}${renderLabels(this.labelNames, values)} ${formatNumber(state.value)}`];
  }
}

export class Histogram extends Metric<{ buckets: number[]; sum: number; count: number }> {
  readonly type = 'histogram';
  readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]) {
    super(name, help, labelNames);
    if (bounds.length === 0 || bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!)) throw new Error(`${name}: bucket bounds must increase`);
    this.bounds = bounds;
  }

  protected fresh() {
    return { buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
  }

  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    const s = this.at(labels);
    this.bounds.forEach((b, i) => {
      if (value <= b) s.buckets[i]! += 1;
    });
    s.sum += value;
    s.count += 1;
  }

  countOf(labels: Labels): number {
    return this.at(labels).count;
  }

  protected renderSeries(values: string[], s: { buckets: number[]; sum: number; count: number }): string[] {
    const lines = this.bounds.map(
      (b, i) => `${this.name}_bucket${renderLabels(this.labelNames, values, ['le', formatNumber(b)])} ${s.buckets[i]}`,
    );
    lines.push(`${this.name}_bucket${renderLabels(this.labelNames, values, ['le', '+Inf'])} ${s.count}`);
    lines.push(`${this.name}_sum${renderLabels(this.labelNames, values)} ${formatNumber(s.sum)}`);
    lines.push(`${this.name}_count${renderLabels(this.labelNames, values)} ${s.count}`);
    return lines;
  }
}

export class Registry {
  readonly #metrics: Array<Counter | Histogram> = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, bounds));
  }

  private add<M extends Counter | Histogram>(m: M): M {
    if (this.#metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.#metrics.push(m);
    return m;
  }

  /** The whole exposition, one block per metric, ending with a newline. */
  render(): string {
    return `${this.#metrics.map((m) => m.render()).join('\n')}\n`;
  }
}
