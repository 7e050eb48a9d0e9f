/**
 * A large site (issue 11): what the directory read, the scheduler and the watcher cost at 5,000 VMs
 * against 100 VMs measured in the same run, and one scheduled run of a 5,000-VM pool over 20
 * simulated nodes, with every workflow history it caused counted (each must stay under 10,000 events).
 *
 * Directory: slapd loaded with slapadd: per VM its entry, ou=devices with a disk, ou=backup with two
 * finished leaves, its DHCP host (9 entries per VM). Scheduler: the four searches of its directory
 * read (StoneyDirectory.schedulingSnapshot), the desired schedules computed from them, the whole
 * reconcile against Temporal (first: creates the pool's schedule; then unchanged; then after a VM
 * was added: updated). Watcher: the real feed (client/watcher) polling every 250 ms, idle for 15 s:
 * polls, slapd's CPU per poll, this process's CPU per poll, and the feed's own search timed alone;
 * also its first poll from an empty cookie (every entry of the directory replayed once).
 *
 * Run: the pool's schedule (made by the real scheduler) fired; MAX_CONCURRENT_BACKUPS slots per node;
 * backups of about 1.5 s on the node; with --retention every VM has one finished leaf beyond the
 * pool's one iteration, so each VM's retention runs a deletion (the most events a batch can get).
 *
 *   node dist/bench/fleet-scale.js [--vms 5000] [--small 100] [--nodes 20] [--slots 2] [--parts directory,watcher,run] [--retention]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { StoneyDirectory } from '../adapters/ldap/stoney-directory.js';
import { desiredSchedules } from '../client/scheduler/desired.js';
import { startScheduler } from '../client/scheduler/index.js';
import { startWatcher } from '../client/watcher/index.js';
import { consoleLog } from '../client/watcher/log.js';
import { csnMinusSeconds } from '../core/csn.js';
import { escapeFilterValue } from '../core/dn.js';
import { value } from '../core/ldap-entry.js';
import { DEMO_SERVICE_SUBTREE } from '../stack/directory.js';
import { addFleetVms } from '../test/helpers/fleet.js';
import { totalMs, type PhaseDurations } from '../test/helpers/simulated-nodes.js';
import { activatePoolSchedule, allClosed, breakdown, fire, historyStats } from './fleet.js';
import { FLEET_POOL, random, startFleetStack, type FleetStack } from './fleet-stack.js';
import { cpuMs, fmt, load, machine, median, table, timed } from './lib.js';

const { values: args } = parseArgs({
  options: {
    vms: { type: 'string', default: '5000' },
    small: { type: 'string', default: '100' },
    nodes: { type: 'string', default: '20' },
    slots: { type: 'string', default: '2' },
    parts: { type: 'string', default: 'directory,watcher,run' },
    retention: { type: 'boolean', default: false },
  },
});
const VMS = Number(args.vms);
const NODES = Number(args.nodes);
const SLOTS = Number(args.slots);
const PARTS = new Set(String(args.parts).split(','));
const HISTORY_LIMIT = 10_000;

async function medianOf(times: number, fn: () => Promise<unknown>): Promise<{ median: number; all: number[] }> {
  const all: number[] = [];
  for (let i = 0; i < times; i++) all.push((await timed(fn)).ms);
  return { median: median(all), all };
}

/** The directory read, the desired schedules and the scheduler's reconcile at `size` VMs. */
async function directoryPart(stack: FleetStack, size: number): Promise<Array<string | number>> {
  await activatePoolSchedule(stack);
  const directory = StoneyDirectory.fromConfig(stack.config.database);
  const snapshot = await directory.schedulingSnapshot();
  const read = await medianOf(5, () => directory.schedulingSnapshot());
  const desired = await medianOf(5, async () => desiredSchedules(snapshot, stack.nodes));
  const t0 = performance.now();
  const scheduler = await startScheduler(stack.config, { nodes: stack.nodes, taskQueue: stack.controlQueue, temporal: stack.client!, log: consoleLog('scheduler', 'warn'), resyncEveryMs: 3_600_000 });
  await scheduler.settled();
  const first = performance.now() - t0;
  const unchanged = await medianOf(5, () => scheduler.reconcile());
  await addFleetVms(stack.ldap, [{ vm: 'vm-added', node: stack.nodes[0]!, pool: FLEET_POOL }]);
  const changed = await timed(() => scheduler.reconcile());
  await scheduler.stop();
  const schedule = await stack.client!.schedule.getHandle(`kvm-backup-schedule/pool/${FLEET_POOL}/0_3_*_*_*`).describe();
  const inputBytes = JSON.stringify(schedule.action.args).length;
  return [
    size, snapshot.vms.length, fmt(read.median, 0), fmt(desired.median, 1), fmt(first, 0), fmt(unchanged.median, 0), `${fmt(changed.ms, 0)} (${changed.value.updated.length} updated)`,
    fmt(inputBytes / 1024, 0),
  ];
}

/** The watcher's first poll from an empty cookie, then its idle polls: cost per poll. */
async function watcherPart(stack: FleetStack, size: number): Promise<Array<string | number>> {
  const watcher = await startWatcher(stack.config, { temporal: stack.client!, taskQueue: stack.controlQueue, pollIntervalMs: 250, scheduler: false, log: consoleLog('watcher', 'warn') });
  const t0 = performance.now();
  while (watcher.feed.polls < 1) await sleep(10);
  const catchUp = performance.now() - t0;
  while (watcher.feed.polls < 3) await sleep(10);
  const idleSeconds = 15;
  const [slapd0, self0, polls0] = [cpuMs(stack.slapd.pid), process.cpuUsage(), watcher.feed.polls];
  await sleep(idleSeconds * 1000);
  const polls = watcher.feed.polls - polls0;
  const slapdPerPoll = (cpuMs(stack.slapd.pid) - slapd0) / polls;
  const self = process.cpuUsage(self0);
  const selfPerPoll = (self.user + self.system) / 1000 / polls;
  await watcher.stop();
  await watcher.done;
  // the feed's search alone, from a cookie of now (what every idle poll asks), through one bound session
  const session = StoneyDirectory.fromConfig(stack.config.database, 'session');
  const [naming] = await session.ldap.search('', { scope: 'base', attributes: ['namingContexts'] });
  const suffix = String(value(naming!, 'namingContexts'));
  const [root] = await session.ldap.search(suffix, { scope: 'base', attributes: ['contextCSN'] });
  const from = csnMinusSeconds(String(value(root!, 'contextCSN')), 3);
  const filter = stack.config.database.searchFilter.replaceAll('%entryCSN%', escapeFilterValue(from));
  const attributes = ['entryCSN', 'sstProvisioningMode', 'sstProvisioningState', 'sstProvisioningExecutionDate'];
  const search = await medianOf(100, () => session.ldap.search(DEMO_SERVICE_SUBTREE, { scope: 'sub', filter, attributes, pageSize: 500 }));
  await session.close();
  return [size, (await stack.ldap.search(DEMO_SERVICE_SUBTREE, { scope: 'sub', filter: '(objectClass=*)', attributes: ['1.1'], pageSize: 500 })).length, fmt(catchUp, 0), polls, fmt(slapdPerPoll, 2), fmt(selfPerPoll, 2), fmt(search.median, 2)];
}

function runDurations(vms: readonly string[]): Map<string, PhaseDurations> {
  const r = random(7);
  return new Map(vms.map((vm) => {
    const k = 0.5 + r();
    return [vm, { preflight: 50 * k, snapshot: 200 * k, copyToRetain: 600 * k, merge: 150 * k, export: 400 * k, rotate: 50 * k }];
  }));
}

async function runPart(): Promise<void> {
  const names = Array.from({ length: VMS }, (_, i) => `vm-${String(i).padStart(5, '0')}`);
  const durations = runDurations(names);
  const stack = await startFleetStack({
    label: 'scale-run', vms: VMS, nodes: NODES, slots: SLOTS, iterations: 1, leavesPerVm: args.retention ? 1 : 0, durations: (vm) => durations.get(vm)!,
  });
  try {
    const scheduleId = await activatePoolSchedule(stack);
    const scheduler = await startScheduler(stack.config, { nodes: stack.nodes, taskQueue: stack.controlQueue, temporal: stack.client!, log: consoleLog('scheduler', 'warn'), resyncEveryMs: 3_600_000 });
    await scheduler.settled();
    await scheduler.stop();
    const since = new Date(Date.now() - 1_000);
    const cpu0 = cpuMs(stack.control!.pid);
    const [server0, slapd0, self0] = [cpuMs(stack.temporal!.pid), cpuMs(stack.slapd.pid), process.cpuUsage()];
    const loadBefore = load();
    const handle = stack.client!.workflow.getHandle(await fire(stack, scheduleId));
    let outcome: { finished: string[]; failed: unknown[]; removed: string[] };
    try {
      outcome = (await handle.result()) as typeof outcome;
    } catch (e) {
      outcome = (e as { cause?: { details?: Array<typeof outcome> } }).cause?.details?.[0] ?? { finished: [], failed: [e], removed: [] };
      console.error('the run failed:', String(e), JSON.stringify(outcome.failed.slice(0, 5)));
    }
    const cpu = cpuMs(stack.control!.pid) - cpu0;
    const serverCpu = cpuMs(stack.temporal!.pid) - server0;
    const slapdCpu = cpuMs(stack.slapd.pid) - slapd0;
    const selfUsage = process.cpuUsage(self0);
    const nodesCpu = (selfUsage.user + selfUsage.system) / 1000;
    const d = await handle.describe();
    const makespan = d.closeTime!.getTime() - d.startTime.getTime();
    const parts = breakdown(stack, durations, since.getTime(), d.startTime.getTime(), d.closeTime!.getTime());
    const loadAfter = load();
    await allClosed(stack, 600_000);
    const stats = await historyStats(stack, since);
    const perNode = new Map<string, number>();
    for (const v of stack.vms) perNode.set(v.node, (perNode.get(v.node) ?? 0) + totalMs(durations.get(v.vm)!));
    const ideal = Math.max(...perNode.values()) / SLOTS;
    const total = [...stats.values()].reduce((a, t) => a + t.events, 0);
    const over = [...stats.values()].filter((t) => t.max >= HISTORY_LIMIT).length;
    const maxActive = Math.max(...stack.nodes.map((n) => stack.sim!.recorder.maxActive.get(n) ?? 0));
    console.log(`\nscheduled run: ${VMS} VMs of one pool over ${NODES} simulated nodes, MAX_CONCURRENT_BACKUPS ${SLOTS}${args.retention ? ', a deletion per VM' : ''}, load ${loadBefore} → ${loadAfter}\n`);
    console.log(table(
      ['finished', 'failed', 'removed by retention', 'makespan s', 'ideal s', 'first backup s (preparation)', `CPU s: control worker / Temporal server / slapd / this process (${NODES} simulated nodes, the client)`, 'history events per backup', 'most backups on one node at once', 'workflows with ≥ 10,000 events'],
      [[
        outcome.finished.length, outcome.failed.length, outcome.removed.length, fmt(makespan / 1000, 0), fmt(ideal / 1000, 0), fmt(parts.firstMs / 1000, 1),
        `${fmt(cpu / 1000, 0)} / ${fmt(serverCpu / 1000, 0)} / ${fmt(slapdCpu / 1000, 0)} / ${fmt(nodesCpu / 1000, 0)}`, fmt(total / Math.max(1, outcome.finished.length), 1), maxActive, over,
      ]],
    ));
    console.log('\nhistories per workflow type\n');
    console.log(table(
      ['workflow type', 'runs', 'mean events', 'most events', 'largest history KiB'],
      [...stats].sort((a, b) => b[1].max - a[1].max).map(([type, t]) => [type, t.count, fmt(t.events / t.count, 0), t.max, fmt(t.maxBytes / 1024, 0)]),
    ));
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<void> {
  console.log(`fleet scale, ${machine()}, load ${load()}`);
  if (PARTS.has('directory') || PARTS.has('watcher')) {
    const dirRows: Array<Array<string | number>> = [];
    const watchRows: Array<Array<string | number>> = [];
    for (const size of [Number(args.small), VMS]) {
      const stack = await startFleetStack({ label: `scale-${size}`, vms: size, nodes: NODES, slots: SLOTS, leavesPerVm: 2, workers: false });
      try {
        if (PARTS.has('directory')) dirRows.push(await directoryPart(stack, size));
        if (PARTS.has('watcher')) watchRows.push(await watcherPart(stack, size));
      } finally {
        await stack.stop();
      }
    }
    if (dirRows.length) {
      console.log('\nscheduler: directory read and reconcile (medians of 5, ms)\n');
      console.log(table(['VMs', 'VMs read', 'directory read (4 searches)', 'desired schedules', 'first reconcile (creates)', 'reconcile, unchanged', 'reconcile after a VM was added', 'schedule input KiB'], dirRows));
    }
    if (watchRows.length) {
      console.log('\nwatcher: polls every 250 ms, 15 s idle\n');
      console.log(table(['VMs', 'entries below the service subtree', 'first poll from an empty cookie, ms', 'idle polls', 'slapd CPU ms per poll', 'watcher CPU ms per poll', "the poll's search alone, median ms"], watchRows));
    }
  }
  if (PARTS.has('run')) await runPart();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
