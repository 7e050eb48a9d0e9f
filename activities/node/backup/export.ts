/**
 * Export ("retain" in the original's words): the retain folder's files published in the backup root
 * in the original layout `<root>/<image dir>/<vm>/<ou>/<file>.<ou>`, the sha256 manifest (from the
 * hashes taken when the files reached the retain directory) written last (an iteration without it
 * is incomplete), then the retain folder removed. Where the retain folder is on the backup root's
 * filesystem (always, unless an older version chose it; the preflight puts it there), each file is
 * moved by rename: every byte of a backup is written once. Otherwise each is copied (resumable,
 * checked for its size).
 *
 * With [Backup] EXPORT_COMMAND other than `cp -p` (docs/configuration.md), that command copies each
 * file instead (`<command…> <src> <dst>`, no shell, where the node's commands run); every copy is
 * then read back and compared with its recorded sha256 before the manifest is written, and the
 * manifest is read back after it.
 */
import { retainFiles, type CopyStats, type PreparedBackup } from '../../../core/backup-plan.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { fileNames, ledgerPath, manifestText, parseManifest } from '../../../core/layout.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat } from '../heartbeat.js';
import { createRepositoryExport } from './export-repository.js';

interface ExportProgress {
  phase: 'export';
  /** names in retain whose copy is finished */
  done: string[];
  current?: { name: string; bytes: number; total: number };
  bytes: number;
}

export function createExport(deps: NodeDeps) {
  const { files } = deps;
  const exportToRepository = createRepositoryExport(deps);

  /**
   * Each file the export command wrote, hashed where it lies and compared with the hash taken when
   * it reached the retain directory; a copy that differs is removed (the retry exports it again).
   */
  async function verifyExported(plan: PreparedBackup['plan'], names: string[], hashes: Record<string, string>): Promise<void> {
    for (const name of names) {
      const dst = `${plan.backupDir}/${fileNames.inBackup(name, plan.ou)}`;
      const actual = await files.sha256(dst);
      if (hashes[name] === undefined) hashes[name] = actual;
      else if (actual !== hashes[name]) {
        await files.remove(dst);
        throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `EXPORT_COMMAND wrote ${dst} with sha256 ${actual}, the retained file has ${hashes[name]}; removed`);
      }
    }
  }

  /** The manifest as written, read back: every file listed with its hash (the manifest is the iteration's seal). */
  async function checkManifest(manifest: string, entries: Array<[string, string]>): Promise<void> {
    const listed = parseManifest(await files.readText(manifest));
    const wrong = entries.filter(([n, h]) => listed.get(n) !== h).map(([n]) => n);
    if (wrong.length || listed.size !== entries.length) {
      await files.remove(manifest);
      throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `the manifest ${manifest} read back does not list ${wrong.join(', ') || 'the files'} as written; removed`);
    }
  }

  return {
    /** The retain files published in the backup root: as an iteration directory, or as a restic snapshot (docs/repository.md). */
    async exportBackup(p: PreparedBackup): Promise<CopyStats> {
      const { plan } = p;
      if (plan.repository) return exportToRepository(p);
      const started = Date.now();
      const manifest = `${plan.backupDir}/${fileNames.inBackup(plan.files.manifest, plan.ou)}`;
      if ((await files.exists(manifest)) && !(await files.exists(plan.retainDir))) {
        const listed = parseManifest(await files.readText(manifest));
        return { bytes: 0, files: listed.size, durationMs: 0, resumedBytes: 0 }; // done by an earlier attempt
      }
      await files.makeDirectory(plan.backupDir, plan.directories);
      const beat = startHeartbeat<ExportProgress>({ phase: 'export', done: [], bytes: 0 });
      const progress: ExportProgress = { phase: 'export', done: [...(beat.previous?.done ?? [])], bytes: beat.previous?.bytes ?? 0 };
      const names = retainFiles(p);
      const hashes = await files.readJson<Record<string, string>>(ledgerPath(plan.retainDir, 'hashes'), {});
      let resumedBytes = 0;
      try {
        for (const name of names) {
          const src = `${plan.retainDir}/${name}`;
          const dst = `${plan.backupDir}/${fileNames.inBackup(name, plan.ou)}`;
          if (progress.done.includes(name) && (await files.exists(dst))) continue;
          if (!(await files.exists(src))) {
            if (await files.exists(dst)) continue; // moved by an earlier attempt that did not live to say so
            throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `${src} is missing from the retain directory`);
          }
          if (deps.exportFile) {
            // [Backup] EXPORT_COMMAND: the operator's command copies, checked against the hashes below
            try {
              await files.remove(dst);
              await deps.exportFile(src, dst, beat.signal);
              const [a, b] = await Promise.all([files.size(src), files.size(dst)]);
              if (a !== b) throw new Error(`the export command left ${b ?? 'no'} bytes, the retained file has ${a}`);
            } catch (e) {
              if (beat.signal.aborted) throw e;
              throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `EXPORT_COMMAND ${src} → ${dst}: ${(e as Error).message}`, {}, { cause: e });
            }
            await files.setOwnership(dst, plan.images, 'file');
            progress.bytes += (await files.size(dst)) ?? 0;
            progress.done.push(name);
            beat.set({ ...progress });
            continue;
          }
          if (await files.sameFilesystem(src, plan.backupDir)) {
            // the file becomes the backup's by rename: no byte written twice
            try {
              await files.rename(src, dst);
            } catch (e) {
              throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `${src} → ${dst}: ${(e as Error).message}`, {}, { cause: e });
            }
            await files.setOwnership(dst, plan.images, 'file');
            hashes[name] ??= await files.sha256(dst);
            progress.done.push(name);
            beat.set({ ...progress });
            continue;
          }
          const resumeFrom = beat.previous?.current?.name === name ? beat.previous.current.bytes : 0;
          resumedBytes += resumeFrom;
          try {
            const r = await deps.copy({
              src,
              dst,
              resumeFrom,
              rateMiB: deps.copyRateMiB,
              signal: beat.signal,
              onProgress: (bytes, total) => beat.set({ ...progress, current: { name, bytes, total } }),
            });
            progress.bytes += r.bytes;
            const [a, b] = await Promise.all([files.size(src), files.size(dst)]);
            if (a !== b) throw new Error(`the copy has ${b} bytes, the retained file ${a}`);
          } catch (e) {
            if (beat.signal.aborted) throw e;
            throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `${src} → ${dst}: ${(e as Error).message}`, {}, { cause: e });
          }
          await files.setOwnership(dst, plan.images, 'file');
          // a retain directory of an older version has no hash for a file: hash the copy
          hashes[name] ??= await files.sha256(dst);
          progress.done.push(name);
          beat.set({ ...progress });
        }
        // an external command's copies are trusted only after each was read back against its hash
        if (deps.exportFile) await verifyExported(plan, names, hashes);
        const entries = names.map((n): [string, string] => [fileNames.inBackup(n, plan.ou), hashes[n]!]);
        await files.writeSmallFile(manifest, manifestText(entries), plan.images, Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION);
        if (deps.exportFile) await checkManifest(manifest, entries);
      } finally {
        beat.stop();
      }
      await files.removeDirectory(plan.retainDir, plan.retainRoot);
      return { bytes: progress.bytes, files: names.length, durationMs: Date.now() - started, resumedBytes };
    },
  };
}
