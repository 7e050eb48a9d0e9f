/**
 * What a test reads and writes from the host around a VM of any shape (test/helpers/shapes.ts):
 * known bytes into a disk whatever the VM's run state, those bytes read back through the image's
 * backing chain, the chain itself, file hashes (templates, TPM state), the domain's run state and
 * persistence, a marker in a UEFI variable store, loop devices.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, openSync, closeSync, readSync, writeSync, readFileSync, readdirSync } from 'node:fs';
import { execa } from 'execa';
import { DomainNotFoundError, type Virsh } from '../../adapters/host/virsh.js';
import { domainDisks, type DomainDisk } from '../../core/domain-xml.js';
import { value } from '../../core/ldap-entry.js';
import { vmDn } from '../../core/naming.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { guestWrite, hostHasPattern, hostWrite } from '../../stack/tiny-vm.js';
import type { World } from './world.js';

export type ImageFormat = 'qcow2' | 'raw';

/** sha256 (hex) of a file or device, read from the host. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** One image of a backing chain, top first, as `qemu-img info --backing-chain` reports it. */
export interface ChainLink {
  path: string;
  format: string;
  /** The backing file as written in the image header (may be relative), when there is one. */
  backing?: string;
  /** Its format as written in the header (`-F`), when recorded. */
  backingFormat?: string;
}

/** The backing chain of `image`, top first (`qemu-img info --backing-chain -U --output=json`; -U: the VM may hold it). */
export async function backingChain(image: string): Promise<ChainLink[]> {
  const { stdout } = await execa('qemu-img', ['info', '--backing-chain', '-U', '--output=json', image]);
  const parsed = JSON.parse(stdout) as Array<Record<string, unknown>> | Record<string, unknown>;
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list.map((i) => ({
    path: String(i['filename']),
    format: String(i['format']),
    ...(i['full-backing-filename'] ? { backing: String(i['full-backing-filename']) } : {}),
    ...(i['backing-filename-format'] ? { backingFormat: String(i['backing-filename-format']) } : {}),
  }));
}

/** The paths of `image`'s chain, top first. */
export async function chainPaths(image: string): Promise<string[]> {
  return (await backingChain(image)).map((l) => l.path);
}

export interface RunState {
  exists: boolean;
  /** running, paused, shut off, … (`virsh domstate --reason`) */
  state?: string;
  /** booted, user, migrating, … */
  reason?: string;
  /** `dominfo` Persistent: yes|no */
  persistent?: boolean;
}

/** Whether the domain exists, its state with the reason, and whether it has a persistent definition. */
export async function runState(virsh: Virsh, domain: string): Promise<RunState> {
  try {
    const { state, reason } = await virsh.state(domain);
    const info = await virsh.exec(['dominfo', domain], {}, domain);
    const persistent = /^Persistent:\s+(\S+)/m.exec(info)?.[1];
    return { exists: true, state, reason, persistent: persistent === 'yes' };
  } catch (e) {
    if (e instanceof DomainNotFoundError) return { exists: false };
    throw e;
  }
}

/** The devices of the domain's current XML (live when it runs, else its definition). */
export async function xmlDevices(virsh: Virsh, domain: string): Promise<DomainDisk[]> {
  return domainDisks(await virsh.dumpXml(domain));
}

/** One device entry of the VM in the directory, in the terms of the domain XML. */
export interface LdapDevice {
  device: string;
  type: string;
  target: string;
  /** sstSourceFile, or sstSourceDevice for block disks; '' for an empty CD-ROM drive. */
  source: string;
  format?: string;
}

/** The VM's device entries (ou=devices), every sstDevice. */
export async function ldapDevices(w: World): Promise<LdapDevice[]> {
  const entries = await w.directory.search(`ou=devices,${vmDn(DEMO_SERVICE_SUBTREE, w.vm)}`, {
    scope: 'one',
    filter: '(objectClass=sstVirtualizationVirtualMachineDisk)',
  });
  return entries.map((e) => {
    const format = value(e, 'sstDriverType');
    return {
      device: value(e, 'sstDevice') ?? '',
      type: value(e, 'sstType') ?? '',
      target: value(e, 'sstDisk') ?? '',
      source: value(e, 'sstSourceDevice') ?? value(e, 'sstSourceFile') ?? '',
      ...(format ? { format } : {}),
    };
  });
}

/**
 * Devices grouped by device type (disk, cdrom), each sorted by target, as `target type format source`:
 * the form LDAP and XML are compared in. An empty drive has no format: the live XML of a running VM
 * drops `<driver type>` of an empty CD-ROM (libvirt 9.0), its definition keeps it.
 */
export function byDeviceType(list: Array<{ device: string; type: string; target: string; source: string; format?: string }>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const d of [...list].sort((a, b) => a.target.localeCompare(b.target))) {
    (out[d.device] ??= []).push(d.source ? `${d.target} ${d.type} ${d.format ?? '?'} ${d.source}` : `${d.target} ${d.type} (empty)`);
  }
  return out;
}

/** The top image of `target` and its format, from the domain's current XML. */
export async function topImage(virsh: Virsh, domain: string, target: string): Promise<{ path: string; format: ImageFormat }> {
  const d = (await xmlDevices(virsh, domain)).find((x) => x.target === target);
  if (!d || !d.source) throw new Error(`${domain} has no disk ${target} with a source`);
  return { path: d.source, format: d.format === 'raw' ? 'raw' : 'qcow2' };
}

/**
 * Writes `pattern` into `target` of the world's VM, whatever its state:
 * - running: HMP qemu-io in the guest, flushed (stack/tiny-vm.ts guestWrite);
 * - paused: resume, write as running, suspend again. Writing into a paused VM directly crashes QEMU
 *   when its block nodes are inactive, which they are right after a memory snapshot of a paused VM;
 *   a resume reactivates them (measured on QEMU 7.2);
 * - shut off: qemu-io from the host on the top image of the definition (nothing else holds it).
 * Only virtio targets (vd*) run through the guest.
 */
export async function writeDisk(w: World, target: string, pattern: number, offset: string, length: string): Promise<void> {
  const { state } = await w.virsh.state(w.vm);
  if (state === 'running') return guestWrite(w.virsh, w.vm, target, pattern, offset, length);
  if (state === 'paused') {
    await w.virsh.resume(w.vm);
    try {
      await guestWrite(w.virsh, w.vm, target, pattern, offset, length);
    } finally {
      await w.virsh.suspend(w.vm);
    }
    return;
  }
  if (state === 'shut off') {
    const top = await topImage(w.virsh, w.vm, target);
    return hostWrite(top.path, pattern, offset, length, top.format);
  }
  throw new Error(`cannot write into ${w.vm} while it is ${state}`);
}

/** True if `target`'s current top image (read through its chain, from the host) holds `pattern` over the range. */
export async function diskHas(w: World, target: string, pattern: number, offset: string, length: string): Promise<boolean> {
  const top = await topImage(w.virsh, w.vm, target);
  return hostHasPattern(top.path, pattern, offset, length, top.format);
}

// ---- UEFI variable store ---------------------------------------------------------------------

/**
 * Where a test marker goes in an OVMF_VARS_4M.fd copy (540672 bytes): the last 4 KiB, past the
 * variable store (0x0-0x40000), the fault-tolerant-write working block (0x41000) and its spare area
 * (0x42000-0x82000), all 0xFF in the template. OVMF does not touch it while it runs (checked by
 * test/integration/shapes-harness.test.ts).
 */
export const NVRAM_MARKER_OFFSET = 0x83000;

export function writeNvramMarker(path: string, marker: Buffer, offset = NVRAM_MARKER_OFFSET): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, marker, 0, marker.length, offset);
  } finally {
    closeSync(fd);
  }
}

export function readNvramMarker(path: string, length: number, offset = NVRAM_MARKER_OFFSET): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The variable store proper (first 256 KiB), where OVMF writes its variables: changes once the firmware ran. */
export function nvramVariableStore(path: string): Buffer {
  return readFileSync(path).subarray(0, 0x40000);
}

// ---- TPM -----------------------------------------------------------------------------------

/** libvirt's swtpm state directory of a domain (root 0711; tpm2/ is tss 0700). */
export function tpmStateDir(uuid: string): string {
  return `/var/lib/libvirt/swtpm/${uuid}`;
}

/** The TPM 2.0 state file swtpm keeps for a domain. */
export function tpmStateFile(uuid: string): string {
  return `${tpmStateDir(uuid)}/tpm2/tpm2-00.permall`;
}

// ---- loop devices ----------------------------------------------------------------------------

/** Attaches `file` to the next free loop device (`losetup -f --show`); returns /dev/loopN. */
export async function attachLoop(file: string): Promise<string> {
  return (await execa('losetup', ['-f', '--show', file])).stdout.trim();
}

/** Detaches `device` if it is still attached to `file` (never another test's device that took the number). */
export async function detachLoop(device: string, file: string): Promise<void> {
  if (loopBackingFile(device) === file) await execa('losetup', ['-d', device]);
}

/** The file behind /dev/loopN (/sys/block/loopN/loop/backing_file), or undefined when it is not attached. */
export function loopBackingFile(device: string): string | undefined {
  const sys = `/sys/block/${device.replace(/^\/dev\//, '')}/loop/backing_file`;
  return existsSync(sys) ? readFileSync(sys, 'utf8').trim() : undefined;
}

/** Loop devices whose backing file lies below `dir` (a run's directory: what its tests left attached). */
export function loopDevicesBelow(dir: string): string[] {
  if (!existsSync('/sys/block')) return [];
  return readdirSync('/sys/block')
    .filter((d) => d.startsWith('loop'))
    .map((d) => `/dev/${d}`)
    .filter((dev) => loopBackingFile(dev)?.startsWith(`${dir}/`));
}
