/**
 * Rotation: keep the newest `sstBackupNumberOfIterations` finished iterations of a VM in the backup
 * root, delete the older ones with their directories (the original left empty directories behind).
 * An iteration is finished when its manifest exists, or, for iterations the Perl daemon wrote, when
 * its state file and XML are there. Unfinished iterations are left for an operator to look at.
 */
import { fileNames, isLeafOu } from '../../../core/naming.js';
import type { BackupPlan } from '../../../core/backup-plan.js';
import { exists } from '../files.js';
import type { BackupNodeDeps } from './deps.js';

export interface RotationResult {
  kept: string[];
  deleted: string[];
  unfinished: string[];
}

export function createRotate(deps: BackupNodeDeps) {
  const { files } = deps;

  async function finished(plan: BackupPlan, ou: string): Promise<boolean> {
    const dir = `${plan.backupVmDir}/${ou}`;
    if (await exists(`${dir}/${fileNames.inBackup(plan.files.manifest, ou)}`)) return true;
    return (await exists(`${dir}/${fileNames.inBackup(plan.files.state, ou)}`)) && (await exists(`${dir}/${fileNames.inBackup(plan.files.xml, ou)}`));
  }

  return {
    async rotateIterations(plan: BackupPlan, keep: number): Promise<RotationResult> {
      const ous = (await files.list(plan.backupVmDir)).filter(isLeafOu).sort().reverse();
      const done: string[] = [];
      const unfinished: string[] = [];
      for (const ou of ous) ((await finished(plan, ou)) ? done : unfinished).push(ou);
      const kept = done.slice(0, Math.max(1, keep));
      const deleted = done.slice(Math.max(1, keep)).filter((ou) => ou !== plan.ou);
      for (const ou of deleted) await files.removeDirectory(`${plan.backupVmDir}/${ou}`, plan.backupRoot);
      return { kept, deleted, unfinished };
    },

    /** The `delete` step: one iteration's directory, wherever it is (missing is fine). */
    async deleteIteration(plan: BackupPlan, ou: string): Promise<{ deleted: boolean }> {
      const dir = `${plan.backupVmDir}/${ou}`;
      const there = await exists(dir);
      await files.removeDirectory(dir, plan.backupRoot);
      return { deleted: there };
    },
  };
}
