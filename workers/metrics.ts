/**
 * What one worker process counts for Prometheus. The numbers come from two places, neither of which
 * changes a workflow:
 *
 * - the activity interceptor (observability.ts) on the node and control workers: every attempt's
 *   duration and outcome, its queue lag, and facts in its result (bytes copied, guest pause);
 * - the workflow interceptor's `outcomes` sink (workflows/interceptors.ts) on the control worker:
 *   each backup, restore and delete that ended, with its exit code.
 *
 * So a node-only process shows phases, bytes, pauses and lag; the process running the control
 * worker shows the operation counts. Labels stay few and bounded (no VM names: a site has thousands),
 * with one exception: the control worker's two gauges of each VM's last successful backup
 * (`vm`, `node`, `pool`; two series per VM), read from the directory (backup-freshness.ts).
 */
import { performance } from 'node:perf_hooks';
import { codeOf } from '../core/failures.js';
import { operationOfWorkflow, type OperationOutcome, type Outcome } from '../core/operation-outcome.js';
import { ageSeconds, type VmFreshness } from '../core/backup-freshness.js';
import { Registry, type Gauge } from './prometheus.js';
import { scrapeSdk } from './sdk-metrics.js';

const OPERATION_SECONDS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];
const PHASE_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];
const PAUSE_SECONDS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LAG_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

export interface ActivityEnd {
  taskQueue: string;
  workflowType?: string;
  activityType: string;
  outcome: Outcome;
  durationMs: number;
  /** The activity's result (success) or error (failure, cancelled). */
  result?: unknown;
  error?: unknown;
}

/** The operation label of an activity: its workflow's operation, else the workflow type itself (a small fixed set). */
export function operationLabel(workflowType: string | undefined): string {
  return operationOfWorkflow(workflowType) ?? workflowType ?? 'none';
}

/** Bytes and guest pause in an activity result: CopyStats and friends `{ bytes }`, SnapshotResult `{ method, pauseMs }`. */
export function resultFacts(result: unknown): { bytes?: number; pauseMs?: number; method?: string } {
  if (result === null || typeof result !== 'object') return {};
  const r = result as { bytes?: unknown; pauseMs?: unknown; method?: unknown };
  const facts: { bytes?: number; pauseMs?: number; method?: string } = {};
  if (typeof r.bytes === 'number' && r.bytes >= 0) facts.bytes = r.bytes;
  // a shut-off VM is not paused: its 0 would flatter the histogram
  if (typeof r.pauseMs === 'number' && r.pauseMs >= 0 && typeof r.method === 'string' && r.method !== 'offline') {
    facts.pauseMs = r.pauseMs;
    facts.method = r.method;
  }
  return facts;
}

export class WorkerMetrics {
  readonly registry = new Registry();

  readonly operations = this.registry.counter(
    'kvm_backup_operations_total',
    'Backups, restores, deletes and verifications that ended, by outcome and exit code (0 = success); counted by the worker that ran the workflow.',
    ['operation', 'outcome', 'code'],
  );
  readonly operationDuration = this.registry.histogram(
    'kvm_backup_operation_duration_seconds',
    'Time from the start of a backup, restore or delete workflow to its end, waiting for the VM lock included.',
    ['operation', 'outcome'],
    OPERATION_SECONDS,
  );
  readonly phaseDuration = this.registry.histogram(
    'kvm_backup_phase_duration_seconds',
    'Duration of each attempt of a node step (the activity name is the phase), by outcome.',
    ['operation', 'phase', 'outcome'],
    PHASE_SECONDS,
  );
  readonly bytesCopied = this.registry.counter(
    'kvm_backup_bytes_copied_total',
    'Bytes of the files completed copy steps delivered (to retain, to the backup root, back from a backup).',
    ['operation', 'phase'],
  );
  readonly guestPause = this.registry.histogram(
    'kvm_backup_guest_pause_seconds',
    'Guest pause of a snapshot of a running VM (QEMU STOP to RESUME), by snapshot method.',
    ['method'],
    PAUSE_SECONDS,
  );
  readonly scheduleToStart = this.registry.histogram(
    'kvm_backup_activity_schedule_to_start_seconds',
    'Queue lag: from the scheduling of an activity attempt (server clock) to its start on this worker (local clock), per task queue.',
    ['task_queue'],
    LAG_SECONDS,
  );
  readonly activityFailures = this.registry.counter(
    'kvm_backup_activity_failures_total',
    'Failed activity attempts (retried or final), by activity and exit code.',
    ['task_queue', 'activity', 'code'],
  );
  /** Node steps running now: start (monotonic ms) by attempt; every (operation, phase) seen keeps its series. */
  readonly #running = new Map<symbol, { operation: string; phase: string; startedMs: number }>();
  readonly #phasesSeen = new Map<string, { operation: string; phase: string }>();
  readonly phaseOldestRunning = this.registry.gauge(
    'kvm_backup_phase_oldest_running_seconds',
    'Age of the oldest attempt of a node step still running on this worker (e.g. phase="ensureOnOwnImages": a compensation), 0 when none runs.',
    ['operation', 'phase'],
    () => {
      const now = performance.now();
      const oldest = new Map<string, number>();
      for (const r of this.#running.values()) {
        const key = `${r.operation}\u0000${r.phase}`;
        oldest.set(key, Math.max(oldest.get(key) ?? 0, (now - r.startedMs) / 1000));
      }
      for (const [key, labels] of this.#phasesSeen) this.phaseOldestRunning.set(labels, oldest.get(key) ?? 0);
    },
  );
  /** Per VM: its labels and last complete backup, kept current by backup-freshness.ts; the two gauges below are made from it at each scrape. */
  readonly freshness = new Map<string, VmFreshness>();
  readonly lastSuccess = this.registry.gauge(
    'kvm_backup_last_success_timestamp_seconds',
    'Per VM: the time (Unix seconds) of its newest complete backup in the directory (the time its leaf names); 0 if it has none. Served by control workers.',
    ['vm', 'node', 'pool'],
    () => this.fillFreshness(this.lastSuccess, (f) => (f.lastSuccess ? f.lastSuccess.getTime() / 1000 : 0)),
  );
  readonly lastSuccessAge = this.registry.gauge(
    'kvm_backup_last_success_age_seconds',
    'Per VM: seconds since its newest complete backup, or since the VM entry was created if it has none. Served by control workers.',
    ['vm', 'node', 'pool'],
    () => {
      const now = new Date();
      this.fillFreshness(this.lastSuccessAge, (f) => ageSeconds(f, now));
    },
  );
  readonly sdkMetricsUp = this.registry.gauge(
    'kvm_backup_sdk_metrics_up',
    "1 if this scrape includes the Temporal SDK's own metrics (temporal_*), 0 if the SDK's loopback endpoint did not answer.",
  );

  /** Sets one series per VM of `freshness` (none where `value` gives undefined), dropping VMs that left. */
  private fillFreshness(gauge: Gauge, value: (f: VmFreshness) => number | undefined): void {
    gauge.reset();
    for (const f of this.freshness.values()) {
      const v = value(f);
      if (v !== undefined) gauge.set({ vm: f.vm, node: f.node, pool: f.pool }, v);
    }
  }

  /** Series that should read 0 rather than be absent before the first operation (rate() needs a start). */
  initOperations(): void {
    for (const operation of ['backup', 'restore', 'delete', 'verify']) this.operations.inc({ operation, outcome: 'success', code: 0 }, 0);
  }

  operationEnded(o: OperationOutcome): void {
    this.operations.inc({ operation: o.operation, outcome: o.outcome, code: o.code });
    this.operationDuration.observe({ operation: o.operation, outcome: o.outcome }, Math.max(0, o.durationMs) / 1000);
  }

  /** A node step's attempt starts running (for phaseOldestRunning); returns what to call when it ends. */
  phaseStarted(workflowType: string | undefined, phase: string): () => void {
    const operation = operationLabel(workflowType);
    this.#phasesSeen.set(`${operation}\u0000${phase}`, { operation, phase });
    const token = Symbol(phase);
    this.#running.set(token, { operation, phase, startedMs: performance.now() });
    return () => void this.#running.delete(token);
  }

  activityStarted(taskQueue: string, lagMs: number): void {
    // the two clocks differ a little; a negative lag is skew, not news
    this.scheduleToStart.observe({ task_queue: taskQueue }, Math.max(0, lagMs) / 1000);
  }

  activityEnded(a: ActivityEnd, o: { phases: boolean }): void {
    const operation = operationLabel(a.workflowType);
    if (o.phases) this.phaseDuration.observe({ operation, phase: a.activityType, outcome: a.outcome }, a.durationMs / 1000);
    if (a.outcome === 'failure') this.activityFailures.inc({ task_queue: a.taskQueue, activity: a.activityType, code: codeOf(a.error) });
    if (a.outcome !== 'success') return;
    const facts = resultFacts(a.result);
    if (facts.bytes !== undefined && facts.bytes > 0) this.bytesCopied.inc({ operation, phase: a.activityType }, facts.bytes);
    if (facts.pauseMs !== undefined) this.guestPause.observe({ method: facts.method! }, facts.pauseMs / 1000);
  }

  /** The exposition of this registry (prom-client's, asynchronous). */
  render(): Promise<string> {
    return this.registry.render();
  }

  /**
   * What the endpoint serves: this registry, then the SDK's `temporal_` families read from its
   * loopback endpoint at `sdkMetricsUrl` (sdk-metrics.ts), if this process exports them.
   */
  async exposition(sdkMetricsUrl?: string): Promise<string> {
    if (!sdkMetricsUrl) return this.render();
    const sdk = await scrapeSdk(sdkMetricsUrl);
    this.sdkMetricsUp.set({}, sdk === undefined ? 0 : 1);
    return `${await this.render()}\n${sdk ?? ''}`;
  }
}
