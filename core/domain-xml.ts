/**
 * What kvm-backup reads from and changes in libvirt domain XML, parsed and written with
 * @xmldom/xmldom (a DOM parser and serializer in plain JavaScript, no I/O), never with regular
 * expressions: the disks with their backing chains, the domain's firmware and TPM, and the three
 * rewrites of the backup and restore paths (docs/backup.md, docs/restore.md).
 *
 * Shapes follow libvirt's domain format (https://libvirt.org/formatdomain.html); the behaviour they
 * rely on was measured on libvirt 9.0 / QEMU 7.2 (docs/backup.md, "Snapshot").
 *
 * Writing: the rewrites parse the whole document and serialize it again, so a rewritten document
 * differs from its input beyond the change asked for, in ways XML gives no meaning to and libvirt
 * ignores: every attribute is quoted with `"` (`'` inside a value is then written as is, `"` as
 * `&quot;`), `>` in text and attributes is written `&gt;`, character references (`&#233;`) become the
 * character in UTF-8, an element without children is written `<x/>`, CR LF becomes LF. Comments,
 * attribute order, whitespace between elements, CDATA and the XML declaration stay. A rewrite that
 * changes nothing returns the input unchanged, byte for byte. Values are set through the DOM, so
 * paths with `&`, `'`, `"`, `<`, `$&`, `$1`, commas or non-ASCII characters are written as they are.
 *
 * Errors: input that is not well-formed XML (the parser reports a warning, an error or a fatal
 * error) or whose root is not `<domain>` throws DomainXmlError; callers map it to their exit code
 * (a backed-up XML: 45 CANNOT_READ_XML_FILE).
 */
import { DOMParser, XMLSerializer, type Document, type Element, type Node } from '@xmldom/xmldom';

/** The XML is not well-formed or not a libvirt domain. */
export class DomainXmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DomainXmlError';
  }
}

/** One image below a disk: an entry of the disk's nested `<backingStore>` list. */
export interface BackingImage {
  /** `backingStore/@type`: file, block, network, … ('file' when absent). */
  type: string;
  /** `backingStore/format/@type` (qcow2, raw, …), when given. */
  format?: string;
  /** Path or name of the image, as for DomainDisk.source. */
  source: string;
}

/** One `<disk>` of `<devices>`. */
export interface DomainDisk {
  /** `disk/@device`: disk, cdrom, floppy or lun ('disk' when absent, as libvirt defaults). */
  device: string;
  /** `disk/@type`: file, block, network, volume or dir ('file' when absent). */
  type: string;
  /** `target/@dev` (vda, hdc, …); '' when missing. */
  target: string;
  /** `target/@bus` (virtio, ide, sata, scsi, …), when given. */
  bus?: string;
  /**
   * The disk's own `<source>`: `@file` (file), `@dev` (block), `@name` (network), `@volume`
   * (volume), `@dir` (dir), the first one present; '' when the disk has no `<source>` (an empty CD-ROM).
   */
  source: string;
  /** The image format from the disk's `<driver type=…>`, when given. */
  format?: string;
  /** The disk has `<readonly/>`. */
  readonly: boolean;
  /**
   * The backing chain libvirt reports below the disk's own image, from its backing file down:
   * the nested `<backingStore>` elements. An empty `<backingStore/>` ends the chain and is no entry.
   * [] for a standalone image (`<backingStore/>`) and for a chain libvirt did not report (no
   * `<backingStore>` at all: probed when the VM starts).
   */
  chain: BackingImage[];
  /** chain[0]?.source: the image directly below the disk's own, if libvirt reports one. */
  backingSource?: string;
  /** The reported chain ends in an empty `<backingStore/>` (libvirt knows the chain's end). */
  emptyBackingStore: boolean;
  /** The disk has a `<mirror>`: a block job (copy, active commit) runs on it, ours or someone else's. */
  mirror: boolean;
}

/** `<os><loader>`: the firmware code. */
export interface DomainLoader {
  /** The loader's path (the element's text); '' when libvirt is to choose it. */
  path: string;
  /** `@type`: rom or pflash, when given. */
  type?: string;
  /** `@readonly='yes'`. */
  readonly: boolean;
}

/** `<os><nvram>`: the per-VM UEFI variable store. */
export interface DomainNvram {
  /**
   * The per-VM VARS file: the element's text, or `<source file=…>` in libvirt's newer form;
   * '' when libvirt is to choose it.
   */
  path: string;
  /** `@template`: the blank VARS file libvirt copies when the per-VM one is missing. */
  template?: string;
}

/** One `<tpm>` of `<devices>`. */
export interface DomainTpm {
  /** `@model` (tpm-tis, tpm-crb, …), when given. */
  model?: string;
  /** `backend/@type`: emulator (swtpm, state kept by libvirt) or passthrough. */
  backendType: string;
  /** `backend/@version` (1.2, 2.0), when given. */
  version?: string;
}

export interface DomainFirmware {
  /** `os/@firmware` (efi, bios): libvirt picks loader and NVRAM itself, when given. */
  kind?: string;
  loader?: DomainLoader;
  nvram?: DomainNvram;
}

export interface DomainInfo {
  /** `<name>`. */
  name: string;
  /** `<uuid>`, when given. */
  uuid?: string;
  /** `domain/@type`: kvm or qemu (TCG). */
  type: string;
  firmware: DomainFirmware;
  tpms: DomainTpm[];
}

// ---------------------------------------------------------------------------------------------
// parsing

function parse(xml: string): { doc: Document; root: Element } {
  let problem: string | undefined;
  const parser = new DOMParser({
    onError: (level, message) => {
      problem ??= `${level}: ${message}`;
      throw new Error(message); // xmldom stops parsing and throws its ParseError
    },
  });
  let doc: Document;
  try {
    doc = parser.parseFromString(xml, 'text/xml');
  } catch (e) {
    throw new DomainXmlError(`domain XML is not well-formed (${problem ?? (e as Error).message})`);
  }
  const root = doc.documentElement;
  if (!root || root.nodeName !== 'domain') throw new DomainXmlError(`not a libvirt domain XML: the root element is <${root?.nodeName ?? ''}>`);
  return { doc, root };
}

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;

function childElements(parent: Node): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) out.push(n as Element);
  return out;
}

/** Direct children named `name` (never a descendant: a `<mirror>` or `<backingStore>` has its own `<source>`). */
function children(parent: Node, name: string): Element[] {
  return childElements(parent).filter((e) => e.nodeName === name);
}

function child(parent: Node, name: string): Element | undefined {
  return children(parent, name)[0];
}

function attr(el: Element | undefined, name: string): string | undefined {
  return el?.hasAttribute(name) ? el.getAttribute(name)! : undefined;
}

function devices(root: Element): Element[] {
  return children(root, 'devices');
}

function disks(root: Element): Element[] {
  return devices(root).flatMap((d) => children(d, 'disk'));
}

const SOURCE_ATTRIBUTES = ['file', 'dev', 'name', 'volume', 'dir'];

function sourcePath(el: Element): string {
  const source = child(el, 'source');
  for (const a of SOURCE_ATTRIBUTES) {
    const v = attr(source, a);
    if (v !== undefined) return v;
  }
  return '';
}

/** The nested `<backingStore>` list of a disk; `ended` when it stops at an empty `<backingStore/>`. */
function backingChain(disk: Element): { chain: BackingImage[]; ended: boolean } {
  const chain: BackingImage[] = [];
  let store = child(disk, 'backingStore');
  while (store) {
    if (childElements(store).length === 0 && !store.hasAttributes()) return { chain, ended: true };
    const format = attr(child(store, 'format'), 'type');
    chain.push({ type: attr(store, 'type') ?? 'file', ...(format !== undefined ? { format } : {}), source: sourcePath(store) });
    store = child(store, 'backingStore');
  }
  return { chain, ended: false };
}

function diskOf(el: Element): DomainDisk {
  const target = child(el, 'target');
  const bus = attr(target, 'bus');
  const format = attr(child(el, 'driver'), 'type');
  const { chain, ended } = backingChain(el);
  const backingSource = chain[0]?.source;
  return {
    device: attr(el, 'device') ?? 'disk',
    type: attr(el, 'type') ?? 'file',
    target: attr(target, 'dev') ?? '',
    ...(bus !== undefined ? { bus } : {}),
    source: sourcePath(el),
    ...(format !== undefined ? { format } : {}),
    readonly: child(el, 'readonly') !== undefined,
    chain,
    ...(backingSource !== undefined ? { backingSource } : {}),
    emptyBackingStore: ended,
    mirror: child(el, 'mirror') !== undefined,
  };
}

/**
 * Every `<disk>` of the domain's `<devices>`, in document order (CD-ROMs and floppies included).
 * Throws DomainXmlError (see the module comment).
 */
export function domainDisks(xml: string): DomainDisk[] {
  return disks(parse(xml).root).map(diskOf);
}

function text(el: Element | undefined): string {
  return (el?.textContent ?? '').trim();
}

/**
 * Name, UUID, type, firmware and TPMs of a domain. The NVRAM path is `<nvram>`'s text (libvirt ≤ 8.4
 * and 9 alike, with or without `@template`) or its `<source file>` (libvirt's newer form); a domain
 * with `<os firmware='efi'>` may have neither loader nor NVRAM in its inactive XML.
 * Throws DomainXmlError (see the module comment).
 */
export function domainInfo(xml: string): DomainInfo {
  const { root } = parse(xml);
  const os = child(root, 'os');
  const firmware: DomainFirmware = {};
  const kind = attr(os, 'firmware');
  if (kind !== undefined) firmware.kind = kind;
  const loader = os && child(os, 'loader');
  if (loader) {
    const type = attr(loader, 'type');
    firmware.loader = { path: text(loader), ...(type !== undefined ? { type } : {}), readonly: attr(loader, 'readonly') === 'yes' };
  }
  const nvram = os && child(os, 'nvram');
  if (nvram) {
    const template = attr(nvram, 'template');
    const source = child(nvram, 'source');
    const path = source ? sourcePath(nvram) : text(nvram);
    firmware.nvram = { path, ...(template !== undefined ? { template } : {}) };
  }
  const tpms = devices(root)
    .flatMap((d) => children(d, 'tpm'))
    .map((t): DomainTpm => {
      const backend = child(t, 'backend');
      const model = attr(t, 'model');
      const version = attr(backend, 'version');
      return { ...(model !== undefined ? { model } : {}), backendType: attr(backend, 'type') ?? '', ...(version !== undefined ? { version } : {}) };
    });
  const uuid = child(root, 'uuid');
  return {
    name: text(child(root, 'name')),
    ...(uuid ? { uuid: text(uuid) } : {}),
    type: attr(root, 'type') ?? '',
    firmware,
    tpms,
  };
}

// ---------------------------------------------------------------------------------------------
// rewriting

/** Removes an element and the indentation before it, so no blank line is left. */
function removeElement(el: Element): void {
  const before = el.previousSibling;
  if (before && before.nodeType === TEXT_NODE && /^\s*$/.test(before.nodeValue ?? '')) before.parentNode!.removeChild(before);
  el.parentNode!.removeChild(el);
}

/** Removes the disk's own `<backingStore>` (the direct child, with whatever is nested in it). */
function dropBackingStore(disk: Element): boolean {
  const stores = children(disk, 'backingStore');
  for (const s of stores) removeElement(s);
  return stores.length > 0;
}

/** Sets `<driver type>`, adding `<driver name='qemu'>` as the disk's first child if it has none. */
function setDriverType(disk: Element, format: string): void {
  let driver = child(disk, 'driver');
  if (!driver) {
    driver = disk.ownerDocument!.createElement('driver');
    driver.setAttribute('name', 'qemu');
    disk.insertBefore(driver, disk.firstChild);
  }
  driver.setAttribute('type', format);
}

/**
 * Parses `xml`, lets `change` edit each disk (returning true when it changed one) and serializes
 * the document again; returns the input itself when nothing changed.
 */
function rewriteDisks(xml: string, change: (disk: Element) => boolean): string {
  const { doc, root } = parse(xml);
  let changed = false;
  for (const d of disks(root)) if (change(d)) changed = true;
  if (!changed) return xml;
  // xmldom drops whitespace after the root element; libvirt's files end with a newline
  const trailing = /\s*$/.exec(xml)![0].replace(/\r\n?/g, '\n');
  return new XMLSerializer().serializeToString(doc) + trailing;
}

/** The disk's own `<source file>`, when it has one. */
function ownFile(disk: Element): { source: Element; file: string } | undefined {
  const source = child(disk, 'source');
  const file = attr(source, 'file');
  return source && file !== undefined ? { source, file } : undefined;
}

/**
 * For the classic method's `virsh restore --xml` (docs/backup.md, "Snapshot"): each disk whose own
 * `<source file>` is a key of `moves` (image path → overlay path) gets the overlay's path, its
 * `<driver type>` set to `overlayFormat` (kvm-backup's overlays are qcow2 whatever the image's
 * format: a raw image's disk must not open its overlay as raw), and its own `<backingStore>` subtree
 * removed, empty or not, so libvirt probes the overlay's chain (overlay → image → the image's own
 * backing files). Keeping the saved chain, or removing only an empty `<backingStore/>`, makes QEMU
 * put the overlay straight onto the image's backing file and skip the image: the guest loses data.
 * Other disks stay as they are. Throws DomainXmlError.
 */
export function retargetDisks(xml: string, moves: ReadonlyMap<string, string>, overlayFormat = 'qcow2'): string {
  return rewriteDisks(xml, (disk) => {
    const own = ownFile(disk);
    const to = own ? moves.get(own.file) : undefined;
    if (!own || to === undefined) return false;
    own.source.setAttribute('file', to);
    setDriverType(disk, overlayFormat);
    dropBackingStore(disk);
    return true;
  });
}

/**
 * For the XML saved with a backup, and to define a VM on its own images again: each disk whose own
 * `<source file>` is one of our overlays (a key of `overlayToOriginal`, overlay → image) gets the
 * image's path back, `<driver type>` = `formats.get(image)` when known (after an external snapshot
 * libvirt's definition says qcow2 even for a raw image), the `index` attribute of its `<source>`
 * removed, and its own `<backingStore>` subtree removed. Other disks stay as they are.
 * Throws DomainXmlError.
 */
export function withOriginalDisks(
  xml: string,
  overlayToOriginal: ReadonlyMap<string, string>,
  formats: ReadonlyMap<string, string> = new Map(),
): string {
  return rewriteDisks(xml, (disk) => {
    const own = ownFile(disk);
    const original = own ? overlayToOriginal.get(own.file) : undefined;
    if (!own || original === undefined) return false;
    own.source.setAttribute('file', original);
    own.source.removeAttribute('index');
    const format = formats.get(original);
    if (format !== undefined) setDriverType(disk, format);
    dropBackingStore(disk);
    return true;
  });
}

/**
 * Removes the disks' own `<backingStore>` subtrees: of every disk, or of the disks whose source
 * (DomainDisk.source) is in `paths`. For defining a VM on a flattened image, whose saved chain no
 * longer exists. Throws DomainXmlError.
 */
export function withoutBackingStores(xml: string, paths?: ReadonlySet<string> | readonly string[]): string {
  const only = paths === undefined ? undefined : new Set(paths);
  return rewriteDisks(xml, (disk) => (only === undefined || only.has(sourcePath(disk)) ? dropBackingStore(disk) : false));
}
