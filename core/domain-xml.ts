/**
 * The few things we read from and change in libvirt domain XML: the disks (device, type, target,
 * source, backing chain) and, for the classic method's `restore --xml`, the disk sources and the
 * empty `<backingStore/>` that must go (docs/backup.md: keeping it makes QEMU open the overlay
 * without its backing file, and the guest sees a blank disk). libvirt's own output is regular
 * enough that a careful scan beats pulling in an XML library.
 */
export interface DomainDisk {
  device: string;
  type: string;
  target: string;
  /** `source/@file` for file disks, `source/@name` for network disks, `source/@dev` for block disks. */
  source: string;
  /** First backing file libvirt reports, if any. */
  backingSource?: string;
  /** True if the disk has an empty `<backingStore/>` (no backing, or not probed). */
  emptyBackingStore: boolean;
  /** The image format from `<driver type=…>`, when given. */
  format?: string;
  /** A `<mirror>`: a block copy or commit job runs on the disk. */
  mirror: boolean;
  /** The backing chain libvirt reports below the disk's source, nearest first. */
  chain: Array<{ source: string; format?: string }>;
}

/** The domain-wide facts a backup needs: identity, UEFI variable store, emulated TPMs. */
export interface DomainInfo {
  name: string;
  uuid: string;
  firmware: { nvram?: { path: string; template?: string } };
  tpm: Array<{ model: string; backendType: string }>;
}

export function domainInfo(xml: string): DomainInfo {
  const text = (tag: string) => {
    const m = new RegExp(`<${tag}\\b[^>]*>([^<]*)</${tag}>`).exec(xml);
    return m ? xmlUnescape(m[1]!.trim()) : undefined;
  };
  const nvramTag = /<nvram\b[^>]*>/.exec(xml)?.[0];
  const nvramPath = text('nvram');
  const template = nvramTag ? attr(nvramTag, 'template') : undefined;
  const tpm = [...xml.matchAll(/<tpm\b[^>]*>[\s\S]*?<\/tpm>/g)].map((m) => {
    const open = /^<tpm\b[^>]*>/.exec(m[0])![0];
    const backend = /<backend\b[^>]*>/.exec(m[0])?.[0];
    return { model: attr(open, 'model') ?? '', backendType: backend ? attr(backend, 'type') ?? '' : '' };
  });
  return {
    name: text('name') ?? '',
    uuid: text('uuid') ?? '',
    firmware: nvramPath ? { nvram: { path: nvramPath, ...(template ? { template } : {}) } } : {},
    tpm,
  };
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };

export function xmlUnescape(s: string): string {
  return s.replace(/&(amp|lt|gt|apos|quot|#\d+|#x[0-9a-fA-F]+);/g, (_m, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : ENTITIES[e]!,
  );
}

export function xmlEscape(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => `&${Object.entries(ENTITIES).find(([, v]) => v === c)![0]};`);
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(tag);
  return m ? xmlUnescape(m[1] ?? m[2] ?? '') : undefined;
}

const DISK = /<disk\b[^>]*>[\s\S]*?<\/disk>/g;

export function domainDisks(xml: string): DomainDisk[] {
  const disks: DomainDisk[] = [];
  for (const m of xml.matchAll(DISK)) {
    const block = m[0];
    const open = /^<disk\b[^>]*>/.exec(block)![0];
    const target = /<target\b[^>]*>/.exec(block)?.[0];
    // the disk's own <source> comes before any <backingStore>
    const beforeBacking = block.split(/<backingStore\b/)[0]!;
    const source = /<source\b[^>]*>/.exec(beforeBacking)?.[0];
    const backing = /<backingStore\b[^>]*>[\s\S]*?<source\b[^>]*>/.exec(block)?.[0];
    const backingSource = backing ? /<source\b[^>]*>$/.exec(backing)?.[0] : undefined;
    const driver = /<driver\b[^>]*>/.exec(beforeBacking)?.[0];
    const format = driver ? attr(driver, 'type') : undefined;
    const backingPath = backingSource ? attr(backingSource, 'file') ?? attr(backingSource, 'name') ?? attr(backingSource, 'dev') : undefined;
    disks.push({
      device: attr(open, 'device') ?? 'disk',
      type: attr(open, 'type') ?? 'file',
      target: target ? attr(target, 'dev') ?? '' : '',
      source: source ? attr(source, 'file') ?? attr(source, 'name') ?? attr(source, 'dev') ?? '' : '',
      ...(backingPath ? { backingSource: backingPath } : {}),
      emptyBackingStore: /<backingStore\s*\/>/.test(block),
      ...(format ? { format } : {}),
      mirror: /<mirror\b/.test(block),
      chain: block
        .split(/<backingStore\b/)
        .slice(1)
        .filter((part) => !/^\s*\/>/.test(part) && !/^[^>]*\/>/.test(part))
        .map((part) => {
          const src = /<source\b[^>]*>/.exec(part)?.[0];
          const fmt = /<format\b[^>]*>/.exec(part)?.[0];
          const f = fmt ? attr(fmt, 'type') : undefined;
          return { source: src ? attr(src, 'file') ?? attr(src, 'dev') ?? attr(src, 'name') ?? '' : '', ...(f ? { format: f } : {}) };
        }),
    });
  }
  return disks;
}

/**
 * Points the file disks at other images (`from` path → `to` path) and drops their empty
 * `<backingStore/>` so libvirt probes the overlay's backing chain.
 */
export function retargetDisks(xml: string, moves: ReadonlyMap<string, string>): string {
  return xml.replace(DISK, (block) => {
    const beforeBacking = block.split(/<backingStore\b/)[0]!;
    const source = /<source\b[^>]*>/.exec(beforeBacking)?.[0];
    const file = source ? attr(source, 'file') : undefined;
    const to = file !== undefined ? moves.get(file) : undefined;
    if (!source || to === undefined) return block;
    const newSource = source.replace(/\sfile=(?:'[^']*'|"[^"]*")/, () => ` file='${xmlEscape(to)}'`);
    // the disk's own chain goes whole (nested or empty): libvirt probes the new file's chain
    const cleaned = block.replace(/\n?\s*<backingStore\b[^>]*[^/]>[\s\S]*<\/backingStore>/, '').replace(/\n?\s*<backingStore\s*\/>/, '');
    return cleaned.replace(source, newSource);
  });
}

/**
 * The reverse, for the XML saved with a backup: file disks that run on an overlay get the original
 * path back, and the backing chain libvirt reported is removed, so the XML defines the VM on its own
 * images.
 */
export function withOriginalDisks(xml: string, overlayToOriginal: ReadonlyMap<string, string>, formats: ReadonlyMap<string, string> = new Map()): string {
  return xml.replace(DISK, (block) => {
    const beforeBacking = block.split(/<backingStore\b/)[0]!;
    const source = /<source\b[^>]*>/.exec(beforeBacking)?.[0];
    const file = source ? attr(source, 'file') : undefined;
    const original = file !== undefined ? overlayToOriginal.get(file) : undefined;
    if (!source || original === undefined) return block;
    // greedy within one disk: a deeper chain nests <backingStore> elements
    const cleaned = block.replace(/\n?\s*<backingStore\b[^>]*[^/]>[\s\S]*<\/backingStore>/, '').replace(/\n?\s*<backingStore\s*\/>/, '');
    const driver = /<driver\b[^>]*>/.exec(cleaned)?.[0];
    const format = formats.get(original);
    const withFormat = driver && format ? cleaned.replace(driver, driver.replace(/\stype=(?:'[^']*'|"[^"]*")/, ` type='${xmlEscape(format)}'`)) : cleaned;
    return withFormat.replace(source, source.replace(/\sfile=(?:'[^']*'|"[^"]*")/, () => ` file='${xmlEscape(original)}'`).replace(/\sindex='\d+'/, ''));
  });
}
