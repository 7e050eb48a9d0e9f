/**
 * Rotation of the plain layout: keep the finished iterations of a VM in the backup root that its
 * retention keeps (sstBackupNumberOfIterations and the calendar rules, core/retention.ts), delete
 * the others with their directories (the original left empty directories behind).
 * An iteration is finished when its manifest exists, or, for iterations the Perl daemon wrote, when
 * its state file and XML are there. Unfinished iterations are left for an operator to look at.
 */
import type { BackupContext, BackupPlan } from '../../../core/backup-plan.js';
import { suffixedIterationFiles } from '../../../core/layout.js';
import { isLeafOu } from '../../../core/naming.js';
import { iterationsBeyond, type RetentionPolicy } from '../../../core/retention.js';
import { Code } from '../../../core/exit-codes.js';
import { tagValue } from '../../../core/restic.js';
import type { NodeDeps } from '../deps.js';
import { locateIteration } from '../locate-iteration.js';
import { iterationSnapshots, repositoryFailure } from '../repository.js';

export interface RotationResult {
  kept: string[];
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

  return {
    /**
     * `keep`: the VM's retention policy, or a bare keep-last count (what workflows started before the
     * calendar rules pass). The current iteration (`plan.ou`) is never deleted. Errors: 13 when a
     * directory cannot be removed (Files.removeDirectory).
     */
    async rotateIterations(plan: BackupPlan, keep: number | RetentionPolicy): Promise<RotationResult> {
      if (plan.repository) return rotateRepository(plan, keep);
      const ous = (await files.list(plan.backupVmDir)).filter(isLeafOu).sort().reverse();
      const done: string[] = [];
      const unfinished: string[] = [];
      for (const ou of ous) ((await finished(plan, ou)) ? done : unfinished).push(ou);
      const deleted = iterationsBeyond(done, keep).filter((ou) => ou !== plan.ou);
      const kept = done.filter((ou) => !deleted.includes(ou));
      for (const ou of deleted) await files.removeDirectory(`${plan.backupVmDir}/${ou}`, plan.backupRoot);
      return { kept, deleted, unfinished };
    },

    /**
     * The `delete` step: one iteration's directory, found from the leaf and the layout alone (the VM
     * may be gone or its disks changed); an iteration already gone is fine.
     */
    async deleteIteration(ctx: BackupContext): Promise<{ deleted: boolean; backupDir: string }> {
      const { dirs, found, snapshots } = await locateIteration(deps, ctx, deps.virtualizationRoot);
      if (found && dirs.repository) {
        try {
          await deps.restic.forget(dirs.repository, snapshots);
          await deps.restic.prune(dirs.repository);
        } catch (e) {
          throw repositoryFailure(e, Code.CANNOT_REMOVE_FILE, `delete of ${ctx.leaf.vm} ${ctx.leaf.ou} from ${dirs.repository.uri}`);
        }
      } else if (found) await files.removeDirectory(dirs.backupDir, dirs.backupRoot);
      return { deleted: found, backupDir: dirs.backupDir };
    },
  };
}
