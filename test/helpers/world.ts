/**
 * A complete, real test world for one test file: its own slapd with the stoney cloud schema and the
 * demo directory, a tiny running VM with real qcow2 disks laid out as on a stoney cloud node, a
 * global INI file pointing at both, and (on request) a node worker and a control worker on task
 * queues of their own. Everything is removed again by `close()`.
 *
 * The VM may have another shape than one qcow2 disk (test/helpers/shapes.ts): `shape` makes its images
 * (templates, chains, devices) once the world's names and directories exist, and says which devices
 * the domain has and how it runs; the directory then gets one disk entry per device, as on a stoney
 * cloud node, matching the domain XML.
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
import { createTinyVm, openPath, type TinyDisk, type TinyVm, type TinyVmOptions } from '../../stack/tiny-vm.js';
import { startWorkers, type RunningWorkers } from '../../workers/run-workers.js';
import { connectClient, ensureSearchAttributes } from '../../adapters/temporal/connection.js';
import { loadTemporalProfiles } from '../../adapters/temporal/profile.js';
import { temporalTarget, testDir, uniqueName } from './names.js';

/**
 * One device of the VM. `path` (absolute: a disk outside the virtualization root, a device node)
 * wins over `dir` (relative to the virtualization root) and `file`; an empty CD-ROM drive has neither.
 * The rest is stack/tiny-vm.ts's TinyDisk: format, device, type, bus, readonly, create.
 */
export interface WorldDisk extends Omit<TinyDisk, 'path'> {
  dir?: string;
  file?: string;
  path?: string;
}

/** How the domain runs, beyond its devices (stack/tiny-vm.ts). */
export type WorldDomain = Pick<TinyVmOptions, 'state' | 'transient' | 'domainType' | 'uuid' | 'firmware' | 'tpm'>;

/** What a shape builder sees before the VM exists: the names and directories of the world. */
export interface WorldContext {
  dir: string;
  vm: string;
  pool: string;
  paths: World['paths'];
  /** <virtualization root>/vm-persistent/<pool>: where stoney cloud keeps a VM's own images. */
  diskDir: string;
  /** Runs at `close()`, after the VM is removed, last registered first (loop devices, sibling VMs, files). */
  onClose(cleanup: () => Promise<void> | void): void;
}

export interface WorldShape {
  disks?: Array<string | WorldDisk>;
  domain?: WorldDomain;
}

export interface WorldOptions {
  label: string;
  /**
   * Disks, default ['vda']: a target, or a target with its directory (relative to the
   * virtualization root) and file name. The first is in the demo LDIF, others are added to LDAP.
   */
  disks?: Array<string | WorldDisk>;
  /** Makes the images of another shape and returns its devices and domain options (wins over `disks`). */
  shape?: (ctx: WorldContext) => Promise<WorldShape>;
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

/** A disk (sstDevice disk) of the world's VM: an image file, or a device node for `type: 'block'`. */
export interface WorldDiskInfo {
  target: string;
  path: string;
  format: 'qcow2' | 'raw';
  type: 'file' | 'block';
  bus: 'virtio' | 'sata' | 'ide';
}

/** A CD-ROM drive of the world's VM; `path` is its image, absent when the drive is empty. */
export interface WorldCdrom {
  target: string;
  path?: string;
  bus: 'virtio' | 'sata' | 'ide';
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
  /** The VM's disks (device disk), in directory order: what a backup copies. */
  disks: WorldDiskInfo[];
  /** The VM's CD-ROM drives (in the directory as sstDevice cdrom, never backed up). */
  cdroms: WorldCdrom[];
  /** Domain options the world was built with (state, transient, firmware, TPM, uuid). */
  domainOptions: WorldDomain;
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
  await addDeviceEntry(directory, vm, { target, path });
}

/**
 * The directory entry of one device as stoney cloud writes it (schema/stoney-cloud.schema,
 * sstVirtualizationVirtualMachineDisk): a CD-ROM is `sstDevice: cdrom` with `sstSourceFile` only
 * when it holds an image; a block disk is `sstType: block` with its node in `sstSourceDevice`.
 */
export function diskEntryAttributes(d: TinyDisk): Record<string, string | string[]> {
  const device = d.device ?? 'disk';
  const type = d.type ?? 'file';
  return {
    objectClass: ['top', 'sstVirtualizationVirtualMachineDisk'],
    sstDisk: d.target,
    sstDevice: device,
    sstType: type,
    sstTargetBus: d.bus ?? (device === 'cdrom' ? 'ide' : 'virtio'),
    sstDriverName: 'qemu',
    sstDriverType: d.format ?? (device === 'cdrom' ? 'raw' : 'qcow2'),
    ...(d.readonly || device === 'cdrom' ? { sstReadonly: 'TRUE' } : {}),
    ...(d.path === undefined ? {} : type === 'block' ? { sstSourceDevice: d.path } : { sstSourceFile: d.path }),
  };
}

export async function addDeviceEntry(directory: LdapClient, vm: string, d: TinyDisk): Promise<void> {
  await directory.add(`sstDisk=${d.target},ou=devices,${vmDn(DEMO_SERVICE_SUBTREE, vm)}`, diskEntryAttributes(d));
}

/** The one disk entry the demo LDIF seeds (sstDisk=vda, a qcow2 file on virtio); others are added. */
function seededByDemo(d: TinyDisk): boolean {
  return d.target === 'vda' && (d.device ?? 'disk') === 'disk' && (d.type ?? 'file') === 'file' && (d.format ?? 'qcow2') === 'qcow2' && (d.bus ?? 'virtio') === 'virtio' && !d.readonly && d.path !== undefined;
}

/** Runs every cleanup, last registered first, even after one fails; throws the first failure. */
async function runCleanups(cleanups: Array<() => Promise<void> | void>): Promise<void> {
  let first: unknown;
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== undefined) throw first;
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
  // undone last first by close(), or at once if building the world fails halfway
  const cleanups: Array<() => Promise<void> | void> = [];
  try {
    return await populateWorld();
  } catch (e) {
    await runCleanups(cleanups).catch((c) => console.error(`world ${vm}: cleanup after a failed build failed:`, c));
    throw e;
  }

  async function populateWorld(): Promise<World> {
    const shape: WorldShape = o.shape
      ? await o.shape({ dir, vm, pool, paths, diskDir, onClose: (c) => void cleanups.push(c) })
      : { ...(o.disks ? { disks: o.disks } : {}) };
    const devices: TinyDisk[] = (shape.disks ?? ['vda']).map((spec) => {
      const d: WorldDisk = typeof spec === 'string' ? { target: spec } : spec;
      const { dir: sub, file, path, ...rest } = d;
      const empty = (d.device ?? 'disk') === 'cdrom' && path === undefined && file === undefined;
      if (empty) return rest;
      const at = path ?? join(sub ? join(paths.virtualizationRoot, sub) : diskDir, file ?? `${vm}-${d.target}.disk.qcow2`);
      return { ...rest, path: at };
    });
    const disks: WorldDiskInfo[] = devices
      .filter((d) => (d.device ?? 'disk') === 'disk')
      .map((d) => ({ target: d.target, path: d.path!, format: d.format ?? 'qcow2', type: d.type ?? 'file', bus: d.bus ?? 'virtio' }));
    const cdroms: WorldCdrom[] = devices
      .filter((d) => d.device === 'cdrom')
      .map((d) => ({ target: d.target, ...(d.path !== undefined ? { path: d.path } : {}), bus: d.bus ?? 'ide' }));
    const seeded = devices[0] && seededByDemo(devices[0]) ? devices[0] : undefined;

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
        // the demo LDIF always has sstDisk=vda; a VM of another shape gets it replaced below
        disk: seeded?.path ?? '/nonexistent/replaced.qcow2',
        backupRootUri: `file://${paths.backupRoot}`,
        retainUri: `file://${paths.retainRoot}`,
        ramDisk: paths.ramDisk,
        group: 'vm-storage',
      }),
    });
    cleanups.push(() => slapd.stop());
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

    if (!seeded) await directory.deleteTree(`sstDisk=vda,ou=devices,${vmDn(DEMO_SERVICE_SUBTREE, vm)}`);
    for (const d of devices) if (d !== seeded) await addDeviceEntry(directory, vm, d);

    const virsh = new Virsh(LIBVIRT_URI);
    const domainOptions: WorldDomain = shape.domain ?? {};
    const domain = o.noVm
      ? undefined
      : await createTinyVm({
          name: vm,
          disks: devices.map((d) => ({ sizeMiB: 64, ...d })),
          memoryMiB: o.memoryMiB ?? 64,
          xmlFile: join(dir, `${vm}.xml`),
          ...(o.startVm === false ? { state: 'shut off' as const } : {}),
          ...domainOptions,
        });
    if (domain) cleanups.push(() => domain.remove());

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
      cdroms,
      domainOptions,
      paths,
      client,
      controlQueue,
      startWorkers: startAllWorkers,
      close: async () => {
        await runCleanups(cleanups);
        for (const w of running) await w.shutdown().catch(() => undefined);
        await client.connection.close();
      },
    };
  }
}
