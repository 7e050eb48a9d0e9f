/**
 * Rotation and the `delete` step: removing backup iterations from the backup root, crash-safe.
 *
 * Rotation keeps the newest `sstBackupNumberOfIterations` finished iterations of a VM and deletes the
 * older ones with their directories (the original left empty directories behind). An iteration is
 * finished when its manifest exists, or, for iterations the Perl daemon wrote, when its state file and
 * XML are there. Unfinished iterations are left for an operator to look at.
 *
 * Deleting one iteration goes in an order a crash cannot spoil (docs/on-disk-layout.md, "Deleting an
 * iteration"): its directory is first renamed to `.deleting-<ou>` (one atomic rename: the iteration
 * is whole under its own name, or marked), then its files are removed one by one, then the directory.
 * A retry, or the next rotation, finds the marked directories and finishes them, and reports their ous
 * as deleted: a marked iteration is never counted as unfinished, nor against the iterations kept.
 * In a backup, `rotateIterations` only marks; the workflow removes the leaves of the marked
 * iterations, then `purgeDeletedIterations` removes the files, so no leaf says `finished` for an
 * iteration whose files are gone.
 */
import type { BackupContext, BackupPlan } from '../../../core/backup-plan.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { deletingDirName, ouOfDeletingDir, suffixedIterationFiles } from '../../../core/layout.js';
import { dirname, isLeafOu, joinPath } from '../../../core/naming.js';
import { iterationsBeyond } from '../../../core/retention.js';
import type { NodeDeps } from '../deps.js';
import { locateIteration } from '../locate-iteration.js';

export interface RotationResult {
  kept: string[];
  /** Iterations marked for deletion (by this call or an earlier one that did not finish), oldest first. */
  deleted: string[];
  unfinished: string[];
}

export function createRotate(deps: NodeDeps) {
  const { files } = deps;

  async function finished(plan: BackupPlan, ou: string): Promise<boolean> {
    const dir = `${plan.backupVmDir}/${ou}`;
    const names = suffixedIterationFiles(plan.vm, ou);
    if (await files.exists(`${dir}/${names.manifest}`)) return true;
    return (await files.exists(`${dir}/${names.state}`)) && (await files.exists(`${dir}/${names.xml}`));
  }

  /** `<vmDir>/<ou>` → `<vmDir>/.deleting-<ou>`: the step after which the iteration counts as deleted. */
  async function mark(iterationDir: string, ou: string): Promise<string> {
    const marked = joinPath(dirname(iterationDir), deletingDirName(ou));
    try {
      await files.rename(iterationDir, marked);
    } catch (e) {
      throw failure(Code.CANNOT_REMOVE_FILE, `cannot mark ${iterationDir} for deletion: ${(e as Error).message}`, {}, { cause: e });
    }
    return marked;
  }

  /** A marked directory's files one by one, then the directory and each parent left empty (up to `root`). */
  async function purge(marked: string, root: string): Promise<void> {
    for (const name of await files.list(marked)) await files.removeDirectory(joinPath(marked, name), marked);
    await files.removeDirectory(marked, root);
  }

  /** The ous of the marked directories in `vmDir`, oldest first. */
  async function markedIn(vmDir: string): Promise<string[]> {
    return (await files.list(vmDir)).map(ouOfDeletingDir).filter((ou): ou is string => ou !== undefined).sort();
  }

  return {
    /**
     * Marks the iterations beyond the newest `keep` finished ones for deletion (oldest first) and
     * returns them with those an earlier attempt marked; removes nothing (purgeDeletedIterations does).
     */
    async rotateIterations(plan: BackupPlan, keep: number): Promise<RotationResult> {
      const earlier = await markedIn(plan.backupVmDir);
      const ous = (await files.list(plan.backupVmDir)).filter(isLeafOu).sort().reverse();
      const done: string[] = [];
      const unfinished: string[] = [];
      for (const ou of ous) ((await finished(plan, ou)) ? done : unfinished).push(ou);
      const beyond = iterationsBeyond(done, keep).filter((ou) => ou !== plan.ou);
      for (const ou of beyond) await mark(joinPath(plan.backupVmDir, ou), ou);
      const kept = done.filter((ou) => !beyond.includes(ou));
      return { kept, deleted: [...new Set([...earlier, ...beyond])].sort(), unfinished };
    },

    /** Removes every marked iteration of the VM (files, then directories); returns their ous. */
    async purgeDeletedIterations(plan: BackupPlan): Promise<{ purged: string[] }> {
      const purged = await markedIn(plan.backupVmDir);
      for (const ou of purged) await purge(joinPath(plan.backupVmDir, deletingDirName(ou)), plan.backupRoot);
      return { purged };
    },

    /**
     * The `delete` step: one iteration, found from the leaf and the layout alone (the VM may be gone
     * or its disks changed), marked, then removed; an iteration an earlier attempt marked is
     * finished; one already gone is fine (`deleted: false`).
     */
    async deleteIteration(ctx: BackupContext): Promise<{ deleted: boolean; backupDir: string }> {
      const { ou, vm } = ctx.leaf;
      const { dirs, found } = await locateIteration(files, ctx, deps.virtualizationRoot);
      let marked: string | undefined;
      if (found) marked = await mark(dirs.backupDir, ou);
      else {
        const predicted = joinPath(dirs.backupVmDir, deletingDirName(ou));
        if (await files.exists(predicted)) marked = predicted;
        else {
          const vmDir = await files.findDirectory(dirs.backupRoot, async (path, name) => name === vm && (await files.exists(joinPath(path, deletingDirName(ou)))));
          if (vmDir) marked = joinPath(vmDir, deletingDirName(ou));
        }
      }
      if (!marked) return { deleted: false, backupDir: dirs.backupDir };
      await purge(marked, dirs.backupRoot);
      return { deleted: true, backupDir: dirs.backupDir };
    },
  };
}
