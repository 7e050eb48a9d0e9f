/**
 * A tiny no-OS VM (SeaBIOS idles at "No bootable device", OVMF at its shell) with real disks: enough
 * for libvirt to save, snapshot, block-commit and restore it, and for HMP qemu-io to write known
 * bytes into its disks while it runs (docs/architecture.md, test/; a write is seen from the host only
 * after a flush). Beyond one qcow2 disk it can carry the shapes sites run (test/helpers/shapes.ts):
 * raw, block and CD-ROM devices, images made by the caller (backing chains), UEFI with a per-VM
 * NVRAM file, an emulated TPM, a transient or paused or shut-off domain.
 */
import { chmodSync, statSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { execa } from 'execa';
import { DomainNotFoundError, Virsh } from '../adapters/host/virsh.js';
import { domainType, LIBVIRT_URI } from './libvirt.js';

/** Escapes text for an XML attribute or element written here with single-quoted attributes. */
function xmlEscape(text: string): string {
  return text.replace(/[&<>'"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' })[c]!);
}

export interface TinyDisk {
  /** Image path (file disks), device node (block disks); absent only for an empty CD-ROM drive. */
  path?: string;
  /** libvirt target, e.g. vda, hdc, sda. */
  target: string;
  /** Size of the image createTinyVm makes (MiB); default 64. */
  sizeMiB?: number;
  /** `<driver type=…>`: the format of the image (its top, for a chain); default qcow2. */
  format?: 'qcow2' | 'raw';
  /** `<disk device=…>`; default disk. */
  device?: 'disk' | 'cdrom';
  /** `<disk type=…>`: file (`<source file>`) or block (`<source dev>`); default file. */
  type?: 'file' | 'block';
  /** `<target bus=…>`; default virtio for disks, ide for CD-ROMs (the pc machine has an IDE controller). */
  bus?: 'virtio' | 'sata' | 'ide';
  readonly?: boolean;
  /**
   * False: the caller made the image (a clone over a template, a device): createTinyVm only checks
   * nothing and defines. Default: createTinyVm makes an empty image of `format` for a file disk.
   */
  create?: boolean;
}

/** UEFI: OVMF's pflash code read-only, and the VM's own variable store made from a template. */
export interface TinyFirmware {
  /** e.g. /usr/share/OVMF/OVMF_CODE_4M.fd */
  loader: string;
  /** e.g. /usr/share/OVMF/OVMF_VARS_4M.fd */
  nvramTemplate: string;
  /** The VM's VARS file (libvirt makes it from the template at the first start when missing). */
  nvram: string;
}

export interface TinyDomainExtras {
  /** `<uuid>`; libvirt picks one when absent. */
  uuid?: string;
  firmware?: TinyFirmware;
  /** An emulated TPM 2.0 (swtpm, `tpm-crb`); its state lives in /var/lib/libvirt/swtpm/<uuid>/. */
  tpm?: boolean;
}

export interface TinyVmOptions extends TinyDomainExtras {
  name: string;
  disks: TinyDisk[];
  memoryMiB?: number;
  /** Where the domain XML is written. */
  xmlFile: string;
  /** Shorthand of the past: false = `state: 'shut off'`. */
  start?: boolean;
  /** The state the domain is left in; default running. `paused` is `virsh suspend` after the start. */
  state?: 'running' | 'paused' | 'shut off';
  /** `virsh create` instead of define + start: no persistent definition (a shut-off transient VM does not exist). */
  transient?: boolean;
  /** Domain type; default kvm where it works (stack/libvirt.ts). OVMF needs 'qemu' (TCG) on this machine. */
  domainType?: 'kvm' | 'qemu';
  /** Mark the directories world-traversable so QEMU (user libvirt-qemu) can reach the images. */
  openDirectories?: boolean;
}

export interface TinyVm {
  name: string;
  virsh: Virsh;
  xml: string;
  /** Destroy (if running) and undefine (with its NVRAM and TPM state); safe to call twice. */
  remove(): Promise<void>;
}

function diskXml(d: TinyDisk): string {
  const device = d.device ?? 'disk';
  const type = d.type ?? 'file';
  const bus = d.bus ?? (device === 'cdrom' ? 'ide' : 'virtio');
  const format = d.format ?? (device === 'cdrom' ? 'raw' : 'qcow2');
  const source = d.path === undefined ? '' : `\n      <source ${type === 'block' ? 'dev' : 'file'}='${xmlEscape(d.path)}'/>`;
  const readonly = d.readonly || device === 'cdrom' ? '\n      <readonly/>' : '';
  return `    <disk type='${type}' device='${device}'>
      <driver name='qemu' type='${format}'/>${source}
      <target dev='${d.target}' bus='${bus}'/>${readonly}
    </disk>`;
}

export function tinyDomainXml(name: string, type: 'kvm' | 'qemu', memoryMiB: number, disks: TinyDisk[], extras: TinyDomainExtras = {}): string {
  const fw = extras.firmware;
  const os = fw
    ? `<os><type arch='x86_64' machine='pc'>hvm</type><loader readonly='yes' type='pflash'>${xmlEscape(fw.loader)}</loader>` +
      `<nvram template='${xmlEscape(fw.nvramTemplate)}'>${xmlEscape(fw.nvram)}</nvram><boot dev='hd'/></os>`
    : `<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>`;
  const tpm = extras.tpm ? "\n    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>" : '';
  return `<domain type='${type}'>
  <name>${name}</name>${extras.uuid ? `\n  <uuid>${extras.uuid}</uuid>` : ''}
  <memory unit='MiB'>${memoryMiB}</memory>
  <currentMemory unit='MiB'>${memoryMiB}</currentMemory>
  <vcpu>1</vcpu>
  ${os}
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
${disks.map(diskXml).join('\n')}${tpm}
    <serial type='pty'/><console type='pty'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** Makes every directory from `dir` up to / traversable (o+x), as QEMU runs as libvirt-qemu. */
export function openPath(dir: string): void {
  for (let d = dir; d !== '/'; d = dirname(d)) {
    try {
      // add read and search for others; never take a bit away (/tmp keeps its sticky, world-writable mode)
      chmodSync(d, (statSync(d).mode & 0o7777) | 0o005);
    } catch {
      return;
    }
  }
}

export async function createTinyVm(o: TinyVmOptions): Promise<TinyVm> {
  if (!/^[A-Za-z0-9_.-]+$/.test(o.name)) throw new Error(`bad VM name ${o.name}`);
  const virsh = new Virsh(LIBVIRT_URI);
  for (const d of o.disks) {
    if (d.path === undefined || (d.type ?? 'file') === 'block') continue;
    mkdirSync(dirname(d.path), { recursive: true });
    if (o.openDirectories !== false) openPath(dirname(d.path));
    if (d.create === false) continue;
    await execa('qemu-img', ['create', '-q', '-f', d.format ?? 'qcow2', d.path, `${d.sizeMiB ?? 64}M`]);
  }
  const extras: TinyDomainExtras = { ...(o.uuid ? { uuid: o.uuid } : {}), ...(o.firmware ? { firmware: o.firmware } : {}), ...(o.tpm ? { tpm: true } : {}) };
  const xml = tinyDomainXml(o.name, o.domainType ?? (await domainType()), o.memoryMiB ?? 64, o.disks, extras);
  mkdirSync(dirname(o.xmlFile), { recursive: true });
  writeFileSync(o.xmlFile, xml);
  const state = o.state ?? (o.start === false ? 'shut off' : 'running');
  const remove = async () => {
    try {
      if (await virsh.isActive(o.name)) await virsh.destroy(o.name);
      // --nvram: libvirt refuses to undefine a domain with NVRAM without it; TPM state goes by default
      await virsh.exec(['undefine', o.name, '--nvram', '--snapshots-metadata', '--checkpoints-metadata'], {}, o.name);
    } catch (e) {
      if (!(e instanceof DomainNotFoundError)) throw e;
    }
    // what a restore recreated, or an undefine that kept it (transient domains leave their NVRAM)
    if (o.firmware) rmSync(o.firmware.nvram, { force: true });
    if (o.tpm && o.uuid) rmSync(`/var/lib/libvirt/swtpm/${o.uuid}`, { recursive: true, force: true });
  };
  try {
    if (o.transient) {
      if (state === 'shut off') throw new Error(`a transient domain cannot be shut off (${o.name})`);
      await virsh.exec(['create', o.xmlFile]);
    } else {
      await virsh.define(o.xmlFile);
      if (state !== 'shut off') await virsh.start(o.name);
    }
    if (state === 'paused') await virsh.suspend(o.name);
  } catch (e) {
    await remove().catch(() => undefined);
    throw e;
  }
  return { name: o.name, virsh, xml, remove };
}

/**
 * Writes a byte pattern into a running guest's disk through HMP qemu-io (the guest has no OS),
 * then flushes: without the flush, qcow2 metadata may still sit in QEMU's cache and a host-side
 * read of the image does not see the write yet.
 */
export async function guestWrite(virsh: Virsh, domain: string, target: string, pattern: number, offset: string, length: string): Promise<void> {
  const device = `/machine/peripheral/virtio-disk${diskIndex(target)}/virtio-backend`;
  await virsh.hmp(domain, `qemu-io -d ${device} "write -P 0x${pattern.toString(16)} ${offset} ${length}"`);
  await virsh.hmp(domain, `qemu-io -d ${device} "flush"`);
}

function diskIndex(target: string): number {
  const m = /^vd([a-z])$/.exec(target);
  if (!m) throw new Error(`guestWrite supports virtio targets vda…vdz, not ${target}`);
  return m[1]!.charCodeAt(0) - 'a'.charCodeAt(0);
}

/**
 * Checks from the host that `image` holds `pattern` over the range (qemu-io -U -r; exit 1 on a
 * mismatch). Returns false on mismatch rather than throwing, so tests can assert both ways. `format`
 * is the format of `image` itself (default qcow2); a qcow2 image with backing files is read through
 * its chain; a block device is read as raw.
 */
export async function hostHasPattern(image: string, pattern: number, offset: string, length: string, format: 'qcow2' | 'raw' = 'qcow2'): Promise<boolean> {
  const r = await execa('qemu-io', ['-U', '-r', '-f', format, '-c', `read -P 0x${pattern.toString(16)} ${offset} ${length}`, image], {
    reject: false,
  });
  if (r.exitCode === 0 && !/fail/i.test(r.stdout)) return true;
  if (/Pattern verification failed/i.test(r.stdout)) return false;
  throw new Error(`qemu-io could not read ${image}: ${r.stderr || r.stdout}`);
}

/**
 * Writes `pattern` into `image` from the host (qemu-io, then its exit flushes). Only while no QEMU
 * has the image open: QEMU's write lock refuses a second writer (Failed to get "write" lock), and
 * a raw block device has no lock at all, so the caller must know the VM is not running.
 */
export async function hostWrite(image: string, pattern: number, offset: string, length: string, format: 'qcow2' | 'raw' = 'qcow2'): Promise<void> {
  const r = await execa('qemu-io', ['-f', format, '-c', `write -P 0x${pattern.toString(16)} ${offset} ${length}`, image], { reject: false });
  if (r.exitCode !== 0 || /fail|error/i.test(r.stdout)) throw new Error(`qemu-io could not write ${image}: ${r.stderr || r.stdout}`);
}

/**
 * Writes the bytes of `file` (random data, say: what compression and deduplication cannot shrink)
 * into the running guest's disk at `offset`, through QEMU's own block layer (HMP qemu-io `write -s`),
 * as the guest would; then flushes. QEMU reads `file`, so it must be readable by its user.
 */
export async function guestWriteFile(virsh: Virsh, domain: string, target: string, file: string, offset: string, length: string): Promise<void> {
  const device = `/machine/peripheral/virtio-disk${diskIndex(target)}/virtio-backend`;
  // hmp() fails on any answer: qemu-io prints nothing to the monitor when the write succeeds
  await virsh.hmp(domain, `qemu-io -d ${device} "write -s ${file} ${offset} ${length}"`);
  await virsh.hmp(domain, `qemu-io -d ${device} "flush"`);
}
