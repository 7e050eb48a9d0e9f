/**
 * `kvm-backup dev` (what `npm start` runs): the embedded default on one machine. Temporal dev server
 * with its SQLite file and UI, a local slapd with the stoney cloud schema and the demo directory,
 * the local libvirtd, a tiny demo VM, the node and control workers and the LDAP watcher. Ctrl-C stops
 * everything it started, by PID, the demo VM before libvirtd.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DomainNotFoundError, Virsh } from '../adapters/host/virsh.js';
import { parseGlobalConfig, type GlobalConfig } from '../core/global-config.js';
import { portOpen, type Daemon } from './daemon.js';
import { DEMO_CLOUD_WIDE_DN, DEMO_ROOT_DN, DEMO_SERVICE_SUBTREE, DEMO_SUFFIX, renderDemoDirectory } from './directory.js';
import { ensureLibvirt, LIBVIRT_URI, type Libvirt } from './libvirt.js';
import { VAR_DIR } from './paths.js';
import { startSlapd } from './slapd.js';
import { startTemporalServer } from './temporal-server.js';
import { createTinyVm, openPath } from './tiny-vm.js';
import { startWorkers, type RunningWorkers } from '../workers/run-workers.js';
import { startWatcher } from '../client/watcher/index.js';

export const DEMO_VM = 'kvm-backup-demo';
export const DEMO_POOL = 'demo-pool';

export interface DevOptions {
  temporalPort: number;
  uiPort: number;
  ldapPort: number;
  varDir?: string;
}

/** Node names are host names; a machine whose hostname is not one gets a safe stand-in. */
function nodeName(): string {
  const h = hostname();
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(h) ? h : 'localhost';
}

function secret(file: string): string {
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

export async function runDev(o: DevOptions): Promise<void> {
  const dir = o.varDir ?? join(VAR_DIR, 'dev');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const node = nodeName();
  const virtualizationRoot = join(dir, 'virtualization');
  const disk = join(virtualizationRoot, 'vm-persistent', DEMO_POOL, `${DEMO_VM}-vda.qcow2`);
  const ramDisk = '/dev/shm/kvm-backup-demo';
  mkdirSync(ramDisk, { recursive: true });
  // the demo configuration's backup and retain roots, so `kvm-backup doctor` finds them from the start
  mkdirSync(join(dir, 'backup', 'virtualization'), { recursive: true });
  mkdirSync(join(virtualizationRoot, 'retain'), { recursive: true });

  for (const [what, port] of [['Temporal', o.temporalPort], ['Temporal UI', o.uiPort], ['LDAP', o.ldapPort]] as const) {
    if (await portOpen(port)) throw new Error(`port ${port} for ${what} is already in use (another kvm-backup dev or Temporal running?)`);
  }

  const started: Array<{ name: string; stop: () => Promise<void> }> = [];
  const stopAll = async () => {
    for (const s of started.reverse()) {
      try {
        await s.stop();
        console.log(`stopped ${s.name}`);
      } catch (e) {
        console.error(`could not stop ${s.name}: ${(e as Error).message}`);
      }
    }
  };
  let stopping: Promise<void> | undefined;
  const onSignal = () => {
    if (stopping) return;
    console.log('\nstopping everything dev started …');
    stopping = stopAll();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const temporal = await startTemporalServer({
      port: o.temporalPort,
      uiPort: o.uiPort,
      dbFile: join(dir, 'temporal.db'),
      logFile: join(dir, 'logs', 'temporal.log'),
    });
    started.push(daemonStopper(temporal));
    console.log(`Temporal dev server ${temporal.address} (pid ${temporal.pid}), SQLite ${join(dir, 'temporal.db')}`);

    const password = secret(join(dir, 'ldap.secret'));
    const slapd = await startSlapd({
      dir: join(dir, 'ldap'),
      port: o.ldapPort,
      suffix: DEMO_SUFFIX,
      rootDn: DEMO_ROOT_DN,
      rootPassword: password,
      seedLdif: renderDemoDirectory({
        node,
        vm: DEMO_VM,
        vmDisplayName: 'kvm-backup demo VM (no OS)',
        pool: DEMO_POOL,
        disk,
        backupRootUri: `file://${join(dir, 'backup', 'virtualization')}`,
        retainUri: `file://${join(virtualizationRoot, 'retain')}`,
        ramDisk,
      }),
    });
    started.push(daemonStopper(slapd));
    console.log(`slapd ${slapd.url} (pid ${slapd.pid}), bind ${DEMO_ROOT_DN}, password in ${join(dir, 'ldap.secret')}`);

    const libvirt: Libvirt = await ensureLibvirt(join(dir, 'logs'));
    if (libvirt.owned) started.push({ name: 'libvirtd and virtlogd', stop: libvirt.stop });
    console.log(`libvirt ${libvirt.uri} (${libvirt.owned ? 'started here' : 'already running'})`);

    await startDemoVm(dir, disk, started);

    const configFile = join(dir, 'kvm-backup.conf');
    writeFileSync(configFile, devConfigText({ node, ldapPort: o.ldapPort, dir, virtualizationRoot, temporal: temporal.address }));
    const config: GlobalConfig = parseGlobalConfig(readFileSync(configFile, 'utf8'), {
      env: {},
      readSecretFile: (p) => readFileSync(p, 'utf8'),
    });

    const workers: RunningWorkers = await startWorkers(config, { node: true, control: true });
    started.push({ name: 'workers', stop: workers.shutdown });
    const watcher = await startWatcher(config);
    started.push({ name: 'watcher and scheduler', stop: watcher.stop });

    console.log('');
    console.log(`kvm-backup dev is up on node "${node}" with demo VM "${DEMO_VM}".`);
    console.log(`  Temporal UI:   ${temporal.uiUrl}`);
    console.log(`  configuration: ${configFile}`);
    console.log(`  workers poll:  kvm-backup.node.${node} and kvm-backup.control`);
    console.log(`  watcher:       a leaf with sstProvisioningMode=backup (or snapshot, merge, …) and state 0 starts a workflow`);
    console.log('Ctrl-C stops everything started here.');
    await Promise.race([workers.done, watcher.done]);
    if (!stopping) throw new Error('a worker or the watcher stopped unexpectedly');
    await stopping;
  } catch (e) {
    await (stopping ??= stopAll());
    throw e;
  }
}

function daemonStopper(d: Daemon): { name: string; stop: () => Promise<void> } {
  return { name: `${d.name} (pid ${d.pid})`, stop: () => d.stop() };
}

async function startDemoVm(dir: string, disk: string, started: Array<{ name: string; stop: () => Promise<void> }>): Promise<void> {
  const virsh = new Virsh(LIBVIRT_URI);
  if (await virsh.exists(DEMO_VM)) {
    if (await virsh.isActive(DEMO_VM)) {
      console.log(`demo VM ${DEMO_VM} was already running; left as it is`);
    } else {
      await virsh.start(DEMO_VM);
      started.push({ name: `demo VM ${DEMO_VM}`, stop: () => removeDomain(virsh) });
      console.log(`demo VM ${DEMO_VM} was defined; started`);
    }
    return;
  }
  openPath(dir);
  const vm = existsSync(disk)
    ? await (async () => {
        // keep the disk (and its data) of an earlier run; only define and start the domain
        const { tinyDomainXml } = await import('../stack/tiny-vm.js');
        const { domainType } = await import('../stack/libvirt.js');
        const xmlFile = join(dir, `${DEMO_VM}.xml`);
        writeFileSync(xmlFile, tinyDomainXml(DEMO_VM, await domainType(), 64, [{ path: disk, target: 'vda' }]));
        await virsh.define(xmlFile);
        await virsh.start(DEMO_VM);
        return { remove: () => removeDomain(virsh) };
      })()
    : await createTinyVm({ name: DEMO_VM, disks: [{ path: disk, target: 'vda', sizeMiB: 256 }], xmlFile: join(dir, `${DEMO_VM}.xml`) });
  started.push({ name: `demo VM ${DEMO_VM}`, stop: vm.remove });
  console.log(`demo VM ${DEMO_VM} defined and started (disk ${disk})`);
}

async function removeDomain(virsh: Virsh): Promise<void> {
  try {
    if (await virsh.isActive(DEMO_VM)) await virsh.destroy(DEMO_VM);
    await virsh.undefine(DEMO_VM);
  } catch (e) {
    if (!(e instanceof DomainNotFoundError)) throw e;
  }
}

function devConfigText(p: { node: string; ldapPort: number; dir: string; virtualizationRoot: string; temporal: string }): string {
  return `# Written by \`kvm-backup dev\` at each start; the seed's KVM.conf format.
[Global]
LOG_DEBUG = 0
LOG_INFO = 1
LOG_WARNING = 1
LOG_ERR = 1
ENVIRONMENT = ${p.node}

[Database]
BACKEND = LDAP
SERVER = 127.0.0.1
PORT = ${p.ldapPort}
ADMIN_USER = ${DEMO_ROOT_DN}
ADMIN_PASSWORD_FILE = ${join(p.dir, 'ldap.secret')}
SERVICE_SUBTREE = ${DEMO_SERVICE_SUBTREE}
COOKIE_FILE = ${join(p.dir, 'watcher.cookie')}
DEFAULT_COOKIE = rid=001,csn=
SEARCH_FILTER = (&(entryCSN>=%entryCSN%)(objectClass=*))
STONEY_CLOUD_WIDE_CONFIGURATION = ${DEMO_CLOUD_WIDE_DN}

[Service]
MODUS = selfcare
TRANSPORTAPI = LocalCLI
SERVICE = Backup
TYPE = KVM
SYSLOG = Backup-KVM

[Backup]
EXPORT_COMMAND = cp -p
VIRTUALIZATION_ROOT = ${p.virtualizationRoot}

[Temporal]
ADDRESS = ${p.temporal}
NAMESPACE = default
`;
}
