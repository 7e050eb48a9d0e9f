/**
 * Copy to retain, the second half of the snapshot step (the leaf says `snapshotted` only after it):
 * the state file off the RAM disk (24), the domain XML (28), the LDIF of the VM's directory entries
 * (29), the backup's facts, the UEFI variables and TPM state where the VM has them, and a copy of
 * every frozen image (8), each with the configured ownership and its sha256 recorded once.
 *
 * A standalone image is copied byte for byte (sparse, idle I/O priority, resumed from the last
 * heartbeat after a crash). An image with a backing chain (a linked clone) is flattened: the copy
 * holds everything the chain holds, so the backup restores without its template (docs/backup.md).
 */
import { sha256OfText } from '../../../adapters/host/hashing.js';
import { stagingStateFile, type CopyStats, type PreparedBackup } from '../../../core/backup-plan.js';
import { withOriginalDisks } from '../../../core/domain-xml.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { ledgerPath, NOT_RUNNING_STATE_MARKER, type BackupFacts } from '../../../core/layout.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat } from '../heartbeat.js';

export interface CopyProgress {
  phase: string;
  current?: { name: string; bytes: number; total: number };
  bytes: number;
}

/** The sha256 ledger of a retain directory: each file hashed once, when it arrived. */
export function retainLedger(deps: NodeDeps, retainDir: string) {
  const path = ledgerPath(retainDir, 'hashes');
  return {
    read: () => deps.files.readJson<Record<string, string>>(path, {}),
    async record(name: string, hash: string): Promise<void> {
      const hashes = await deps.files.readJson<Record<string, string>>(path, {});
      hashes[name] = hash;
      await deps.files.writeJson(path, hashes);
    },
  };
}

/** The facts of the backup (run state, persistence, images, firmware files), as the restore reads them. */
export function backupFacts(p: PreparedBackup): BackupFacts {
  const { plan } = p;
  const method = p.active ? plan.method : 'offline';
  return {
    version: 1,
    vm: plan.vm,
    ou: plan.ou,
    runState: p.runState,
    persistent: p.persistent,
    method,
    disks: plan.disks.map((d) => ({ target: d.target, path: d.path, file: d.name, format: d.format, flattened: d.backing.length > 0, backing: d.backing })),
    firmware: {
      ...(p.firmware.nvram ? { nvram: { path: p.firmware.nvram, file: plan.files.nvram } } : {}),
      ...(p.firmware.tpmStateDir ? { tpm: { dir: p.firmware.tpmStateDir, file: plan.files.tpm } } : {}),
    },
  };
}

/**
 * The VM's UEFI variables and TPM state into the retain directory (once): for a running VM right
 * after its snapshot, for the classic method while it is saved, for a shut-off VM with its images.
 */
export function createFirmwareCopy(deps: NodeDeps) {
  const { files } = deps;
  return async function retainFirmware(p: PreparedBackup): Promise<void> {
    const { plan } = p;
    const ledger = retainLedger(deps, plan.retainDir);
    const hashes = await ledger.read();
    const at = (name: string) => `${plan.retainDir}/${name}`;
    if (p.firmware.nvram && !hashes[plan.files.nvram]) {
      try {
        const r = await deps.copy({ src: p.firmware.nvram, dst: at(plan.files.nvram), sha256: true });
        await files.setOwnership(at(plan.files.nvram), plan.images, 'file');
        await ledger.record(plan.files.nvram, r.sha256!);
      } catch (e) {
        if ((e as { type?: string }).type) throw e;
        throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `UEFI variables ${p.firmware.nvram} → retain: ${(e as Error).message}`, {}, { cause: e });
      }
    }
    if (p.firmware.tpmStateDir && !hashes[plan.files.tpm]) {
      try {
        await files.archive(p.firmware.tpmStateDir, at(plan.files.tpm), ['.lock', '*.lock']);
        await files.setOwnership(at(plan.files.tpm), plan.images, 'file');
        await ledger.record(plan.files.tpm, await files.sha256(at(plan.files.tpm)));
      } catch (e) {
        if ((e as { type?: string }).type) throw e;
        throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `TPM state ${p.firmware.tpmStateDir} → retain: ${(e as Error).message}`, {}, { cause: e });
      }
    }
  };
}

export function createCopyToRetain(deps: NodeDeps) {
  const { virsh, files, images } = deps;
  const retainFirmware = createFirmwareCopy(deps);

  async function domainXml(p: PreparedBackup): Promise<string> {
    const xml = await virsh.dumpXml(p.plan.vm, { inactive: true });
    // a transient domain has no inactive definition: its live XML names the overlays. Either way the
    // saved XML names the VM's own images in their own formats (a snapshot made them qcow2 overlays)
    return withOriginalDisks(
      xml,
      new Map(p.plan.disks.map((d) => [d.overlay, d.path])),
      new Map(p.plan.disks.map((d) => [d.path, d.format])),
    );
  }

  /** The state file to retain (from the RAM disk), or the original's marker for a VM that was not running; its sha256. */
  async function retainStateFile(p: PreparedBackup, target: string, known: string | undefined): Promise<string> {
    const { plan } = p;
    if (!p.active) {
      await files.writeSmallFile(target, NOT_RUNNING_STATE_MARKER, plan.images, Code.CANNOT_COPY_STATE_FILE_TO_RETAIN);
      return sha256OfText(NOT_RUNNING_STATE_MARKER);
    }
    const staged = stagingStateFile(p);
    let hash = known;
    if (staged !== target && (await files.exists(staged))) {
      try {
        hash = (await deps.copy({ src: staged, dst: target, sha256: true })).sha256!;
        await files.remove(staged);
      } catch (e) {
        throw failure(Code.CANNOT_COPY_STATE_FILE_TO_RETAIN, `${staged} → ${target}: ${(e as Error).message}`, {}, { cause: e });
      }
    } else if (!(await files.exists(target))) {
      throw failure(Code.CANNOT_COPY_STATE_FILE_TO_RETAIN, `the state file ${staged} is gone`);
    }
    hash ??= await files.sha256(target); // libvirt wrote it into the retain directory itself
    await files.setOwnership(target, plan.images, 'file');
    return hash;
  }

  return {
    async copyToRetain(p: PreparedBackup, ldif: string): Promise<CopyStats> {
      const { plan } = p;
      const started = Date.now();
      await files.makeDirectory(plan.retainDir, plan.directories);
      const at = (name: string) => `${plan.retainDir}/${name}`;
      const ledger = retainLedger(deps, plan.retainDir);
      const hashes = await ledger.read();
      const record = async (name: string, hash: string) => {
        hashes[name] = hash;
        await ledger.record(name, hash);
      };
      await record(plan.files.state, await retainStateFile(p, at(plan.files.state), hashes[plan.files.state]));
      const xml = await domainXml(p);
      await files.writeSmallFile(at(plan.files.xml), xml, plan.images, Code.CANNOT_SAVE_XML);
      await record(plan.files.xml, sha256OfText(xml));
      await files.writeSmallFile(at(plan.files.ldif), ldif, plan.images, Code.CANNOT_SAVE_BACKEND_ENTRY);
      await record(plan.files.ldif, sha256OfText(ldif));
      const facts = `${JSON.stringify(backupFacts(p), null, 2)}\n`;
      await files.writeSmallFile(at(plan.files.facts), facts, plan.images, Code.CANNOT_SAVE_XML);
      await record(plan.files.facts, sha256OfText(facts));
      await retainFirmware(p);

      // the frozen images, hashed while they are read: the one full read of each backup
      const beat = startHeartbeat<CopyProgress>({ phase: 'retain', bytes: 0 });
      const progress: CopyProgress = { phase: 'retain', bytes: beat.previous?.bytes ?? 0 };
      let resumedBytes = 0;
      try {
        for (const d of plan.disks) {
          if (hashes[d.name] && (await files.exists(at(d.name)))) continue;
          try {
            if (d.backing.length > 0) {
              // a linked clone: one standalone image of the whole chain, read only
              const total = (await images.chain(d.path, d.format))[0]?.virtualSize ?? 0;
              await files.remove(at(d.name));
              await images.convert(d.path, d.format, at(d.name), d.format, {
                signal: beat.signal,
                onProgress: (percent) => beat.set({ ...progress, current: { name: d.name, bytes: Math.round((total * percent) / 100), total } }),
              });
              progress.bytes += (await files.size(at(d.name))) ?? 0;
              await files.setOwnership(at(d.name), plan.images, 'file');
              await record(d.name, await files.sha256(at(d.name)));
            } else {
              const resumeFrom = beat.previous?.current?.name === d.name ? beat.previous.current.bytes : 0;
              resumedBytes += resumeFrom;
              const r = await deps.copy({
                src: d.path,
                dst: at(d.name),
                resumeFrom,
                sha256: true,
                rateMiB: deps.copyRateMiB,
                signal: beat.signal,
                onProgress: (bytes, total) => beat.set({ ...progress, current: { name: d.name, bytes, total } }),
              });
              progress.bytes += r.bytes;
              await files.setOwnership(at(d.name), plan.images, 'file');
              await record(d.name, r.sha256!);
            }
          } catch (e) {
            if (beat.signal.aborted) throw e;
            if ((e as { type?: string }).type) throw e;
            throw failure(Code.CANNOT_COPY_IMAGE_TO_BACKUP_LOCATION, `copy of ${d.path} to retain: ${(e as Error).message}`, {}, { cause: e });
          }
          beat.set({ ...progress });
        }
      } finally {
        beat.stop();
      }
      return { bytes: progress.bytes, files: Object.keys(hashes).length, durationMs: Date.now() - started, resumedBytes };
    },
  };
}
