/**
/**
 * Rotation and the `delete` step: removing backup iterations from the backup root, crash-safe.
 *
 * Rotation of the plain layout keeps the finished iterations of a VM in the backup root that its
 * retention keeps (sstBackupNumberOfIterations and the calendar rules, core/retention.ts) and deletes
 * the others with their directories (the original left empty directories behind). An iteration is
 * finished when its manifest exists, or, for iterations the Perl daemon wrote, when its state file and
 * XML are there. Unfinished iterations are left for an operator to look at. A restic repository as
 * backup root (docs/repository.md) is rotated by the same rules with `restic forget` and `prune`.
 *
 * Deleting one iteration of the plain layout goes in an order a crash cannot spoil
 * (docs/on-disk-layout.md, "Deleting an iteration"): its directory is first renamed to
 * `.deleting-<ou>` (one atomic rename: the iteration is whole under its own name, or marked), then its
 * files are removed one by one, then the directory. A retry, or the next rotation, finds the marked
 * directories and finishes them, and reports their ous as deleted: a marked iteration is never counted
 * as unfinished, nor against the iterations kept. In a backup, `rotateIterations` only marks; the
 * workflow removes the leaves of the marked iterations, then `purgeDeletedIterations` removes the
 * files, so no leaf says `finished` for an iteration whose files are gone.
 */
import type { BackupContext, BackupPlan } from '../../../core/backup-plan.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { deletingDirName, ouOfDeletingDir, suffixedIterationFiles } from '../../../core/layout.js';
import { dirname, isLeafOu, joinPath } from '../../../core/naming.js';
import { tagValue } from '../../../core/restic.js';
import { iterationsBeyond, type RetentionPolicy } from '../../../core/retention.js';
import type { NodeDeps } from '../deps.js';
import { locateIteration } from '../locate-iteration.js';
import { iterationSnapshots, repositoryFailure } from '../repository.js';

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

  /**
   * A repository keeps the same iterations by the same rules (core/retention.ts over the ou tags of
   * the VM's snapshots, every snapshot being finished), then `restic forget` of the others' snapshot
   * IDs and `restic prune` frees what only they used. Errors: the restic codes (docs/repository.md),
   * else 13 like a directory that cannot be removed.
   */
  async function rotateRepository(plan: BackupPlan, keep: number | RetentionPolicy): Promise<RotationResult> {
    const repo = plan.repository!;
    try {
      const snapshots = await iterationSnapshots(deps.restic, repo, plan.vm);
      const ous = [...new Set(snapshots.map((s) => tagValue(s.tags, 'ou')).filter((ou): ou is string => !!ou && isLeafOu(ou)))].sort().reverse();
      const deleted = iterationsBeyond(ous, keep).filter((ou) => ou !== plan.ou);
      const kept = ous.filter((ou) => !deleted.includes(ou));
      const ids = snapshots.filter((s) => deleted.includes(tagValue(s.tags, 'ou') ?? '')).map((s) => s.id);
      if (ids.length) {
        await deps.restic.forget(repo, ids);
        await deps.restic.prune(repo);
      }
      return { kept, deleted, unfinished: [] };
    } catch (e) {
      throw repositoryFailure(e, Code.CANNOT_REMOVE_FILE, `rotation of ${plan.vm} in ${repo.uri}`);
    }
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
     * `keep`: the VM's retention policy, or a bare keep-last count (what workflows started before the
     * calendar rules pass). The current iteration (`plan.ou`) is never deleted. Plain layout: marks
     * the iterations beyond those kept for deletion (oldest first) and returns them with those an
     * earlier attempt marked; removes nothing (purgeDeletedIterations does). Errors: 13 when a
     * directory cannot be marked; a repository's: see rotateRepository.
     */
    async rotateIterations(plan: BackupPlan, keep: number | RetentionPolicy): Promise<RotationResult> {
      if (plan.repository) return rotateRepository(plan, keep);
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

    /** Removes every marked iteration of the VM (files, then directories); returns their ous. Errors: 13 (Files.removeDirectory). */
    async purgeDeletedIterations(plan: BackupPlan): Promise<{ purged: string[] }> {
      // a repository's rotation forgot its snapshots at once: nothing marked
      if (plan.repository) return { purged: [] };
      const purged = await markedIn(plan.backupVmDir);
      for (const ou of purged) await purge(joinPath(plan.backupVmDir, deletingDirName(ou)), plan.backupRoot);
      return { purged };
    },

    /**
     * The `delete` step: one iteration, found from the leaf and the layout alone (the VM may be gone
     * or its disks changed), marked, then removed; an iteration an earlier attempt marked is
     * finished; one already gone is fine (`deleted: false`). In a repository: the iteration's
     * snapshots forgotten and pruned (restic's codes, else 13).
     */
    async deleteIteration(ctx: BackupContext): Promise<{ deleted: boolean; backupDir: string }> {
      const { ou, vm } = ctx.leaf;
      const { dirs, found, snapshots } = await locateIteration(deps, ctx, deps.virtualizationRoot);
      if (found && dirs.repository) {
        try {
          await deps.restic.forget(dirs.repository, snapshots);
          await deps.restic.prune(dirs.repository);
        } catch (e) {
          throw repositoryFailure(e, Code.CANNOT_REMOVE_FILE, `delete of ${vm} ${ou} from ${dirs.repository.uri}`);
        }
        return { deleted: true, backupDir: dirs.backupDir };
      }
      if (dirs.repository) return { deleted: false, backupDir: dirs.backupDir };
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
