/**
 * libvirt through `virsh` (no Node binding offers block commit, snapshots
 * with memory, restore --xml or block-job info). Typed, argument arrays only, output parsed here,
 * nothing about backups: the backup steps build on these calls.
 */
import { CommandError, run as defaultRun, type Run, type RunOptions } from './run.js';

export interface DomainState {
  /** running, paused, shut off, … as virsh prints it. */
  state: string;
  /** The reason in brackets: booted, restored, saved, … */
  reason: string;
}

export interface BlockDevice {
  type: string;
  device: string;
  target: string;
  source: string;
}

export interface BlockJob {
  type: string;
  cur: number;
  end: number;
  bandwidth: number;
}

export class DomainNotFoundError extends Error {
  constructor(readonly domain: string) {
    super(`libvirt has no domain "${domain}"`);
    this.name = 'DomainNotFoundError';
  }
}

const NOT_FOUND = /failed to get domain|Domain not found|no domain with matching/i;

/** A value inside `--diskspec`/`--memspec`: virsh splits those at commas, a literal comma is written twice. */
export function specValue(value: string): string {
  return value.replaceAll(',', ',,');
}

export class Virsh {
  constructor(
    private readonly uri = 'qemu:///system',
    private readonly run: Run = defaultRun,
  ) {}

  /** Runs `virsh -c <uri> …`; "domain not found" becomes DomainNotFoundError. */
  async exec(args: readonly string[], options: RunOptions = {}, domain?: string): Promise<string> {
    try {
      return (await this.run('virsh', ['-q', '-c', this.uri, ...args], options)).stdout;
    } catch (e) {
      if (domain && e instanceof CommandError && NOT_FOUND.test(e.stderr)) throw new DomainNotFoundError(domain);
      throw e;
    }
  }

  async exists(domain: string): Promise<boolean> {
    try {
      await this.exec(['domuuid', domain], {}, domain);
      return true;
    } catch (e) {
      if (e instanceof DomainNotFoundError) return false;
      throw e;
    }
  }

  async state(domain: string): Promise<DomainState> {
    const out = (await this.exec(['domstate', domain, '--reason'], {}, domain)).trim();
    const m = /^(.*?)\s*\((.*)\)$/.exec(out);
    return m ? { state: m[1]!, reason: m[2]! } : { state: out, reason: '' };
  }

  /** True when libvirt keeps a definition of the domain (`dominfo` Persistent: yes); a transient domain has none. */
  async isPersistent(domain: string): Promise<boolean> {
    return (await this.domInfo(domain)).persistent;
  }

  /**
   * What `virsh dominfo` says of a domain that the preflight needs, in one call: persistent or
   * transient, and its maximum memory in KiB (the size a saved RAM state can reach). Throws
   * DomainNotFoundError for an unknown domain.
   */
  async domInfo(domain: string): Promise<{ persistent: boolean; maxMemoryKiB: number }> {
    const out = await this.exec(['dominfo', domain], {}, domain);
    const m = /^Max memory:\s+(\d+) KiB/m.exec(out);
    if (!m) throw new Error(`cannot read the memory of ${domain} from dominfo`);
    return { persistent: /^Persistent:\s+yes/m.test(out), maxMemoryKiB: Number(m[1]) };
  }

  async isActive(domain: string): Promise<boolean> {
    const { state } = await this.state(domain);
    return state !== 'shut off' && state !== 'crashed';
  }

  async dumpXml(domain: string, opts: { inactive?: boolean; migratable?: boolean } = {}): Promise<string> {
    const args = ['dumpxml', domain];
    if (opts.inactive) args.push('--inactive');
    if (opts.migratable) args.push('--migratable');
    return this.exec(args, {}, domain);
  }

  async blockDevices(domain: string): Promise<BlockDevice[]> {
    const out = await this.exec(['domblklist', domain, '--details'], {}, domain);
    return out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((cols) => cols.length >= 4)
      .map(([type, device, target, ...source]) => ({ type: type!, device: device!, target: target!, source: source.join(' ') }));
  }

  async define(xmlFile: string): Promise<void> {
    await this.exec(['define', xmlFile]);
  }

  /** Starts a transient domain from `xmlFile` (no definition is left behind when it stops). */
  async create(xmlFile: string, opts: { paused?: boolean } = {}): Promise<void> {
    await this.exec(opts.paused ? ['create', xmlFile, '--paused'] : ['create', xmlFile]);
  }

  async start(domain: string, opts: { paused?: boolean } = {}): Promise<void> {
    await this.exec(opts.paused ? ['start', domain, '--paused'] : ['start', domain], {}, domain);
  }

  async resume(domain: string): Promise<void> {
    await this.exec(['resume', domain], {}, domain);
  }

  async suspend(domain: string): Promise<void> {
    await this.exec(['suspend', domain], {}, domain);
  }

  async destroy(domain: string): Promise<void> {
    await this.exec(['destroy', domain], {}, domain);
  }

  /**
   * Removes the definition. UEFI variables (NVRAM) and emulated TPM state are kept on purpose
   * (`--keep-nvram`, `--keep-tpm`): libvirt refuses to undefine a domain with NVRAM otherwise, and
   * deletes the TPM state by default; the restore puts the backup's files in their place itself.
   */
  async undefine(domain: string): Promise<void> {
    await this.exec(['undefine', domain, '--checkpoints-metadata', '--snapshots-metadata', '--keep-nvram', '--keep-tpm'], {}, domain);
  }

  /**
   * Saves the RAM state and stops the domain. `after` is the state a later restore of the file
   * brings it back in: a paused VM's save restores paused, a running VM's running.
   */
  async save(domain: string, stateFile: string, after: 'running' | 'paused', options?: RunOptions): Promise<void> {
    await this.exec(['save', domain, stateFile, `--${after}`], options, domain);
  }

  /** Restores a saved domain (transient until defined); `--paused`/`--running` override the state the file recorded. */
  async restore(stateFile: string, opts: { xmlFile?: string; after?: 'running' | 'paused' } = {}, options?: RunOptions): Promise<void> {
    const args = ['restore', stateFile];
    if (opts.xmlFile) args.push('--xml', opts.xmlFile);
    if (opts.after) args.push(`--${opts.after}`);
    await this.exec(args, options);
  }

  async saveImageXml(stateFile: string): Promise<string> {
    return this.exec(['save-image-dumpxml', stateFile]);
  }

  /**
   * External snapshot of RAM (optional) and every listed disk, atomic, without libvirt metadata.
   * With memory and `live`, QEMU pauses only for the last pass of the RAM copy.
   */
  async snapshotCreateAs(
    domain: string,
    name: string,
    spec: { memoryFile?: string; live?: boolean; disks: Array<{ target: string; overlay: string }>; diskOnly?: boolean; untouched?: string[] },
    options?: RunOptions,
  ): Promise<void> {
    const args = ['snapshot-create-as', domain, name, '--atomic', '--no-metadata'];
    if (spec.diskOnly) args.push('--disk-only');
    if (spec.memoryFile) args.push('--memspec', `file=${specValue(spec.memoryFile)},snapshot=external`);
    if (spec.live) args.push('--live');
    for (const d of spec.disks) args.push('--diskspec', `${specValue(d.target)},snapshot=external,file=${specValue(d.overlay)}`);
    // CD-ROMs and other devices get no overlay (an ISO would silently get one otherwise)
    for (const target of spec.untouched ?? []) args.push('--diskspec', `${specValue(target)},snapshot=no`);
    await this.exec(args, options, domain);
  }

  /** QEMU's migration downtime limit (ms): how long it may pause the guest for the last pass of a live RAM save. */
  async maxDowntime(domain: string): Promise<number> {
    return Number((await this.exec(['migrate-getmaxdowntime', domain], {}, domain)).trim());
  }

  async setMaxDowntime(domain: string, ms: number): Promise<void> {
    await this.exec(['migrate-setmaxdowntime', domain, String(Math.round(ms))], {}, domain);
  }

  /**
   * Starts an active block commit of the disk's top image down into `base`, named by its path; returns
   * at once. Without a base libvirt commits into the deepest image of the chain: a linked clone's
   * template would receive the VM's data and the VM would pivot onto it.
   */
  async blockCommitActive(domain: string, target: string, base: string, bandwidthMiB: number): Promise<void> {
    const args = ['blockcommit', domain, target, '--active', '--base', base];
    if (bandwidthMiB > 0) args.push('--bandwidth', String(bandwidthMiB));
    await this.exec(args, {}, domain);
  }

  /** The running block job on a disk, or undefined if there is none. */
  async blockJob(domain: string, target: string): Promise<BlockJob | undefined> {
    const out = await this.exec(['blockjob', domain, target, '--raw'], {}, domain);
    if (!out.trim() || /No current block job/i.test(out)) return undefined;
    const field = (k: string) => new RegExp(`\\b${k}=([^\\n]+)`).exec(out)?.[1]?.trim();
    return {
      type: field('type') ?? 'unknown',
      cur: Number(field('cur') ?? 0),
      end: Number(field('end') ?? 0),
      bandwidth: Number(field('bandwidth') ?? 0),
    };
  }

  async blockJobPivot(domain: string, target: string): Promise<void> {
    await this.exec(['blockjob', domain, target, '--pivot'], {}, domain);
  }


  /** HMP command; virsh exits 0 even when HMP reports an error, so any reply text is an error here. */
  async hmp(domain: string, command: string): Promise<void> {
    const out = await this.exec(['qemu-monitor-command', domain, '--hmp', command], {}, domain);
    if (out.trim()) throw new Error(`HMP "${command}" on ${domain} failed: ${out.trim()}`);
  }
}
