/**
 * Preflight: every check that can fail before anything changes (docs/backup.md). The VM exists here;
 * its disks in LDAP are the disks in its domain XML (33); every disk is a shape the product handles,
 * else it is refused with the reason before anything is touched (39: network, block and volume
 * disks, formats other than qcow2 and raw, a block job somebody else started, a backing file that
 * cannot be read); the backup and retain URIs are file:// (39); the retain and backup filesystems
 * have room (47, 48); the RAM disk can take the RAM state, else the retain directory takes it.
 *
 * It also records what the backup must keep and give back: the run state (a paused VM stays paused,
 * and is snapshotted with the classic method, which keeps it paused), the persistence, each image's
 * format and backing chain, the devices that are not disks, the UEFI variables and TPM state.
 */
import type { ChainImage } from '../../../adapters/host/images.js';
import { DomainNotFoundError } from '../../../adapters/host/virsh.js';
import { planBackup, type BackupContext, type BackupPlan, type PreparedBackup, type RunState } from '../../../core/backup-plan.js';
import { domainDisks, domainInfo, type DomainDisk } from '../../../core/domain-xml.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import type { SnapshotMethod } from '../../../core/global-config.js';
import { stagingDirectory, type BackupFacts } from '../../../core/layout.js';
import { joinPath, NamingError } from '../../../core/naming.js';
import type { BackupStep } from '../../../core/provisioning.js';
import type { NodeDeps } from '../deps.js';
import { iterationSnapshots, repositoryFailure } from '../repository.js';

const RAM_MARGIN = 1.05;

/** Image formats a backup copies and a restore checks; anything else is refused (39). */
const FORMATS = ['qcow2', 'raw'];

/** Where libvirt keeps an emulated TPM's state (swtpm), per domain UUID. */
const SWTPM_STATE_ROOT = '/var/lib/libvirt/swtpm';

export function createPreflight(deps: NodeDeps) {
  const { virsh, files, images } = deps;

  function plan(ctx: BackupContext, method: SnapshotMethod): BackupPlan {
    try {
      return planBackup(ctx, { virtualizationRoot: deps.virtualizationRoot, method });
    } catch (e) {
      if (e instanceof NamingError) throw failure(e.code, e.message);
      throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, (e as Error).message);
    }
  }

  /**
   * Each byte of a backup is written once: its files wait where the export publishes them by rename,
   * in the retain directory when that is on the backup root's filesystem, else in a staging directory
   * beside the iteration, below the backup root (core/layout.ts stagingDirectory).
   */
  async function placeRetain(p: BackupPlan): Promise<void> {
    if (p.repository) return; // restic reads the retain directory: one copy there, the repository holds what changed
    const [retain, backup] = await Promise.all([files.freeBytes(p.retainRoot), files.freeBytes(p.backupRoot)]);
    if (retain.device === backup.device) return;
    p.retainDir = stagingDirectory(p.backupVmDir, p.ou);
    p.retainRoot = p.backupRoot;
  }

  /**
   * LDAP disks = XML disks (by path; a disk already on this backup's overlay counts as its image);
   * a disk running on a file LDAP does not name (an overlay another tool left) is named as such.
   */
  function compareDisks(p: BackupPlan, xmlDisks: DomainDisk[]): void {
    const byOverlay = new Map(p.disks.map((d) => [d.overlay, d.path]));
    const problems: string[] = [];
    const xmlPaths = xmlDisks.map((d) => byOverlay.get(d.source) ?? d.source).sort();
    const ldapPaths = p.disks.map((d) => d.path).sort();
    if (xmlPaths.length !== ldapPaths.length) problems.push(`LDAP lists ${ldapPaths.length} disks, the domain XML ${xmlPaths.length}`);
    for (const path of ldapPaths) if (!xmlPaths.includes(path)) problems.push(`${path} is in LDAP but not in the domain XML`);
    for (const d of xmlDisks) {
      const path = byOverlay.get(d.source) ?? d.source;
      if (ldapPaths.includes(path)) continue;
      const over = p.disks.find((l) => d.backingSource === l.path);
      problems.push(over ? `${d.target} runs on ${d.source}, an overlay of ${over.path} that kvm-backup did not make (another tool's snapshot?)` : `${path} is in the domain XML but not in LDAP`);
    }
    for (const d of p.disks) {
      const x = xmlDisks.find((xd) => (byOverlay.get(xd.source) ?? xd.source) === d.path);
      if (x && x.target !== d.target) problems.push(`${d.path} is ${d.target} in LDAP but ${x.target} in the domain XML`);
    }
    if (problems.length) throw failure(Code.BACKEND_XML_UNCONSISTENCY, problems.join('; '));
  }

  /** Shapes the product does not back up, refused with the reason before anything changes (39). */
  function refuseUnsupported(vm: string, xmlDisks: DomainDisk[]): void {
    const problems: string[] = [];
    for (const d of xmlDisks) {
      if (d.type !== 'file') problems.push(`${d.target} is a ${d.type} disk (${d.source || 'no source'}): only file disks are backed up`);
      else if (d.format && !FORMATS.includes(d.format)) problems.push(`${d.target} is a ${d.format} image: only ${FORMATS.join(' and ')} are backed up`);
      if (d.mirror) problems.push(`${d.target} has a block job (a copy or mirror) that kvm-backup did not start`);
    }
    if (problems.length) throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `VM ${vm}: ${problems.join('; ')}`);
  }

  /** A block job on a disk that is not this backup's own commit: somebody else's copy, mirror or commit. */
  async function refuseForeignJobs(p: BackupPlan, xmlDisks: DomainDisk[]): Promise<void> {
    for (const d of p.disks) {
      const x = xmlDisks.find((xd) => xd.target === d.target);
      if (!x || x.source === d.overlay) continue; // on our overlay: a merge may be ours
      const job = await virsh.blockJob(p.vm, d.target);
      if (job) throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `VM ${p.vm}: ${d.target} has a block job kvm-backup did not start (${job.type}); refused, nothing changed`);
    }
  }

  /** Each image's format and backing chain, read from the image (never opened for writing). */
  async function readChains(p: BackupPlan, xmlDisks: DomainDisk[]): Promise<void> {
    const byOverlay = new Map(p.disks.map((d) => [d.overlay, d.path]));
    for (const d of p.disks) {
      const x = xmlDisks.find((xd) => (byOverlay.get(xd.source) ?? xd.source) === d.path);
      // on our overlay, the XML's driver names the overlay's format; the image's own is in its chain
      const onOverlay = x?.source === d.overlay;
      let chain: ChainImage[];
      try {
        chain = await images.chain(d.path, onOverlay ? undefined : x?.format);
      } catch (e) {
        throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${d.target}: the image ${d.path} or a backing file of it cannot be read: ${(e as Error).message}`, {}, { cause: e });
      }
      const [own, ...backing] = chain;
      if (!own || !FORMATS.includes(own.format)) throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${d.target}: ${d.path} is a ${own?.format ?? 'unknown'} image: only ${FORMATS.join(' and ')} are backed up`);
      d.format = own.format;
      d.backing = backing.map((b) => ({ path: b.path, format: b.format }));
    }
  }

  /** Bytes our own earlier attempt already put there (a retry must not fail 47 on its own files). */
  async function alreadyThere(dir: string): Promise<number> {
    let sum = 0;
    for (const f of await files.list(dir)) sum += await files.allocatedBytes(`${dir}/${f}`).catch(() => 0);
    return sum;
  }

  async function checkSpace(p: BackupPlan, memoryKiB: number): Promise<void> {
    let imageBytes = 0;
    // a flattened copy holds what the whole chain holds
    for (const d of p.disks) for (const path of [d.path, ...d.backing.map((b) => b.path)]) imageBytes += await files.allocatedBytes(path);
    const required = Math.ceil((imageBytes + memoryKiB * 1024) * RAM_MARGIN);
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    if (p.repository) {
      // the files wait in the retain directory; what the repository needs depends on what changed,
      // and restic's own "no space left" is 47 (docs/repository.md)
      const retain = await files.freeBytes(p.retainDir);
      const need = required - (await alreadyThere(p.retainDir));
      if (retain.bytes < need) throw failure(Code.NOT_ENOUGH_DISK_SPACE, `retain filesystem of ${p.retainDir}: ${mib(retain.bytes)} free, ${mib(need)} needed`);
      return;
    }
    const retain = await files.freeBytes(p.retainDir);
    const backup = await files.freeBytes(p.backupDir);
    const needRetain = required - (await alreadyThere(p.retainDir));
    const needBackup = required - (await alreadyThere(p.backupDir));
    if (retain.device === backup.device) {
      // one copy: the export moves the files from the retain directory into the iteration
      const need = required - (await alreadyThere(p.retainDir)) - (await alreadyThere(p.backupDir));
      if (retain.bytes < need) {
        throw failure(Code.NOT_ENOUGH_DISK_SPACE, `${p.retainDir} and ${p.backupDir} share a filesystem with ${mib(retain.bytes)} free; the backup needs ${mib(need)}`);
      }
      return;
    }
    if (retain.bytes < needRetain) throw failure(Code.NOT_ENOUGH_DISK_SPACE, `retain filesystem of ${p.retainDir}: ${mib(retain.bytes)} free, ${mib(needRetain)} needed`);
    if (backup.bytes < needBackup) throw failure(Code.NOT_ENOUGH_DISK_SPACE, `backup filesystem of ${p.backupDir}: ${mib(backup.bytes)} free, ${mib(needBackup)} needed`);
  }

  async function chooseStaging(p: BackupPlan, active: boolean, memoryKiB: number, warnings: string[]): Promise<'ramdisk' | 'retain'> {
    if (!active) return 'retain';
    // a retry after the snapshot finds its state file where the first attempt put it
    if (await files.exists(p.stagingStateFile)) return 'ramdisk';
    if (!(await files.writableDirectory(p.ramDisk))) {
      warnings.push(`RAM disk ${p.ramDisk} is missing or not writable; the state file goes to the retain directory`);
      return 'retain';
    }
    const free = (await files.freeBytes(p.ramDisk)).bytes;
    const needed = memoryKiB * 1024 * RAM_MARGIN;
    if (free < needed) {
      warnings.push(`RAM disk ${p.ramDisk} has ${(free / 2 ** 20).toFixed(1)} MiB free, the RAM state needs ${(needed / 2 ** 20).toFixed(1)} MiB; the state file goes to the retain directory`);
      return 'retain';
    }
    return 'ramdisk';
  }

  /** The VM's files outside its disks a backup keeps: its UEFI variable store, its emulated TPM's state directory. */
  function firmwareOf(xml: string): PreparedBackup['firmware'] {
    const info = domainInfo(xml);
    return {
      ...(info.firmware.nvram ? { nvram: info.firmware.nvram.path } : {}),
      ...(info.tpms.some((t) => t.backendType === 'emulator') && info.uuid ? { tpmStateDir: joinPath(SWTPM_STATE_ROOT, info.uuid) } : {}),
    };
  }

  /**
   * The repository opens with the node's password and is not locked by a live process: a wrong
   * password (39), a missing repository (26), a lock (22) or a dead connection (7) fail here,
   * before the VM is touched.
   */
  async function checkRepository(p: BackupPlan): Promise<void> {
    try {
      await iterationSnapshots(deps.restic, p.repository!, p.vm, p.ou);
    } catch (e) {
      throw repositoryFailure(e, Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `repository ${p.repository!.uri}`);
    }
  }

  /** libvirt's domstate word as the run state a backup keeps (in shutdown, crashed, …: as shut off). */
  function runStateOf(state: string): RunState {
    return state === 'running' || state === 'paused' ? state : 'shut off';
  }

  return {
    /**
     * `purpose` is the step about to run: only the snapshot looks at the VM as it is and needs the
     * space and RAM disk checks; a merge or export step (asked for on its own by a control instance)
     * takes what the snapshot found from the facts it left in the retain directory.
     */
    async preflight(ctx: BackupContext, method?: SnapshotMethod, purpose: BackupStep = 'snapshot'): Promise<PreparedBackup> {
      const p = plan(ctx, method ?? deps.defaultMethod);
      await placeRetain(p);
      // a later step of a backup done step by step reads what its snapshot step found
      const facts = purpose === 'snapshot' ? undefined : await files.readJson<BackupFacts | undefined>(joinPath(p.retainDir, p.files.facts), undefined);
      let domain: { xml: string; state: string; persistent: boolean; maxMemoryKiB: number } | undefined;
      try {
        // three reads at once (each a virsh process and a libvirt connection)
        const [xml, state, info] = await Promise.all([virsh.dumpXml(p.vm), virsh.state(p.vm), virsh.domInfo(p.vm)]);
        domain = { xml, state: state.state, ...info };
      } catch (e) {
        if (!(e instanceof DomainNotFoundError)) throw e;
        // a transient VM stopped after its snapshot step has no domain left: its overlays still go into its images
        if (!facts) throw failure(Code.CANNOT_FIND_MACHINE, `VM ${p.vm} is not defined in libvirt on node ${p.node}`);
      }
      const all = domain ? domainDisks(domain.xml) : [];
      const xmlDisks = all.filter((d) => d.device === 'disk');
      if (domain) {
        compareDisks(p, xmlDisks);
        refuseUnsupported(p.vm, xmlDisks);
      }
      const warnings: string[] = [];
      let runState = runStateOf(domain?.state ?? 'shut off');
      let persistent = domain?.persistent ?? false;
      if (facts) {
        // what the snapshot step found, before it changed anything
        runState = facts.runState;
        persistent = facts.persistent;
        for (const d of p.disks) {
          const f = facts.disks.find((fd) => fd.target === d.target);
          if (f) Object.assign(d, { format: f.format, backing: f.backing });
        }
        if (facts.method === 'live' || facts.method === 'classic') p.method = facts.method;
      } else {
        // only a running or paused VM can have block jobs; both only read, so side by side
        await Promise.all([runState !== 'shut off' ? refuseForeignJobs(p, xmlDisks) : undefined, readChains(p, xmlDisks)]);
      }
      const active = runState !== 'shut off';
      if (runState === 'paused' && p.method === 'live') {
        // a live snapshot leaves a paused guest's disks inactive (no merge until it runs); save and
        // restore keep it paused and cost its guest nothing
        p.method = 'classic';
        warnings.push(`${p.vm} is paused: snapshotted with the classic method, which keeps it paused`);
      }
      const prepared = {
        plan: p,
        active,
        runState,
        persistent,
        memoryKiB: active && domain ? domain.maxMemoryKiB : 0,
        untouched: all.filter((d) => d.device !== 'disk').map((d) => d.target),
        firmware: domain ? firmwareOf(domain.xml) : { ...(facts?.firmware.nvram ? { nvram: facts.firmware.nvram.path } : {}), ...(facts?.firmware.tpm ? { tpmStateDir: facts.firmware.tpm.dir } : {}) },
        warnings,
      };
      if (purpose !== 'snapshot') {
        return { ...prepared, staging: (await files.exists(p.stagingStateFile)) ? 'ramdisk' : 'retain' };
      }
      if (p.repository) await checkRepository(p);
      const { memoryKiB } = prepared;
      await checkSpace(p, memoryKiB);
      const staging = await chooseStaging(p, active, memoryKiB, warnings);
      return { ...prepared, staging };
    },
  };
}

