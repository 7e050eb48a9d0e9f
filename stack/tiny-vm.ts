/**
 * A tiny no-OS VM (SeaBIOS idles at "No bootable device") with real qcow2 disks: enough for libvirt
 * to save, snapshot, block-commit and restore it, and for HMP qemu-io to write known bytes into its
 * disks while it runs (docs/architecture.md, test/; a write is seen from the host only after a flush).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { DomainNotFoundError, Virsh } from '../adapters/host/virsh.js';
import { domainType, LIBVIRT_URI } from './libvirt.js';

export interface TinyDisk {
  path: string;
  target: string;
  sizeMiB?: number;
}

export interface TinyVmOptions {
  name: string;
  disks: TinyDisk[];
  memoryMiB?: number;
  /** Where the domain XML is written. */
  xmlFile: string;
  start?: boolean;
  /** Mark the directories world-traversable so QEMU (user libvirt-qemu) can reach the images. */
  openDirectories?: boolean;
}

export interface TinyVm {
  name: string;
  virsh: Virsh;
  xml: string;
  /** Destroy (if running) and undefine; safe to call twice. */
  remove(): Promise<void>;
}

export function tinyDomainXml(name: string, type: 'kvm' | 'qemu', memoryMiB: number, disks: TinyDisk[]): string {
  const diskXml = disks
    .map(
      (d) => `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${d.path}'/>
      <target dev='${d.target}' bus='virtio'/>
    </disk>`,
    )
    .join('\n');
  return `<domain type='${type}'>
  <name>${name}</name>
  <memory unit='MiB'>${memoryMiB}</memory>
  <currentMemory unit='MiB'>${memoryMiB}</currentMemory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
${diskXml}
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
      chmodSync(d, 0o755);
    } catch {
      return;
    }
  }
}

export async function createTinyVm(o: TinyVmOptions): Promise<TinyVm> {
  if (!/^[A-Za-z0-9_.-]+$/.test(o.name)) throw new Error(`bad VM name ${o.name}`);
  const virsh = new Virsh(LIBVIRT_URI);
  for (const d of o.disks) {
    mkdirSync(dirname(d.path), { recursive: true });
    if (o.openDirectories !== false) openPath(dirname(d.path));
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', d.path, `${d.sizeMiB ?? 64}M`]);
  }
  const xml = tinyDomainXml(o.name, await domainType(), o.memoryMiB ?? 64, o.disks);
  mkdirSync(dirname(o.xmlFile), { recursive: true });
  writeFileSync(o.xmlFile, xml);
  await virsh.define(o.xmlFile);
  if (o.start !== false) await virsh.start(o.name);
  const remove = async () => {
    try {
      if (await virsh.isActive(o.name)) await virsh.destroy(o.name);
      await virsh.undefine(o.name);
    } catch (e) {
      if (!(e instanceof DomainNotFoundError)) throw e;
    }
  };
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
 * mismatch). Returns false on mismatch rather than throwing, so tests can assert both ways.
 */
export async function hostHasPattern(image: string, pattern: number, offset: string, length: string): Promise<boolean> {
  const r = await execa('qemu-io', ['-U', '-r', '-f', 'qcow2', '-c', `read -P 0x${pattern.toString(16)} ${offset} ${length}`, image], {
    reject: false,
  });
  if (r.exitCode === 0 && !/fail/i.test(r.stdout)) return true;
  if (/Pattern verification failed/i.test(r.stdout)) return false;
  throw new Error(`qemu-io could not read ${image}: ${r.stderr || r.stdout}`);
}

