/**
 * A fleet's scheduled run against its ideal (issue 11): N VMs of one pool over M simulated nodes
 * ([Backup] MAX_CONCURRENT_BACKUPS = S), on the real Temporal server (SQLite file), the real slapd,
 * the real workflows, control worker (own process) and scheduler; only the node activities are
 * replaced by ones that sleep for each VM's durations (test/helpers/simulated-nodes.ts). The
 * scheduler reads the directory and creates the pool's Temporal Schedule; each run is fired with
 * the schedule's trigger.
 *
 * Per run: the makespan (the run workflow's start to its close) against the ideal, max over nodes
 * of (sum of the node's backup durations / S); the control worker's CPU time; the history events
 * of every workflow the run caused (run, batches, backups, VM locks, node slots, deletions), per
 * finished backup, and the longest history. Baseline in the same run: the ideal.
 *
 * Durations per VM (seeded, the same in every run), from this project's own measurements on its CI
 * machine (BENCHMARKS.md): data in the images 2-40 GiB (most VMs small), copied to retain at 986 MiB/s
 * (copier + sha256) and exported at 1469 MiB/s (copier), both times SPEED; live snapshot 0.45 s +
 * 0.6 s per GiB of RAM (1, 2, 4 or 8 GiB; 745 ms at 512 MiB, 1662 ms at 2 GiB measured); merge
 * 0.2-3 s (what the guest wrote meanwhile); preflight 0.3-1 s; rotation 0.1-0.3 s. Mean ≈ 29 s.
 *
 *   node dist/bench/fleet.js [--vms 200] [--nodes 4] [--slots 2] [--runs 3] [--speed 1] [--seed 11]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startScheduler } from '../client/scheduler/index.js';
import { consoleLog } from '../client/watcher/log.js';
import { poolBackupConfigDn } from '../core/naming.js';
import { DEMO_SERVICE_SUBTREE } from '../stack/directory.js';
import { totalMs, type PhaseDurations } from '../test/helpers/simulated-nodes.js';
import { FLEET_POOL, random, startFleetStack, type FleetStack } from './fleet-stack.js';
import { cpuMs, fmt, load, machine, median, table, timed } from './lib.js';

/** Run as a script (fleet-scale.ts imports its helpers, with its own options on the command line). */
const IS_MAIN = process.argv[1]?.endsWith('/fleet.js') ?? false;

const { values: args } = parseArgs({
  strict: IS_MAIN,
  options: {
    vms: { type: 'string', default: '200' },
    nodes: { type: 'string', default: '4' },
    slots: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    speed: { type: 'string', default: '1' },
    seed: { type: 'string', default: '11' },
    explain: { type: 'boolean', default: false },
  },
});
const VMS = Number(args.vms);
const NODES = Number(args.nodes);
const SLOTS = Number(args.slots);
const RUNS = Number(args.runs);
const SPEED = Number(args.speed);

export function durationModel(count: number, seed: number, speed: number): Map<string, PhaseDurations> {
  const r = random(seed);
  const out = new Map<string, PhaseDurations>();
  for (let i = 0; i < count; i++) {
    const dataMiB = (2 + 38 * r() ** 2) * 1024;
    const ramGiB = [1, 2, 4, 8][Math.floor(r() * 4)]!;
    out.set(`vm-${String(i).padStart(5, '0')}`, {
      preflight: 300 + 700 * r(),
      snapshot: 450 + 600 * ramGiB,
      copyToRetain: (dataMiB / (986 * speed)) * 1000,
      merge: 200 + 2800 * r(),
      export: (dataMiB / (1469 * speed)) * 1000,
      rotate: 100 + 200 * r(),
    });
  }
  return out;
}

/**
 * Where the time between the ideal and the makespan goes, from the node's side (the recorder's
 * intervals: first preflight start to rotation end of each backup): time to the first backup, the
 * time each backup spends on the node beyond its sleeps (the control steps between its node steps),
 * the gap between a backup's end and the next start on that node, and the time after the last one.
 */
export function breakdown(stack: FleetStack, durations: Map<string, PhaseDurations>, since: number, start: number, close: number) {
  const mine = stack.sim!.recorder.intervals.filter((i) => i.start >= since);
  const overhead = mine.map((i) => i.end - i.start - totalMs(durations.get(i.vm)!));
  const gaps: number[] = [];
  for (const node of stack.nodes) {
    const list = mine.filter((i) => i.node === node).sort((a, b) => a.start - b.start);
    list.slice(SLOTS).forEach((i) => {
      const ended = list.filter((j) => j.end <= i.start).map((j) => j.end);
      if (ended.length) gaps.push(i.start - Math.max(...ended));
    });
  }
  const slowest = mine
    .map((i, k) => ({ vm: i.vm, node: i.node, overheadMs: overhead[k]!, startS: (i.start - start) / 1000 }))
    .sort((a, b) => b.overheadMs - a.overheadMs)
    .slice(0, 3);
  return {
    firstMs: Math.min(...mine.map((i) => i.start)) - start,
    overheadMs: median(overhead),
    overheadMaxMs: Math.max(...overhead),
    gapMs: gaps.length ? median(gaps) : 0,
    gapMaxMs: gaps.length ? Math.max(...gaps) : 0,
    tailMs: close - Math.max(...mine.map((i) => i.end)),
    slowest,
  };
}

/** The event timeline of one backup of this run (where its time went), for --explain. */
async function explain(stack: FleetStack, vm: string, since: Date): Promise<void> {
  for await (const w of stack.client!.workflow.list({ query: `WorkflowType = "backupWorkflow" AND KvmVm = "${vm}" AND StartTime >= "${since.toISOString()}"` })) {
    const history = await stack.client!.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
    const t0 = Number(history.events![0]!.eventTime!.seconds) * 1000 + Math.round((history.events![0]!.eventTime!.nanos ?? 0) / 1e6);
    console.log(`  ${w.workflowId}:`);
    for (const e of history.events ?? []) {
      const t = Number(e.eventTime!.seconds) * 1000 + Math.round((e.eventTime!.nanos ?? 0) / 1e6);
      const what = e.activityTaskScheduledEventAttributes?.activityType?.name ?? e.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName ?? e.workflowExecutionSignaledEventAttributes?.signalName ?? '';
      console.log(`    +${String(t - t0).padStart(6)} ms ${e.eventType} ${what}`);
    }
  }
}

/** Every workflow started since `since`, closed: events per type, the longest history. */
export async function historyStats(stack: FleetStack, since: Date) {
  const byType = new Map<string, { count: number; events: number; max: number; maxBytes: number }>();
  for await (const w of stack.client!.workflow.list({ query: `StartTime >= "${since.toISOString()}"` })) {
    const t = byType.get(w.type) ?? { count: 0, events: 0, max: 0, maxBytes: 0 };
    t.count++;
    t.events += w.historyLength;
    t.max = Math.max(t.max, w.historyLength);
    t.maxBytes = Math.max(t.maxBytes, w.historySize ?? 0);
    byType.set(w.type, t);
  }
  return byType;
}

/** Until no workflow runs any more (VM locks and node slots close after a minute idle). */
export async function allClosed(stack: FleetStack, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { count } = await stack.client!.workflow.count('ExecutionStatus = "Running"');
    if (count === 0) return;
    if (Date.now() > deadline) throw new Error(`${count} workflows still running`);
    await sleep(2_000);
  }
}

export async function activatePoolSchedule(stack: FleetStack): Promise<string> {
  await stack.ldap.modify(poolBackupConfigDn(DEMO_SERVICE_SUBTREE, FLEET_POOL), { sstCronActive: 'TRUE', sstCronMinute: '0', sstCronHour: '3' });
  return `kvm-backup-schedule/pool/${FLEET_POOL}/0_3_*_*_*`;
}

/** Fires the schedule and returns the run's workflow ID. */
export async function fire(stack: FleetStack, scheduleId: string): Promise<string> {
  const schedule = stack.client!.schedule.getHandle(scheduleId);
  const before = (await schedule.describe()).info.recentActions.length;
  await schedule.trigger();
  for (;;) {
    const actions = (await schedule.describe()).info.recentActions;
    if (actions.length > before) return actions.at(-1)!.action.workflow.workflowId;
    await sleep(50);
  }
}

async function main(): Promise<void> {
  const durations = durationModel(VMS, Number(args.seed), SPEED);
  const stack = await startFleetStack({ label: 'fleet', vms: VMS, nodes: NODES, slots: SLOTS, iterations: 2, durations: (vm) => durations.get(vm)! });
  try {
    const loadBefore = load();
    const client = stack.client!;
    const scheduleId = await activatePoolSchedule(stack);
    const scheduler = await startScheduler(stack.config, { nodes: stack.nodes, taskQueue: stack.controlQueue, temporal: client, log: consoleLog('scheduler', 'warn'), resyncEveryMs: 3_600_000 });
    await scheduler.settled();
    const reconciles: number[] = [];
    for (let i = 0; i < 5; i++) reconciles.push((await timed(() => scheduler.reconcile())).ms);
    await scheduler.stop();

    const perNode = new Map<string, number>();
    for (const v of stack.vms) perNode.set(v.node, (perNode.get(v.node) ?? 0) + totalMs(durations.get(v.vm)!));
    const idealMs = Math.max(...perNode.values()) / SLOTS;
    const meanBackupMs = [...durations.values()].reduce((a, d) => a + totalMs(d), 0) / VMS;

    const rows: Array<Array<string | number>> = [];
    const ratios: number[] = [];
    const cpuPerBackup: number[] = [];
    const eventsPerBackup: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const since = new Date(Date.now() - 1_000);
      const cpu0 = cpuMs(stack.control!.pid);
      const id = await fire(stack, scheduleId);
      const handle = client.workflow.getHandle(id);
      let finished = 0;
      let failed = 0;
      try {
        const outcome = (await handle.result()) as { finished: string[] };
        finished = outcome.finished.length;
      } catch (e) {
        const details = (e as { cause?: { details?: Array<{ finished: string[]; failed: unknown[] }> } }).cause?.details?.[0];
        finished = details?.finished.length ?? 0;
        failed = details?.failed.length ?? VMS;
      }
      const cpuRun = cpuMs(stack.control!.pid) - cpu0;
      const d = await handle.describe();
      const makespanMs = d.closeTime!.getTime() - d.startTime.getTime();
      const parts = breakdown(stack, durations, since.getTime(), d.startTime.getTime(), d.closeTime!.getTime());
      await allClosed(stack);
      const stats = await historyStats(stack, since);
      const total = [...stats.values()].reduce((a, t) => a + t.events, 0);
      const longest = Math.max(...[...stats.values()].map((t) => t.max));
      const maxActive = Math.max(...stack.nodes.map((n) => stack.sim!.recorder.maxActive.get(n) ?? 0));
      ratios.push(makespanMs / idealMs);
      cpuPerBackup.push(cpuRun / Math.max(1, finished));
      eventsPerBackup.push(total / Math.max(1, finished));
      rows.push([
        run, finished, failed, fmt(makespanMs / 1000, 1), fmt(idealMs / 1000, 1), fmt(makespanMs / idealMs, 3),
        `${fmt(parts.firstMs / 1000, 1)} / ${fmt(parts.overheadMs / 1000, 2)} / ${fmt(parts.gapMs / 1000, 2)} / ${fmt(parts.tailMs / 1000, 1)}`, fmt(cpuRun / 1000, 1),
        fmt((cpuRun / makespanMs) * 100, 1), fmt(cpuRun / Math.max(1, finished), 0), fmt(total / Math.max(1, finished), 1), longest, maxActive,
      ]);
      if (args.explain) await explain(stack, parts.slowest[0]!.vm, since);
      console.log(`run ${run}: ${JSON.stringify(rows.at(-1))}; in-slot overhead max ${fmt(parts.overheadMaxMs, 0)} ms, handover max ${fmt(parts.gapMaxMs, 0)} ms; slowest ${JSON.stringify(parts.slowest)}`);
      console.log(`  histories by type: ${JSON.stringify(Object.fromEntries([...stats].map(([k, t]) => [k, { ...t, mean: Math.round(t.events / t.count) }])))}`);
    }
    console.log(`\nfleet: ${VMS} VMs over ${NODES} simulated nodes, MAX_CONCURRENT_BACKUPS ${SLOTS}, mean backup ${fmt(meanBackupMs / 1000, 1)} s, ${machine()}, load ${loadBefore} → ${load()}\n`);
    console.log(
      table(
        ['run', 'finished', 'failed', 'makespan s', 'ideal s', 'makespan / ideal', 'first backup / in-slot overhead per backup / slot handover / tail, s', 'control CPU s', 'control CPU % of a core', 'control CPU ms per backup', 'history events per backup', 'longest history', 'most backups on one node at once'],
        rows,
      ),
    );
    console.log(`\nmedians: makespan / ideal ${fmt(median(ratios), 3)}, control CPU ${fmt(median(cpuPerBackup), 0)} ms per backup, ${fmt(median(eventsPerBackup), 1)} history events per backup`);
    console.log(`scheduler: directory read + reconcile of ${VMS} VMs (schedule unchanged), median of 5: ${fmt(median(reconciles), 0)} ms (runs ${reconciles.map((x) => fmt(x, 0)).join(', ')})`);
  } finally {
    await stack.stop();
  }
}

if (IS_MAIN) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
