/**
 * Export into a restic repository (docs/repository.md): the retain folder's files become one restic
 * snapshot, under the names of the plain layout (`<file>.<ou>`, hard links in a view directory) with
 * the sha256 manifest beside them, tagged with the VM, the leaf's ou and the node, timed at the
 * leaf's instant; then the retain folder is removed. restic stores only the chunks the repository
 * does not hold yet, compressed and encrypted; its JSON status lines are the heartbeat's progress.
 * A snapshot is written whole or not at all, so one that carries this leaf's tags is a finished
 * iteration: a retry after a crash finds it and only removes the retain folder.
 */
import { retainFiles, type CopyStats, type PreparedBackup } from '../../../core/backup-plan.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { fileNames, ledgerPath, manifestText, snapshotViewDirectory } from '../../../core/layout.js';
import { joinPath, parseLeafTimestamp } from '../../../core/naming.js';
import { snapshotTags } from '../../../core/restic.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat } from '../heartbeat.js';
import { iterationSnapshots, repositoryFailure } from '../repository.js';

export interface RepositoryExport extends CopyStats {
  /** The snapshot holding the iteration. */
  snapshot: string;
  /** Bytes the iteration's files hold (what a plain export would have written). */
  logicalBytes: number;
}

interface ExportProgress {
  phase: 'export';
  current?: { name: string; bytes: number; total: number };
  bytes: number;
}

export function createRepositoryExport(deps: NodeDeps) {
  const { files, restic } = deps;

  return async function exportToRepository(p: PreparedBackup): Promise<RepositoryExport> {
    const { plan } = p;
    const repo = plan.repository!;
    const started = Date.now();
    const what = `restic backup of ${plan.retainDir} into ${repo.uri}`;
    let existing;
    try {
      existing = await iterationSnapshots(restic, repo, plan.vm, plan.ou);
    } catch (e) {
      throw repositoryFailure(e, Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, what);
    }
    const names = retainFiles(p);
    if (existing.length > 0) {
      // done by an earlier attempt that did not live to remove the retain folder
      await files.removeDirectory(plan.retainDir, plan.retainRoot);
      const s = existing[existing.length - 1]!;
      return { bytes: 0, files: names.length + 1, durationMs: 0, resumedBytes: 0, snapshot: s.id, logicalBytes: s.summary?.total_bytes_processed ?? 0 };
    }
    if (!(await files.exists(plan.retainDir))) throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `${plan.retainDir} is gone and ${repo.uri} has no snapshot of ${plan.vm} ${plan.ou}`);

    // the snapshot's files: the backup names, hard links to the retain files, and the manifest
    const view = snapshotViewDirectory(plan.retainDir, plan.ou);
    await files.removeDirectory(view, plan.retainDir);
    await files.makeDirectory(view, plan.directories);
    const hashes = await files.readJson<Record<string, string>>(ledgerPath(plan.retainDir, 'hashes'), {});
    const stored: string[] = [];
    for (const name of names) {
      const src = joinPath(plan.retainDir, name);
      if (!(await files.exists(src))) throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `${src} is missing from the retain directory`);
      // a retain directory of an older version has no hash for a file: hash it now
      hashes[name] ??= await files.sha256(src);
      const as = fileNames.inBackup(name, plan.ou);
      await files.link(src, joinPath(view, as));
      stored.push(as);
    }
    const manifest = fileNames.inBackup(plan.files.manifest, plan.ou);
    await files.writeSmallFile(joinPath(view, manifest), manifestText(names.map((n) => [fileNames.inBackup(n, plan.ou), hashes[n]!])), plan.images, Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION);

    const beat = startHeartbeat<ExportProgress>({ phase: 'export', bytes: 0 });
    let summary;
    try {
      summary = await restic.backup(repo, {
        cwd: view,
        files: [...stored, manifest],
        tags: snapshotTags({ vm: plan.vm, ou: plan.ou, node: plan.node }),
        host: plan.node,
        time: parseLeafTimestamp(plan.ou)!,
        signal: beat.signal,
        onProgress: (s) => beat.set({ phase: 'export', bytes: s.bytes, current: { name: s.file ?? stored[0]!, bytes: s.bytes, total: s.total } }),
      });
    } catch (e) {
      if (beat.signal.aborted) throw e;
      throw repositoryFailure(e, Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, what);
    } finally {
      beat.stop();
    }
    await files.removeDirectory(plan.retainDir, plan.retainRoot);
    return {
      bytes: summary.data_added_packed,
      files: stored.length + 1,
      durationMs: Date.now() - started,
      resumedBytes: 0,
      snapshot: summary.snapshot_id ?? '',
      logicalBytes: summary.total_bytes_processed,
    };
  };
}
