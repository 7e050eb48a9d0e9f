/**
 * A complete, real test world for one test file: its own slapd with the stoney cloud schema and the
 * demo directory, a tiny running VM with real qcow2 disks laid out as on a stoney cloud node, a
 * global INI file pointing at both, and (on request) a node worker and a control worker on task
 * queues of their own. Everything is removed again by `close()`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { LdapClient } from '../../adapters/ldap/client.js';
import type { ControlDeps } from '../../activities/control/index.js';
import type { NodeDeps } from '../../activities/node/index.js';
import { Virsh } from '../../adapters/host/virsh.js';
import { parseGlobalConfig, type GlobalConfig } from '../../core/global-config.js';
import { vmDn } from '../../core/naming.js';
import { freePort } from '../../stack/daemon.js';
import { DEMO_CLOUD_WIDE_DN, DEMO_ROOT_DN, DEMO_SERVICE_SUBTREE, DEMO_SUFFIX, renderDemoDirectory } from '../../stack/directory.js';
import { LIBVIRT_URI } from '../../stack/libvirt.js';
import { startSlapd, type Slapd } from '../../stack/slapd.js';
import { createTinyVm, openPath, type TinyVm } from '../../stack/tiny-vm.js';
import { startWorkers, type RunningWorkers } from '../../workers/run-workers.js';
import { connectClient, ensureSearchAttributes } from '../../adapters/temporal/connection.js';
import { loadTemporalProfiles } from '../../adapters/temporal/profile.js';
import { temporalTarget, testDir, uniqueName } from './names.js';

export interface WorldOptions {
  label: string;
  /**
   * Disks, default ['vda']: a target, or a target with its directory (relative to the
   * virtualization root) and file name. The first is in the demo LDIF, others are added to LDAP.
   */
  disks?: Array<string | { target: string; dir?: string; file?: string }>;
  memoryMiB?: number;
  startVm?: boolean;
  /** Skip the VM entirely (LDAP/Temporal-only tests). */
  noVm?: boolean;
  /** Extra `KEY = value` lines for the INI's [Backup] section (e.g. COPY_BANDWIDTH). */
  backupIni?: Record<string, string>;
  /** Extra `KEY = value` lines for [Temporal] (e.g. UI_URL), and whole extra sections (e.g. Mail, Notify). */
  temporalIni?: Record<string, string>;
  extraIni?: Record<string, Record<string, string>>;
}

export interface World {
  dir: string;
  node: string;
  vm: string;
  pool: string;
  slapd: Slapd;
  /** Raw LDAP access to the world's directory (tests write entries as fc-brokerd or an operator would). */
  directory: LdapClient;
  config: GlobalConfig;
  configFile: string;
  virsh: Virsh;
  domain?: TinyVm;
  disks: Array<{ target: string; path: string }>;
  paths: { virtualizationRoot: string; backupRoot: string; retainRoot: string; ramDisk: string };
  client: Client;
  /** Control task queue of this world (workflows and LDAP activities). */
  controlQueue: string;
  startWorkers(options?: { node?: boolean; control?: boolean; wrapNodeDeps?: (d: NodeDeps) => NodeDeps; wrapControlDeps?: (d: ControlDeps) => ControlDeps }): Promise<RunningWorkers>;
  close(): Promise<void>;
}


const PASSWORD = 'test-secret';

/** A file disk of `vm` in the directory (an extra disk, or one the domain does not have). */
export async function addDiskEntry(directory: LdapClient, vm: string, target: string, path: string): Promise<void> {
  await directory.add(`sstDisk=${target},ou=devices,${vmDn(DEMO_SERVICE_SUBTREE, vm)}`, {
    objectClass: ['top', 'sstVirtualizationVirtualMachineDisk'],
    sstDisk: target,
    sstDevice: 'disk',
    sstType: 'file',
    sstTargetBus: 'virtio',
    sstDriverName: 'qemu',
    sstDriverType: 'qcow2',
    sstSourceFile: path,
  });
}

export async function createWorld(o: WorldOptions): Promise<World> {
  const dir = testDir(o.label);
  openPath(dir);
  const node = uniqueName(`${o.label}-node`);
  const vm = uniqueName(o.label);
  const pool = `pool-${vm}`;
  const paths = {
    virtualizationRoot: join(dir, 'var-virtualization'),
    backupRoot: join(dir, 'backup', 'virtualization'),
    retainRoot: join(dir, 'var-virtualization', 'retain'),
    ramDisk: join(dir, 'ramdisk'),
  };
  mkdirSync(paths.ramDisk, { recursive: true });
  const diskDir = join(paths.virtualizationRoot, 'vm-persistent', pool);
  const disks = (o.disks ?? ['vda']).map((spec) => {
    const d = typeof spec === 'string' ? { target: spec } : spec;
    const dir = d.dir ? join(paths.virtualizationRoot, d.dir) : diskDir;
    return { target: d.target, path: join(dir, d.file ?? `${vm}-${d.target}.disk.qcow2`) };
  });

  const slapd = await startSlapd({
    dir: join(dir, 'ldap'),
    port: await freePort(),
    suffix: DEMO_SUFFIX,
    rootDn: DEMO_ROOT_DN,
    rootPassword: PASSWORD,
    seedLdif: renderDemoDirectory({
      node,
      vm,
      pool,
      disk: disks[0]!.path,
      backupRootUri: `file://${paths.backupRoot}`,
      retainUri: `file://${paths.retainRoot}`,
      ramDisk: paths.ramDisk,
      group: 'vm-storage',
    }),
  });
  const configFile = join(dir, 'kvm-backup.conf');
  const secretFile = join(dir, 'ldap.secret');
  writeFileSync(secretFile, `${PASSWORD}\n`, { mode: 0o600 });
  const url = new URL(slapd.url);
  writeFileSync(
    configFile,
    [
      '[Global]',
      `ENVIRONMENT = ${node}`,
      '[Database]',
      'BACKEND = LDAP',
      `SERVER = ${url.hostname}`,
      `PORT = ${url.port}`,
      `ADMIN_USER = ${DEMO_ROOT_DN}`,
      `ADMIN_PASSWORD_FILE = ${secretFile}`,
      `SERVICE_SUBTREE = ${DEMO_SERVICE_SUBTREE}`,
      `COOKIE_FILE = ${join(dir, 'cookie')}`,
      'DEFAULT_COOKIE = rid=001,csn=',
      `STONEY_CLOUD_WIDE_CONFIGURATION = ${DEMO_CLOUD_WIDE_DN}`,
      '[Backup]',
      `VIRTUALIZATION_ROOT = ${paths.virtualizationRoot}`,
      ...Object.entries(o.backupIni ?? {}).map(([k, v]) => `${k} = ${v}`),
      ...Object.entries(o.extraIni ?? {}).flatMap(([section, keys]) => [`[${section}]`, ...Object.entries(keys).map(([k, v]) => `${k} = ${v}`)]),
      '[Temporal]',
      `CONTROL_TASK_QUEUE = ${node}.control`,
      ...Object.entries(o.temporalIni ?? {}).map(([k, v]) => `${k} = ${v}`),
      '',
    ].join('\n'),
  );
  const { readFileSync } = await import('node:fs');
  const config = parseGlobalConfig(readFileSync(configFile, 'utf8'), {
    env: { TEMPORAL_ADDRESS: temporalTarget().address },
    readSecretFile: (p) => readFileSync(p, 'utf8'),
    temporalProfiles: loadTemporalProfiles,
  });
  const directory = LdapClient.perCall({ url: config.database.url, bindDn: config.database.bindDn, password: config.database.password });

  for (const d of disks.slice(1)) await addDiskEntry(directory, vm, d.target, d.path);

  const virsh = new Virsh(LIBVIRT_URI);
  const domain = o.noVm
    ? undefined
    : await createTinyVm({
        name: vm,
        disks: disks.map((d) => ({ ...d, sizeMiB: 64 })),
        memoryMiB: o.memoryMiB ?? 64,
        xmlFile: join(dir, `${vm}.xml`),
        start: o.startVm !== false,
      });

  const client = await connectClient(temporalTarget());
  await ensureSearchAttributes(client, temporalTarget().namespace);
  const controlQueue = `${node}.control`;
  const running: RunningWorkers[] = [];
  const startAllWorkers: World['startWorkers'] = async (opts = {}) => {
    const w = await startWorkers(
      config,
      { node: opts.node ?? true, control: opts.control ?? true },
      { controlQueue, ...(opts.wrapNodeDeps ? { wrapNodeDeps: opts.wrapNodeDeps } : {}), ...(opts.wrapControlDeps ? { wrapControlDeps: opts.wrapControlDeps } : {}) },
    );
    running.push(w);
    return w;
  };

  return {
    dir,
    node,
    vm,
    pool,
    slapd,
    directory,
    config,
    configFile,
    virsh,
    ...(domain ? { domain } : {}),
    disks,
    paths,
    client,
    controlQueue,
    startWorkers: startAllWorkers,
    close: async () => {
      await domain?.remove();
      await slapd.stop();
      for (const w of running) await w.shutdown().catch(() => undefined);
      await client.connection.close();
    },
  };
}
