/**
 * Trigger latency of the LDAP watcher: from a leaf write to the start of its workflow, over many
 * writes at random moments (so they fall at every phase of the poll cycle). Write time = the
 * leaf's entryCSN (slapd's clock, microseconds); start time = the workflow execution's start time
 * (Temporal's clock); both servers run on this machine. No worker runs: the latency ends when
 * Temporal has the workflow, not when a worker picks it up.
 *
 * The same writes are also seen by a syncrepl refreshAndPersist feed (`ldapsearch -E '!sync=rp'`,
 * the alternative that ldapts cannot receive itself), timed when its line reaches this process, to
 * compare the two ways of noticing a change.
 *
 *   node dist/bench/watcher-latency.js [--writes 60] [--intervals 250,100]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Client as Ldap } from 'ldapts';
import { Client, Connection } from '@temporalio/client';
import { parseGlobalConfig } from '../core/global-config.js';
import { loadTemporalProfiles } from '../adapters/temporal/profile.js';
import { leafDn, leafTimestamp } from '../core/naming.js';
import { newLeafAttributes } from '../core/provisioning.js';
import { startWatcher } from '../client/watcher/index.js';
import { consoleLog } from '../client/watcher/log.js';
import { freePort } from '../stack/daemon.js';
import { DEMO_CLOUD_WIDE_DN, DEMO_ROOT_DN, DEMO_SERVICE_SUBTREE, DEMO_SUFFIX, renderDemoDirectory } from '../stack/directory.js';
import { VAR_DIR } from '../stack/paths.js';
import { startSlapd } from '../stack/slapd.js';
import { startTemporalServer } from '../stack/temporal-server.js';
import { fmt, machine, median, table } from './lib.js';

const { values: args } = parseArgs({
  options: { writes: { type: 'string', default: '60' }, intervals: { type: 'string', default: '250,100' } },
});
const WRITES = Number(args.writes);
const INTERVALS = String(args.intervals).split(',').map(Number);
const PASSWORD = 'bench-secret';
const NODE = 'bench-node';
const VM = 'bench-vm';

/** CPU time (user + system, ms) a process has used so far. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** 20261127021447.601862Z#… → epoch ms with the microseconds kept as a fraction. */
function csnTime(csn: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.(\d{6})Z/.exec(csn)!;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s) + Number(m[7]) / 1000;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(VAR_DIR, 'bench-watcher-'));
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const temporal = await startTemporalServer({ port: await freePort(), logFile: join(dir, 'logs', 'temporal.log') });
  const slapd = await startSlapd({
    dir: join(dir, 'ldap'),
    port: await freePort(),
    suffix: DEMO_SUFFIX,
    rootDn: DEMO_ROOT_DN,
    rootPassword: PASSWORD,
    seedLdif: renderDemoDirectory({ node: NODE, vm: VM, pool: 'bench-pool', disk: '/nonexistent/disk.qcow2', backupRootUri: 'file:///nonexistent/b', retainUri: 'file:///nonexistent/r', ramDisk: '/nonexistent' }),
  });
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: 'default' });
  const writer = new Ldap({ url: slapd.url });
  await writer.bind(DEMO_ROOT_DN, PASSWORD);
  const url = new URL(slapd.url);
  writeFileSync(join(dir, 'secret'), PASSWORD, { mode: 0o600 });

  // the syncrepl feed beside the watcher: every line that names a leaf, timed on arrival
  const syncSeen = new Map<string, number>();
  const sync = spawn('ldapsearch', ['-x', '-LLL', '-H', slapd.url, '-D', DEMO_ROOT_DN, '-y', join(dir, 'secret'), '-b', DEMO_SERVICE_SUBTREE, '-E', '!sync=rp', '(objectClass=sstProvisioning)', '1.1'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let pending = '';
  sync.stdout.on('data', (chunk: Buffer) => {
    const now = Date.now();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const m = /^dn: ou=(\d{8}T\d{6}Z),/.exec(line);
      if (m && !syncSeen.has(m[1]!)) syncSeen.set(m[1]!, now);
    }
  });

  const rows: Array<Array<string | number>> = [];
  let base = Date.UTC(2030, 0, 1);
  for (const intervalMs of INTERVALS) {
    const configText = [
      '[Global]', `ENVIRONMENT = ${NODE}`,
      '[Database]', `SERVER = ${url.hostname}`, `PORT = ${url.port}`, `ADMIN_USER = ${DEMO_ROOT_DN}`, `ADMIN_PASSWORD_FILE = ${join(dir, 'secret')}`,
      `SERVICE_SUBTREE = ${DEMO_SERVICE_SUBTREE}`, `COOKIE_FILE = ${join(dir, `cookie-${intervalMs}`)}`, `STONEY_CLOUD_WIDE_CONFIGURATION = ${DEMO_CLOUD_WIDE_DN}`, '',
    ].join('\n');
    const config = parseGlobalConfig(configText, { env: { TEMPORAL_ADDRESS: temporal.address }, readSecretFile: () => PASSWORD, temporalProfiles: loadTemporalProfiles });
    const taskQueue = `bench-${intervalMs}`;
    const watcher = await startWatcher(config, { temporal: client, taskQueue, pollIntervalMs: intervalMs, scheduler: false, log: consoleLog('watcher', 'warn') });
    while (watcher.feed.polls < 3) await sleep(20);
    // what following the directory costs slapd and this process while nothing happens
    const idleSeconds = 10;
    const [slapdBefore, selfBefore] = [cpuMs(slapd.pid), process.cpuUsage()];
    await sleep(idleSeconds * 1000);
    const slapdIdle = (cpuMs(slapd.pid) - slapdBefore) / idleSeconds;
    const selfUsage = process.cpuUsage(selfBefore);
    const selfIdle = (selfUsage.user + selfUsage.system) / 1000 / idleSeconds;

    const e2e: number[] = [];
    const detectSync: number[] = [];
    for (let i = 0; i < WRITES; i++) {
      await sleep(50 + Math.random() * 450);
      const ou = leafTimestamp(new Date((base += 1000)));
      const dn = leafDn(DEMO_SERVICE_SUBTREE, VM, ou);
      await writer.add(dn, newLeafAttributes(ou, 'backup'));
      const { searchEntries } = await writer.search(dn, { scope: 'base', attributes: ['entryCSN'] });
      const written = csnTime(String(searchEntries[0]!['entryCSN']));
      const handle = client.workflow.getHandle(`backup/${VM}/${ou}`);
      let started: number | undefined;
      for (let tries = 0; started === undefined; tries++) {
        started = await handle.describe().then((d) => d.startTime.getTime(), () => undefined);
        if (started === undefined) {
          if (tries > 400) throw new Error(`no workflow for ${ou}`);
          await sleep(10);
        }
      }
      e2e.push(started - written);
      const seenBySync = syncSeen.get(ou);
      if (seenBySync !== undefined) detectSync.push(seenBySync - written);
      await handle.terminate('benchmark').catch(() => undefined);
    }
    await watcher.stop();
    // what the start itself costs, so the rest of the end-to-end figure is the time to notice the write
    const startCall: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const h = await client.workflow.start('backupWorkflow', { taskQueue: `${taskQueue}-direct`, workflowId: `bench-direct/${intervalMs}/${i}`, args: [{ leafDn: 'x' }] });
      startCall.push(performance.now() - t);
      await h.terminate('benchmark').catch(() => undefined);
    }
    rows.push([
      `watcher, poll every ${intervalMs} ms`, WRITES, fmt(median(e2e), 1), fmt(percentile(e2e, 95), 1), fmt(Math.max(...e2e), 1), fmt(median(startCall), 1),
      `slapd ${fmt(slapdIdle, 1)}, watcher ${fmt(selfIdle, 1)}`,
    ]);
    if (detectSync.length) {
      rows.push([`(same writes) syncrepl feed sees the leaf`, detectSync.length, fmt(median(detectSync), 1), fmt(percentile(detectSync, 95), 1), fmt(Math.max(...detectSync), 1), '–', '–']);
      detectSync.length = 0;
      syncSeen.clear();
    }
  }
  sync.kill();
  console.log(`\nwatcher trigger latency, ${WRITES} writes per row, ${machine()}\n`);
  console.log(table(['path', 'writes', 'median ms', 'p95 ms', 'max ms', 'Temporal start call alone, median ms', 'idle CPU ms/s'], rows));
  await writer.unbind();
  await connection.close();
  await slapd.stop();
  await temporal.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
