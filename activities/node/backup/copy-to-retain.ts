/**
 * Copy to retain, the second half of the snapshot step (the leaf says `snapshotted` only after it):
 * the state file off the RAM disk (24), the domain XML (28), the LDIF of the VM's
 * directory entries (29) and a copy of every frozen image (8), each with the configured ownership.
 * Image copies are sparse, at idle I/O priority, heartbeat their progress and, after a worker crash,
 * continue where the last heartbeat said instead of starting over.
 */
import { sha256OfText } from '../../../adapters/host/hashing.js';
import { stagingStateFile, type CopyStats, type PreparedBackup } from '../../../core/backup-plan.js';
import { withOriginalDisks } from '../../../core/domain-xml.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { ledgerPath, NOT_RUNNING_STATE_MARKER } from '../../../core/layout.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat } from '../heartbeat.js';

export interface CopyProgress {
  phase: string;
  current?: { name: string; bytes: number; total: number };
  bytes: number;
}

export function createCopyToRetain(deps: NodeDeps) {
  const { virsh, files } = deps;

  async function domainXml(p: PreparedBackup): Promise<string> {
    const xml = await virsh.dumpXml(p.plan.vm, { inactive: true });
    // a transient domain has no inactive definition: its live XML names the overlays; put the images back
    return withOriginalDisks(xml, new Map(p.plan.disks.map((d) => [d.overlay, d.path])));
  }

  /** The state file to retain (from the RAM disk), or the original's marker for a VM that was not running; its sha256. */
  async function retainStateFile(p: PreparedBackup, target: string, known: string | undefined): Promise<string> {
    const { plan } = p;
    if (!p.running) {
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
        throw failure(Code.CANNOT_COPY_STATE_FILE_TO_RETAIN, `${staged} → ${target}: ${(e as Error).message}`);
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
      const ledger = ledgerPath(plan.retainDir, 'hashes');
      const hashes = await files.readJson<Record<string, string>>(ledger, {});
      const record = async (name: string, hash: string) => {
        hashes[name] = hash;
        await files.writeJson(ledger, hashes);
      };
      await record(plan.files.state, await retainStateFile(p, at(plan.files.state), hashes[plan.files.state]));
      const xml = await domainXml(p);
      await files.writeSmallFile(at(plan.files.xml), xml, plan.images, Code.CANNOT_SAVE_XML);
      await record(plan.files.xml, sha256OfText(xml));
      await files.writeSmallFile(at(plan.files.ldif), ldif, plan.images, Code.CANNOT_SAVE_BACKEND_ENTRY);
      await record(plan.files.ldif, sha256OfText(ldif));

      // the frozen images, hashed while they are read: the one full read of each backup
      const beat = startHeartbeat<CopyProgress>({ phase: 'retain', bytes: 0 });
      const progress: CopyProgress = { phase: 'retain', bytes: beat.previous?.bytes ?? 0 };
      let resumedBytes = 0;
      try {
        for (const d of plan.disks) {
          if (hashes[d.name] && (await files.exists(at(d.name)))) continue;
          const resumeFrom = beat.previous?.current?.name === d.name ? beat.previous.current.bytes : 0;
          resumedBytes += resumeFrom;
          try {
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
          } catch (e) {
            if (beat.signal.aborted) throw e;
            if ((e as { type?: string }).type) throw e;
            throw failure(Code.CANNOT_COPY_IMAGE_TO_BACKUP_LOCATION, `copy of ${d.path} to retain: ${(e as Error).message}`);
          }
          beat.set({ ...progress });
        }
      } finally {
        beat.stop();
      }
      return { bytes: progress.bytes, files: plan.disks.length + 3, durationMs: Date.now() - started, resumedBytes };
    },
  };
}
