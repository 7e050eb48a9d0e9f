/**
 * A whole site for the fleet benchmarks: a Temporal dev server (SQLite file, as `kvm-backup dev`
 * runs it), a slapd loaded with slapadd with the demo directory and N VMs over M nodes in one pool,
 * the INI file of the site, the control worker as its own process (`kvm-backup worker
 * --control-only`, so its CPU time is its own), and simulated node workers in this process
 * (test/helpers/simulated-nodes.ts: the backup activities sleep). Stopped by PID.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { LdapClient } from '../adapters/ldap/client.js';
import { loadTemporalProfiles } from '../adapters/temporal/profile.js';
import { ensureSearchAttributes } from '../adapters/temporal/connection.js';
import { parseGlobalConfig, type GlobalConfig } from '../core/global-config.js';
import { leafDn, leafTimestamp } from '../core/naming.js';
import { newLeafAttributes } from '../core/provisioning.js';
import { freePort, startDaemon, type Daemon } from '../stack/daemon.js';
import { DEMO_CLOUD_WIDE_DN, DEMO_ROOT_DN, DEMO_SERVICE_SUBTREE, DEMO_SUFFIX, renderDemoDirectory } from '../stack/directory.js';
import { VAR_DIR } from '../stack/paths.js';
import { startSlapd, type Slapd } from '../stack/slapd.js';
import { startTemporalServer, type TemporalServer } from '../stack/temporal-server.js';
import { installRuntime } from '../workers/runtime.js';
import { fleetLdif, fleetVms, type FleetVm } from '../test/helpers/fleet.js';
import { startSimulatedNodes, type PhaseDurations, type SimulatedNodes } from '../test/helpers/simulated-nodes.js';

const PASSWORD = 'bench-secret';
export const FLEET_POOL = 'fleet-pool';
const CLI = fileURLToPath(new URL('../client/cli.js', import.meta.url));

export interface FleetStackOptions {
  label: string;
  vms: number;
  nodes: number;
  slots: number;
  /** Finished leaves per VM already in the directory (earlier backups). */
  leavesPerVm?: number;
  /** sstBackupNumberOfIterations of the pool. */
  iterations?: number;
  /** Without: no Temporal server, no workers (directory-only measurements). */
  temporal?: boolean;
  /** Without: the Temporal server, but no control worker and no simulated nodes. */
  workers?: boolean;
  durations?: (vm: string) => PhaseDurations;
}

export interface FleetStack {
  dir: string;
  nodes: string[];
  vms: FleetVm[];
  slapd: Slapd;
  ldap: LdapClient;
  config: GlobalConfig;
  configFile: string;
  controlQueue: string;
  temporal?: TemporalServer;
  client?: Client;
  control?: Daemon;
  sim?: SimulatedNodes;
  stop(): Promise<void>;
}

export function nodeNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `node-${String(i + 1).padStart(2, '0')}`);
}

/** Earlier finished leaves of every VM, as LDIF (a day apart, the newest yesterday). */
function leavesLdif(vms: readonly FleetVm[], perVm: number): string {
  const lines: string[] = [];
  for (const v of vms) {
    for (let d = perVm; d >= 1; d--) {
      const at = new Date(Date.UTC(2026, 0, 1) - d * 86_400_000);
      const ou = leafTimestamp(at);
      // a finished leaf is stamped (processed) with its time
      const attributes = { ...newLeafAttributes(ou, 'finished'), sstProvisioningState: ou };
      lines.push(`dn: ${leafDn(DEMO_SERVICE_SUBTREE, v.vm, ou)}`);
      for (const [k, val] of Object.entries(attributes)) for (const x of Array.isArray(val) ? val : [val]) lines.push(`${k}: ${x}`);
      lines.push('');
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function startFleetStack(o: FleetStackOptions): Promise<FleetStack> {
  const dir = mkdtempSync(join(VAR_DIR, `bench-${o.label}-`));
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const stops: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((e) => console.error('stop:', e));
    // the logs outlive the run when asked (KVM_BACKUP_BENCH_LOGS=<dir>)
    const keep = process.env['KVM_BACKUP_BENCH_LOGS'];
    if (keep) cpSync(join(dir, 'logs'), join(keep, `${o.label}-${Date.now()}`), { recursive: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const nodes = nodeNames(o.nodes);
    const vms = fleetVms('vm', o.vms, nodes, FLEET_POOL);
    const slapd = await startSlapd({
      dir: join(dir, 'ldap'),
      port: await freePort(),
      suffix: DEMO_SUFFIX,
      rootDn: DEMO_ROOT_DN,
      rootPassword: PASSWORD,
      seedLdif:
        renderDemoDirectory({
          // the demo VM lives on a node outside the site: no schedule, no backup
          node: 'elsewhere', vm: 'demo-vm', pool: FLEET_POOL, poolIterations: o.iterations ?? 2,
          disk: '/var/virtualization/vm-persistent/demo/demo-vm-vda.disk.qcow2', backupRootUri: 'file:///var/backup/virtualization',
          retainUri: 'file:///var/virtualization/retain', ramDisk: '/dev/shm/kvm-backup',
        }) + '\n\n' + fleetLdif(vms) + (o.leavesPerVm ? leavesLdif(vms, o.leavesPerVm) : ''),
    });
    stops.push(() => slapd.stop());
    const secretFile = join(dir, 'ldap.secret');
    writeFileSync(secretFile, `${PASSWORD}\n`, { mode: 0o600 });
    const temporal = o.temporal === false ? undefined : await startTemporalServer({ port: await freePort(), dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'logs', 'temporal.log') });
    if (temporal) stops.push(() => temporal.stop());
    const url = new URL(slapd.url);
    const controlQueue = `kvm-backup.control.${o.label}`;
    const configFile = join(dir, 'kvm-backup.conf');
    writeFileSync(
      configFile,
      [
        '[Global]', `ENVIRONMENT = ${nodes[0]}`,
        '[Database]', `SERVER = ${url.hostname}`, `PORT = ${url.port}`, `ADMIN_USER = ${DEMO_ROOT_DN}`, `ADMIN_PASSWORD_FILE = ${secretFile}`,
        `SERVICE_SUBTREE = ${DEMO_SERVICE_SUBTREE}`, `COOKIE_FILE = ${join(dir, 'cookie')}`, `STONEY_CLOUD_WIDE_CONFIGURATION = ${DEMO_CLOUD_WIDE_DN}`,
        '[Backup]', `MAX_CONCURRENT_BACKUPS = ${o.slots}`,
        '[Temporal]', `ADDRESS = ${temporal?.address ?? '127.0.0.1:7233'}`, `CONTROL_TASK_QUEUE = ${controlQueue}`,
        '[Watcher]', `NODES = ${nodes.join(',')}`,
        '',
      ].join('\n'),
    );
    const config = parseGlobalConfig(readFileSync(configFile, 'utf8'), { env: {}, readSecretFile: (p) => readFileSync(p, 'utf8'), temporalProfiles: loadTemporalProfiles });
    const ldap = LdapClient.perCall({ url: config.database.url, bindDn: config.database.bindDn, password: config.database.password });
    const stack: FleetStack = { dir, nodes, vms, slapd, ldap, config, configFile, controlQueue, stop };
    if (!temporal) return stack;

    const client = new Client({ connection: await Connection.connect({ address: temporal.address }), namespace: 'default' });
    stops.push(() => client.connection.close());
    await ensureSearchAttributes(client, 'default');
    if (o.workers === false) return { ...stack, temporal, client };
    const controlLog = join(dir, 'logs', 'control-worker.log');
    const control = await startDaemon({
      name: 'control-worker',
      command: process.execPath,
      args: [CLI, 'worker', '--config', configFile, '--control-only'],
      env: { ...process.env, TEMPORAL_ADDRESS: temporal.address },
      logFile: controlLog,
      dieWithParent: true,
      readyTimeoutMs: 120_000,
      ready: async () => readFileSync(controlLog, 'utf8').includes('workers running for node'),
    });
    stops.push(() => control.stop());
    // the SDK's own lines at warnings (workers/runtime.ts), as in the product's workers
    await installRuntime();
    const connection = await NativeConnection.connect({ address: temporal.address });
    stops.push(() => connection.close());
    const sim = await startSimulatedNodes({ connection, namespace: 'default', nodes, durations: o.durations ?? (() => ({ preflight: 0, snapshot: 0, copyToRetain: 0, merge: 0, export: 0, rotate: 0 })), maxConcurrentBackups: o.slots });
    stops.push(() => sim.shutdown());
    return { ...stack, temporal, client, control, sim };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A seeded PRNG (mulberry32): the same durations in every run of a benchmark. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
