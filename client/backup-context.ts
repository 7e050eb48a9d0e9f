/**
 * The CLI reads a leaf's context (VM, node, disks, effective configuration) with the very code the
 * control worker uses, and finds where its iteration lies. Failures keep their exit codes.
 */
import { createBackupLeafActivities } from '../activities/control/backup-leaf.js';
import type { BackupContext } from '../core/backup-plan.js';
import { codeOf, messageOf } from '../core/failures.js';
import { leafDn } from '../core/naming.js';
import { expectedBackupDir } from '../core/restore-plan.js';
import { CliError, type CliContext } from './cli-context.js';

export async function backupContext(ctx: CliContext, vm: string, ou: string): Promise<BackupContext> {
  const db = ctx.config.database;
  const leaf = createBackupLeafActivities({ directory: ctx.directory, serviceSubtree: db.serviceSubtree, cloudWideConfigurationDn: db.cloudWideConfigurationDn });
  try {
    return await leaf.loadBackupContext(leafDn(db.serviceSubtree, vm, ou));
  } catch (e) {
    throw new CliError(codeOf(e), messageOf(e));
  }
}

/** The iteration directory of a backup as the layout predicts it on this node, or undefined if the configuration does not allow one. */
export function iterationDir(ctx: CliContext, context: BackupContext): string | undefined {
  try {
    return expectedBackupDir(context, ctx.config.backup.virtualizationRoot).backupDir;
  } catch {
    return undefined;
  }
}
