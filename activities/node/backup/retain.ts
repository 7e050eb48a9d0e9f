/**
 * Copy to retain: the state file off the RAM disk (24), the domain XML (28), the LDIF of the VM's
 * directory entries (29) and a copy of every frozen image (8), each with the configured ownership.
 * Image copies are sparse, at idle I/O priority, heartbeat their progress and, after a worker crash,
 * continue where the last heartbeat said instead of starting over.
 */
import { rm } from 'node:fs/promises';
import { stagingStateFile, type CopyStats, type PreparedBackup } from '../../../core/backup-plan.js';
import { withOriginalDisks } from '../../../core/domain-xml.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { NOT_RUNNING_STATE_MARKER } from '../../../core/naming.js';
import { exists } from '../files.js';
import { startHeartbeat } from '../heartbeat.js';
import type { BackupNodeDeps } from './deps.js';

export interface CopyProgress {
  phase: string;
  /** Files finished (by name in the target directory). */
  done: string[];
  current?: { name: string; bytes: number; total: number };
  bytes: number;
}

export function createCopyToRetain(deps: BackupNodeDeps) {
  const { virsh, files } = deps;

  async function domainXml(p: PreparedBackup): Promise<string> {
    const xml = await virsh.dumpXml(p.plan.vm, { inactive: true });
    // a transient domain has no inactive definition: its live XML names the overlays; put the images back
    return withOriginalDisks(xml, new Map(p.plan.disks.map((d) => [d.overlay, d.path])));
  }

  async function moveStateFile(p: PreparedBackup, target: string): Promise<void> {
    const { plan } = p;
    if (!p.running) {
      await files.writeSmallFile(target, NOT_RUNNING_STATE_MARKER, plan.images, Code.CANNOT_COPY_STATE_FILE_TO_RETAIN);
      return;
    }
    const staged = stagingStateFile(p);
    if (staged !== target) {
      if (await exists(staged)) {
        try {
          await deps.copy({ src: staged, dst: target });
          await rm(staged);
        } catch (e) {
          throw failure(Code.CANNOT_COPY_STATE_FILE_TO_RETAIN, `${staged} → ${target}: ${(e as Error).message}`);
        }
      } else if (!(await exists(target))) {
        throw failure(Code.CANNOT_COPY_STATE_FILE_TO_RETAIN, `the state file ${staged} is gone`);
      }
    }
    await files.setOwnership(target, plan.images, 'file');
  }

  return {
    async copyToRetain(p: PreparedBackup, ldif: string): Promise<CopyStats> {
      const { plan } = p;
      const started = Date.now();
      await files.makeDirectory(plan.retainDir, plan.directories);
      const at = (name: string) => `${plan.retainDir}/${name}`;
      await moveStateFile(p, at(plan.files.state));
      await files.writeSmallFile(at(plan.files.xml), await domainXml(p), plan.images, Code.CANNOT_SAVE_XML);
      await files.writeSmallFile(at(plan.files.ldif), ldif, plan.images, Code.CANNOT_SAVE_BACKEND_ENTRY);

      const beat = startHeartbeat<CopyProgress>({ phase: 'retain', done: [], bytes: 0 });
      const progress: CopyProgress = { phase: 'retain', done: [...(beat.previous?.done ?? [])], bytes: beat.previous?.bytes ?? 0 };
      let resumedBytes = 0;
      try {
        for (const d of plan.disks) {
          if (progress.done.includes(d.name) && (await exists(at(d.name)))) continue;
          const resumeFrom = beat.previous?.current?.name === d.name ? beat.previous.current.bytes : 0;
          resumedBytes += resumeFrom;
          try {
            const r = await deps.copy({
              src: d.path,
              dst: at(d.name),
              resumeFrom,
              rateMiB: deps.copyRateMiB,
              signal: beat.signal,
              onProgress: (bytes, total) => beat.set({ ...progress, current: { name: d.name, bytes, total } }),
            });
            progress.bytes += r.bytes;
          } catch (e) {
            if (beat.signal.aborted) throw e;
            throw failure(Code.CANNOT_COPY_IMAGE_TO_BACKUP_LOCATION, `copy of ${d.path} to retain: ${(e as Error).message}`);
          }
          await files.setOwnership(at(d.name), plan.images, 'file');
          progress.done.push(d.name);
          beat.set({ ...progress });
        }
      } finally {
        beat.stop();
      }
      return { bytes: progress.bytes, files: plan.disks.length + 3, durationMs: Date.now() - started, resumedBytes };
    },
  };
}
