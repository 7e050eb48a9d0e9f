/**
 * What one restore touches (docs/restore.md): the backup iteration in the backup root, the
 * retain directory the files are unretained to, and, once the backed-up domain XML has been read,
 * the images and the paths the backup recorded for them. Pure, like the backup plan.
 */
import type { BackupContext, Ownership } from './backup-plan.js';
import type { ResticRepository } from './backup-root.js';
import { Code } from './exit-codes.js';
import { diskNames, fileNames, iterationDirs, suffixedIterationFiles, type IterationDirs, type IterationFiles } from './layout.js';

export type RestoreStep = 'unretainSmallFiles' | 'unretainLargeFiles' | 'restore' | 'cleanup';

export interface RestorePlan {
  vm: string;
  ou: string;
  leafDn: string;
  node: string;
  /** Where the iteration was found (its directory in the backup root). */
  backupDir: string;
  /** `<retainRoot>/<same intermediate path>`: where the files are unretained to. */
  retainDir: string;
  retainRoot: string;
  /** `<dir of first disk relative to the virtualization root>/<vm>/<ou>` (the found one for a relocated iteration). */
  intermediate: string;
  /**
   * The iteration is a snapshot in this restic repository (docs/repository.md): unretaining is a
   * `restic restore` of it into the retain directory, where it then lies as a plain iteration does.
   */
  repository?: ResticRepository;
  /** The snapshot's ID (found by locate from its vm and ou tags). */
  snapshot?: string;
  /** File names in both directories, with the `.<ou>` suffix of the backup layout. */
  files: IterationFiles;
  /** From the effective configuration (not from the leaf, unlike the original). */
  withoutState: boolean;
  forceStart: boolean;
  imageFormat: string;
  images: Ownership;
  directories: Ownership;
}

/** One image of the backup and where it goes back to. */
export interface RestoreImage {
  target: string;
  /** Name in the backup and retain directories (with the `.<ou>` suffix). */
  file: string;
  /** The path the backup recorded (source file in the backed-up XML). */
  destination: string;
}

/**
 * The iteration directories the layout predicts from the VM's first disk in LDAP. A root that is not
 * `file://` is `uriCode`: 35 for restores (as the original answered), 39 elsewhere.
 */
export function expectedBackupDir(ctx: BackupContext, virtualizationRoot: string, uriCode: number = Code.UNSUPPORTED_FILE_TRANSFER_PROTOCOL): IterationDirs {
  const c = ctx.configuration.config;
  return iterationDirs({
    vm: ctx.leaf.vm,
    ou: ctx.leaf.ou,
    disks: ctx.disks,
    rootDirectoryUri: c.rootDirectory,
    retainDirectoryUri: c.retainDirectory,
    virtualizationRoot,
    uriCode,
    noDiskCode: Code.MISSING_NECESSARY_FILES,
  });
}

export function restorePlan(ctx: BackupContext, dirs: IterationDirs, withoutState?: boolean, snapshot?: string): RestorePlan {
  const { leaf } = ctx;
  const c = ctx.configuration.config;
  return {
    vm: leaf.vm,
    ou: leaf.ou,
    leafDn: leaf.dn,
    node: ctx.node,
    backupDir: dirs.backupDir,
    retainDir: dirs.retainDir,
    retainRoot: dirs.retainRoot,
    intermediate: dirs.intermediate,
    ...(dirs.repository ? { repository: dirs.repository } : {}),
    ...(snapshot ? { snapshot } : {}),
    files: suffixedIterationFiles(leaf.vm, leaf.ou),
    withoutState: withoutState ?? c.restoreWithoutState,
    forceStart: c.forceStart,
    imageFormat: c.imageFormat,
    images: { owner: c.imageOwner, group: c.imageGroup, mode: c.imagePermission },
    directories: { owner: c.directoryOwner, group: c.directoryGroup, mode: c.directoryPermission },
  };
}

/** The images of a backup from its domain XML's file disks, named as the backup named them. */
export function restoreImages(plan: RestorePlan, disks: Array<{ target: string; path: string }>): RestoreImage[] {
  const names = diskNames(disks);
  return disks.map((d, i) => ({ target: d.target, file: fileNames.inBackup(names[i]!, plan.ou), destination: d.path }));
}
