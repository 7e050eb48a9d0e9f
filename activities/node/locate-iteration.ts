/**
 * Where an iteration lies: where the layout predicts it from the VM's disks in the directory, or,
 * when those moved since the backup was written, wherever `<vm>/<ou>` is found below the backup
 * root (docs/on-disk-layout.md). Shared by the restore, `verify` and `delete`.
 */
import type { Files } from '../../adapters/host/files.js';
import type { BackupContext } from '../../core/backup-plan.js';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import { relocatedIteration, type IterationDirs } from '../../core/layout.js';
import { joinPath, NamingError } from '../../core/naming.js';
import { expectedBackupDir } from '../../core/restore-plan.js';

/**
 * The iteration's directories; `found` is false when it is neither where predicted nor anywhere
 * below the root. `uriCode`: 35 for restores (the original's answer to another protocol), 39 else.
 */
export async function locateIteration(
  files: Files,
  ctx: BackupContext,
  virtualizationRoot: string,
  uriCode: number = Code.UNSUPPORTED_CONFIGURATION_PARAMETER,
): Promise<{ dirs: IterationDirs; found: boolean }> {
  let dirs: IterationDirs;
  try {
    dirs = expectedBackupDir(ctx, virtualizationRoot, uriCode);
  } catch (e) {
    if (e instanceof NamingError) throw failure(e.code, e.message);
    throw e;
  }
  if (await files.exists(dirs.backupDir)) return { dirs, found: true };
  const { vm, ou } = ctx.leaf;
  const vmDir = await files.findDirectory(dirs.backupRoot, async (path, name) => name === vm && (await files.exists(joinPath(path, ou))));
  return vmDir ? { dirs: relocatedIteration(dirs, joinPath(vmDir, ou)), found: true } : { dirs, found: false };
}
