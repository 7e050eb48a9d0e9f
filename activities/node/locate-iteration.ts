/**
 * Where an iteration lies: where the layout predicts it from the VM's disks in the directory, or,
 * when those moved since the backup was written, wherever `<vm>/<ou>` is found below the backup
 * root (docs/on-disk-layout.md); in a restic repository, the snapshots tagged with the VM and the ou
 * (docs/repository.md). Shared by the restore, `verify` and `delete`.
 */
import type { Files } from '../../adapters/host/files.js';
import type { Restic } from '../../adapters/host/restic.js';
import type { BackupContext } from '../../core/backup-plan.js';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import { relocatedIteration, type IterationDirs } from '../../core/layout.js';
import { joinPath, NamingError } from '../../core/naming.js';
import { expectedBackupDir } from '../../core/restore-plan.js';
import { iterationSnapshots, repositoryFailure } from './repository.js';

/**
 * The iteration's directories; `found` is false when it is neither where predicted nor anywhere
 * below the root. `uriCode`: 35 for restores (the original's answer to another protocol), 39 else.
 * For a repository, `snapshots` are the IDs of the iteration's snapshots (newest last; usually one).
 */
export async function locateIteration(
  deps: { files: Files; restic: Restic },
  ctx: BackupContext,
  virtualizationRoot: string,
  uriCode: number = Code.UNSUPPORTED_CONFIGURATION_PARAMETER,
): Promise<{ dirs: IterationDirs; found: boolean; snapshots: string[] }> {
  const { files } = deps;
  let dirs: IterationDirs;
  try {
    dirs = expectedBackupDir(ctx, virtualizationRoot, uriCode);
  } catch (e) {
    if (e instanceof NamingError) throw failure(e.code, e.message);
    throw e;
  }
  const { vm, ou } = ctx.leaf;
  if (dirs.repository) {
    let snapshots;
    try {
      snapshots = await iterationSnapshots(deps.restic, dirs.repository, vm, ou);
    } catch (e) {
      throw repositoryFailure(e, Code.MISSING_NECESSARY_FILES, `looking for ${vm} ${ou} in ${dirs.repository.uri}`);
    }
    return { dirs, found: snapshots.length > 0, snapshots: snapshots.map((s) => s.id) };
  }
  if (await files.exists(dirs.backupDir)) return { dirs, found: true, snapshots: [] };
  const vmDir = await files.findDirectory(dirs.backupRoot, async (path, name) => name === vm && (await files.exists(joinPath(path, ou))));
  return vmDir ? { dirs: relocatedIteration(dirs, joinPath(vmDir, ou)), found: true, snapshots: [] } : { dirs, found: false, snapshots: [] };
}
