/**
 * What one restore touches (SPEC §3, original §4): the backup iteration in the backup root, the
 * retain directory the files are unretained to, and, once the backed-up domain XML has been read,
 * the images and the paths the backup recorded for them. Pure, like the backup plan.
 */
import type { BackupContext } from './backup-plan.js';
import { diskNames } from './backup-plan.js';
import { Code } from './exit-codes.js';
import { fileNames, fileUriToPath, intermediatePath, iterationDirectory, NamingError } from './naming.js';
import type { Ownership } from './backup-plan.js';

export type RestoreStep = 'unretainSmallFiles' | 'unretainLargeFiles' | 'restore' | 'cleanup';
export const RESTORE_STEPS: readonly RestoreStep[] = ['unretainSmallFiles', 'unretainLargeFiles', 'restore'];

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
  /** File names in both directories, with the `.<ou>` suffix of the backup layout. */
  files: { state: string; xml: string; ldif: string; manifest: string };
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

/** The iteration directory the layout predicts from the VM's first disk in LDAP (the original's rule). */
export function expectedBackupDir(ctx: BackupContext, virtualizationRoot: string): { backupDir: string; retainDir: string; retainRoot: string; backupRoot: string } {
  const c = ctx.configuration.config;
  // restore refuses other protocols with 35, as the original did
  const backupRoot = fileUriToPath(c.rootDirectory, 'sstBackupRootDirectory', Code.UNSUPPORTED_FILE_TRANSFER_PROTOCOL);
  const retainRoot = fileUriToPath(c.retainDirectory, 'sstBackupRetainDirectory', Code.UNSUPPORTED_FILE_TRANSFER_PROTOCOL);
  if (ctx.disks.length === 0) throw new NamingError(Code.MISSING_NECESSARY_FILES, `VM ${ctx.leaf.vm} has no disk in the directory`);
  const intermediate = intermediatePath(ctx.disks[0]!.path, ctx.leaf.vm, ctx.leaf.ou, virtualizationRoot);
  return {
    backupDir: iterationDirectory(backupRoot, intermediate),
    retainDir: iterationDirectory(retainRoot, intermediate),
    retainRoot,
    backupRoot,
  };
}

export function restorePlan(ctx: BackupContext, dirs: { backupDir: string; retainDir: string; retainRoot: string }, withoutState?: boolean): RestorePlan {
  const { leaf } = ctx;
  const c = ctx.configuration.config;
  const suffixed = (f: string) => fileNames.inBackup(f, leaf.ou);
  return {
    vm: leaf.vm,
    ou: leaf.ou,
    leafDn: leaf.dn,
    node: ctx.node,
    ...dirs,
    files: {
      state: suffixed(fileNames.state(leaf.vm)),
      xml: suffixed(fileNames.xml(leaf.vm)),
      ldif: suffixed(fileNames.ldif(leaf.vm)),
      manifest: suffixed(fileNames.manifest),
    },
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
