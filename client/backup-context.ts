/**
 * The CLI reads a leaf's context (VM, node, disks, effective configuration) through the same
 * directory model the control worker uses, and finds where its iteration lies on this node.
 * Failures keep their exit codes.
 */
import type { BackupContext } from '../core/backup-plan.js';
import { codeOf, messageOf } from '../core/failures.js';
import { leafDn } from '../core/naming.js';
import { expectedBackupDir } from '../core/restore-plan.js';
import { CliError, type CliContext } from './cli-context.js';

export async function backupContext(ctx: CliContext, vm: string, ou: string): Promise<BackupContext> {
  try {
    return await ctx.directory.loadBackupContext(leafDn(ctx.config.database.serviceSubtree, vm, ou));
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
