/**
 * Simulated hypervisors for fleet tests and benchmarks: one real Temporal worker per node on the
 * node's real task queue (`kvm-backup.node.<node>`), with the backup activities replaced by ones that
 * sleep for the durations given per VM and return what the real ones return (the plan from the
 * real core/backup-plan.ts). Everything else is real: the Temporal server, the workflows, the
 * control worker, slapd. No libvirt domain is touched.
 *
 * A recorder counts, per node, the backups between the start of their preflight and the end of their
 * rotation (or compensation), and the snapshots running at once: what the per-node slots bound.
 */
import { Context } from '@temporalio/activity';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { NodeActivities } from '../../activities/node/index.js';
import { planBackup, type BackupContext, type BackupPlan, type PreparedBackup } from '../../core/backup-plan.js';
import type { SnapshotMethod } from '../../core/global-config.js';
import { nodeTaskQueue } from '../../core/naming.js';
import { nodeActivitySlots } from '../../workers/node-worker.js';

/** How long each step of one VM's backup takes on its node, in ms. */
export interface PhaseDurations {
  preflight: number;
  snapshot: number;
  copyToRetain: number;
  merge: number;
  export: number;
  rotate: number;
}

export function totalMs(d: PhaseDurations): number {
  return d.preflight + d.snapshot + d.copyToRetain + d.merge + d.export + d.rotate;
}

export interface BackupInterval {
  vm: string;
  node: string;
  start: number;
  end: number;
}

/** Per node: backups in flight now and at most, snapshots at most, and every backup's interval. */
export class FleetRecorder {
  private readonly active = new Map<string, Map<string, number>>();
  private readonly snapshotting = new Map<string, number>();
  readonly maxActive = new Map<string, number>();
  readonly maxSnapshots = new Map<string, number>();
  readonly intervals: BackupInterval[] = [];
  /** Every change of a node's active count: [ms since epoch, count]. */
  readonly timeline = new Map<string, Array<[number, number]>>();

  begin(node: string, vm: string): void {
    const a = this.active.get(node) ?? new Map<string, number>();
    this.active.set(node, a);
    if (a.has(vm)) return; // a retried preflight
    a.set(vm, Date.now());
    this.maxActive.set(node, Math.max(this.maxActive.get(node) ?? 0, a.size));
    this.mark(node, a.size);
  }

  end(node: string, vm: string): void {
    const a = this.active.get(node);
    const start = a?.get(vm);
    if (!a || start === undefined) return;
    a.delete(vm);
    this.intervals.push({ vm, node, start, end: Date.now() });
    this.mark(node, a.size);
  }

  snapshotStarted(node: string): void {
    const n = (this.snapshotting.get(node) ?? 0) + 1;
    this.snapshotting.set(node, n);
    this.maxSnapshots.set(node, Math.max(this.maxSnapshots.get(node) ?? 0, n));
  }

  snapshotEnded(node: string): void {
    this.snapshotting.set(node, (this.snapshotting.get(node) ?? 1) - 1);
  }

  activeNow(node: string): number {
    return this.active.get(node)?.size ?? 0;
  }

  /** Whether `vm`'s backup is in flight on `node` (a terminated backup never ends here: count by VM, not by size). */
  isActive(node: string, vm: string): boolean {
    return this.active.get(node)?.has(vm) ?? false;
  }

  private mark(node: string, count: number): void {
    const t = this.timeline.get(node) ?? [];
    this.timeline.set(node, t);
    t.push([Date.now(), count]);
  }
}

export interface SimulatedNodesOptions {
  connection: NativeConnection;
  namespace: string;
  nodes: string[];
  /** The durations of `vm`'s backup steps. */
  durations: (vm: string) => PhaseDurations;
  /** [Backup] MAX_CONCURRENT_BACKUPS the node workers size their activity slots for (workers/node-worker.ts). */
  maxConcurrentBackups: number;
  recorder?: FleetRecorder;
}

export interface SimulatedNodes {
  recorder: FleetRecorder;
  workers: Worker[];
  /** Resolves when every worker has stopped. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

/** Sleeps `ms` in the activity (cancellable), heartbeating every 10 s so long steps look alive. */
async function work(ms: number): Promise<void> {
  const ctx = Context.current();
  for (let left = ms; left > 0; left -= 10_000) {
    await ctx.sleep(Math.min(left, 10_000));
    ctx.heartbeat();
  }
}

function simulatedActivities(node: string, o: SimulatedNodesOptions, recorder: FleetRecorder): Partial<NodeActivities> {
  const d = (vm: string) => o.durations(vm);
  const copy = (ms: number) => ({ bytes: 0, files: 0, durationMs: ms, resumedBytes: 0 });
  return {
    async preflight(ctx: BackupContext, method?: SnapshotMethod): Promise<PreparedBackup> {
      recorder.begin(node, ctx.leaf.vm);
      await work(d(ctx.leaf.vm).preflight);
      const plan = planBackup(ctx, { virtualizationRoot: '/var/virtualization', method: method ?? 'live' });
      return { plan, active: true, runState: 'running', persistent: true, memoryKiB: 1_048_576, staging: 'ramdisk', untouched: [], firmware: {}, warnings: [] };
    },
    async takeSnapshot(p: PreparedBackup) {
      recorder.snapshotStarted(node);
      try {
        await work(d(p.plan.vm).snapshot);
      } finally {
        recorder.snapshotEnded(node);
      }
      return { method: p.plan.method, pauseMs: 20, durationMs: d(p.plan.vm).snapshot };
    },
    async copyToRetain(p: PreparedBackup) {
      await work(d(p.plan.vm).copyToRetain);
      return copy(d(p.plan.vm).copyToRetain);
    },
    async mergeBack(p: PreparedBackup) {
      await work(d(p.plan.vm).merge);
      return { durationMs: d(p.plan.vm).merge, committed: p.plan.disks.map((x) => x.target) };
    },
    async exportBackup(p: PreparedBackup) {
      await work(d(p.plan.vm).export);
      return copy(d(p.plan.vm).export);
    },
    async rotateIterations(plan: BackupPlan) {
      await work(d(plan.vm).rotate);
      recorder.end(node, plan.vm);
      return { kept: [plan.ou], deleted: [], unfinished: [] };
    },
    async purgeDeletedIterations() {
      return { purged: [] };
    },
    async ensureOnOwnImages(p: PreparedBackup) {
      recorder.end(node, p.plan.vm);
      return { actions: [] };
    },
    async deleteIteration(ctx: BackupContext) {
      return { deleted: true, backupDir: `/simulated/${ctx.leaf.vm}/${ctx.leaf.ou}` };
    },
  };
}

/** One simulated node worker per node, running until `shutdown()`. */
export async function startSimulatedNodes(o: SimulatedNodesOptions): Promise<SimulatedNodes> {
  const recorder = o.recorder ?? new FleetRecorder();
  const workers = await Promise.all(
    o.nodes.map((node) =>
      Worker.create({
        connection: o.connection,
        namespace: o.namespace,
        taskQueue: nodeTaskQueue(node),
        activities: simulatedActivities(node, o, recorder),
        maxConcurrentActivityTaskExecutions: nodeActivitySlots(o.maxConcurrentBackups),
        shutdownGraceTime: '2 seconds',
        identity: `simulated-node@${node}/${process.pid}`,
      }),
    ),
  );
  const done = Promise.all(workers.map((w) => w.run())).then(() => undefined);
  return {
    recorder,
    workers,
    done,
    shutdown: async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}
