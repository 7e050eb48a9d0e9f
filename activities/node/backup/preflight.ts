/**
 * Preflight: every check that can fail before anything changes. The VM exists here, its disks in
 * LDAP are the disks in its domain XML (33), the backup and retain URIs are file:// (39), the retain
 * and backup filesystems have room (47, 48), and the RAM disk can take the RAM state, else the
 * retain directory takes it, with a warning.
 */
import { DomainNotFoundError } from '../../../adapters/host/virsh.js';
import { planBackup, type BackupContext, type BackupPlan, type PreparedBackup } from '../../../core/backup-plan.js';
import { domainDisks } from '../../../core/domain-xml.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import type { SnapshotMethod } from '../../../core/global-config.js';
import { NamingError } from '../../../core/naming.js';
import type { BackupStep } from '../../../core/provisioning.js';
import type { NodeDeps } from '../deps.js';

const RAM_MARGIN = 1.05;

export function createPreflight(deps: NodeDeps) {
  const { virsh, files } = deps;

  function plan(ctx: BackupContext, method: SnapshotMethod): BackupPlan {
    try {
      return planBackup(ctx, { virtualizationRoot: deps.virtualizationRoot, method });
    } catch (e) {
      if (e instanceof NamingError) throw failure(e.code, e.message);
      throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, (e as Error).message);
    }
  }

  /** LDAP disks = XML disks (by path; a disk already on this backup's overlay counts as its image). */
  function compareDisks(p: BackupPlan, xml: string): void {
    const xmlDisks = domainDisks(xml).filter((d) => d.device === 'disk');
    const byOverlay = new Map(p.disks.map((d) => [d.overlay, d.path]));
    const problems: string[] = [];
    for (const d of xmlDisks) {
      if (d.type !== 'file') problems.push(`${d.target} is a ${d.type} disk (only file disks are supported)`);
    }
    const xmlPaths = xmlDisks.map((d) => byOverlay.get(d.source) ?? d.source).sort();
    const ldapPaths = p.disks.map((d) => d.path).sort();
    if (xmlPaths.length !== ldapPaths.length) problems.push(`LDAP lists ${ldapPaths.length} disks, the domain XML ${xmlPaths.length}`);
    for (const path of ldapPaths) if (!xmlPaths.includes(path)) problems.push(`${path} is in LDAP but not in the domain XML`);
    for (const path of xmlPaths) if (!ldapPaths.includes(path)) problems.push(`${path} is in the domain XML but not in LDAP`);
    for (const d of p.disks) {
      const x = xmlDisks.find((xd) => (byOverlay.get(xd.source) ?? xd.source) === d.path);
      if (x && x.target !== d.target) problems.push(`${d.path} is ${d.target} in LDAP but ${x.target} in the domain XML`);
    }
    if (problems.length) throw failure(Code.BACKEND_XML_UNCONSISTENCY, problems.join('; '));
  }

  /** Bytes our own earlier attempt already put there (a retry must not fail 47 on its own files). */
  async function alreadyThere(dir: string): Promise<number> {
    let sum = 0;
    for (const f of await files.list(dir)) sum += await files.allocatedBytes(`${dir}/${f}`).catch(() => 0);
    return sum;
  }

  async function checkSpace(p: BackupPlan, memoryKiB: number): Promise<void> {
    let imageBytes = 0;
    for (const d of p.disks) imageBytes += await files.allocatedBytes(d.path);
    const required = Math.ceil((imageBytes + memoryKiB * 1024) * RAM_MARGIN);
    const retain = await files.freeBytes(p.retainDir);
    const backup = await files.freeBytes(p.backupDir);
    const needRetain = required - (await alreadyThere(p.retainDir));
    const needBackup = required - (await alreadyThere(p.backupDir));
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    if (retain.device === backup.device) {
      // one filesystem holds both copies until the retain directory is removed
      if (retain.bytes < needRetain + needBackup) {
        throw failure(Code.NOT_ENOUGH_DISK_SPACE, `${p.retainDir} and ${p.backupDir} share a filesystem with ${mib(retain.bytes)} free; the backup needs ${mib(needRetain + needBackup)}`);
      }
      return;
    }
    if (retain.bytes < needRetain) throw failure(Code.NOT_ENOUGH_DISK_SPACE, `retain filesystem of ${p.retainDir}: ${mib(retain.bytes)} free, ${mib(needRetain)} needed`);
    if (backup.bytes < needBackup) throw failure(Code.NOT_ENOUGH_DISK_SPACE, `backup filesystem of ${p.backupDir}: ${mib(backup.bytes)} free, ${mib(needBackup)} needed`);
  }

  async function chooseStaging(p: BackupPlan, running: boolean, memoryKiB: number, warnings: string[]): Promise<'ramdisk' | 'retain'> {
    if (!running) return 'retain';
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

  return {
    /**
     * `purpose` is the step about to run: only the snapshot needs the space and RAM disk checks; a
     * merge or export step (asked for on its own by a control instance) only needs the plan.
     */
    async preflight(ctx: BackupContext, method?: SnapshotMethod, purpose: BackupStep = 'snapshot'): Promise<PreparedBackup> {
      const p = plan(ctx, method ?? deps.defaultMethod);
      let xml: string;
      let running: boolean;
      try {
        xml = await virsh.dumpXml(p.vm);
        running = await virsh.isActive(p.vm);
      } catch (e) {
        if (e instanceof DomainNotFoundError) throw failure(Code.CANNOT_FIND_MACHINE, `VM ${p.vm} is not defined in libvirt on node ${p.node}`);
        throw e;
      }
      compareDisks(p, xml);
      const memoryKiB = running ? await virsh.maxMemoryKiB(p.vm) : 0;
      const warnings: string[] = [];
      if (purpose !== 'snapshot') {
        return { plan: p, running, memoryKiB, staging: (await files.exists(p.stagingStateFile)) ? 'ramdisk' : 'retain', warnings };
      }
      await checkSpace(p, memoryKiB);
      const staging = await chooseStaging(p, running, memoryKiB, warnings);
      return { plan: p, running, memoryKiB, staging, warnings };
    },
  };
}
