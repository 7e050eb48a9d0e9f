/**
 * The backup on disk: every directory and file of an iteration, in the backup root and in the
 * retain directory, and every ledger the steps keep beside their files. Nothing else in the product
 * spells a file name of a backup. The layout is the original daemon's, so its backups stay
 * restorable and ours stay readable by its tools (docs/on-disk-layout.md):
 *
 *   <root>/<image dir relative to VIRTUALIZATION_ROOT>/<vm>/<ou>/<file>.<ou>
 *
 * Pure: paths are computed here, read and written by the host adapters.
 */
import { parseBackupRoot, type ResticRepository } from './backup-root.js';
import { Code } from './exit-codes.js';
import {
  assertLeafOu, assertVmName, basename, dirname, fileUriToPath, isInside, isLeafOu, joinPath, NamingError, normalizePath,
} from './naming.js';

/** The original's marker in place of a state file for a VM that was not running (spelling included). */
export const NOT_RUNNING_STATE_MARKER = 'Machine is not runnung, no state file';

/** File names inside an iteration directory (before the `.<ou>` suffix of the backup copy). */
export const fileNames = {
  state: (vm: string) => `${assertVmName(vm)}.state`,
  xml: (vm: string) => `${assertVmName(vm)}.xml`,
  ldif: (vm: string) => `${assertVmName(vm)}.ldif`,
  /** This product's addition: what the backup found (run state, persistence, images, firmware files); BackupFacts. */
  facts: (vm: string) => `${assertVmName(vm)}.backup.json`,
  /** The VM's UEFI variable store (its NVRAM VARS file), where it has one. */
  nvram: (vm: string) => `${assertVmName(vm)}.nvram`,
  /** The emulated TPM's state directory as a tar archive (owners and modes kept), where it has one. */
  tpm: (vm: string) => `${assertVmName(vm)}.tpm.tar`,
  manifest: 'SHA256SUMS',
  /** `<file>.<ou>`, the original's suffix for everything in the backup root. */
  inBackup: (file: string, ou: string) => `${file}.${assertLeafOu(ou)}`,
};

/**
 * Small JSON files the steps keep beside their work, so a retry (or `list`) finds what an earlier
 * attempt did. Each is named here once; docs/on-disk-layout.md says who writes and reads it.
 */
export const LEDGERS = {
  /** retain dir (backup): sha256 of each file, taken when it reached retain; becomes the manifest. */
  hashes: '.sha256.json',
  /** retain dir (backup): the snapshot step's result, for a retry after its success. */
  snapshotResult: '.snapshot-result.json',
  /** retain dir (restore): sha256 of the files already unretained. */
  unretained: '.unretained.json',
  /** retain dir (restore): whether the VM ran and was persistent before the restore stopped it. */
  restoreStopped: '.restore-stopped.json',
  /** backup dir: the last `verify` of the iteration, shown by `list`. */
  verified: '.verified.json',
} as const;

export type Ledger = keyof typeof LEDGERS;

/** The `verified` ledger: the last `verify` of an iteration (how the files were checked, or the code of the problem). */
export interface VerifyRecord {
  /** ISO time of the verification. */
  at: string;
  ok: boolean;
  /** 'sha256' against the manifest, 'none' for an iteration of the original daemon (no manifest). */
  verified?: 'sha256' | 'none';
  code?: number;
  message?: string;
  warnings: string[];
  files: number;
  bytes: number;
}

export function ledgerPath(dir: string, ledger: Ledger): string {
  return joinPath(dir, LEDGERS[ledger]);
}

/** One disk of a VM as the layout names it. */
export interface LayoutDisk {
  target: string;
  path: string;
}

/**
 * Names of the disks in retain/backup: the image's basename as the original used it, except where two
 * disks of the VM share a basename (disks in different directories): then `<target>-<basename>`.
 */
export function diskNames(disks: readonly LayoutDisk[]): string[] {
  const counts = new Map<string, number>();
  for (const d of disks) counts.set(basename(d.path), (counts.get(basename(d.path)) ?? 0) + 1);
  return disks.map((d) => (counts.get(basename(d.path))! > 1 ? `${d.target}-${basename(d.path)}` : basename(d.path)));
}

/**
 * libvirt's persistent definition of a domain on a node (qemu:///system keeps one XML file per
 * persistent domain in /etc/libvirt/qemu, its default configuration directory). Named here only
 * so a backup can take away the one libvirt 9 writes by mistake for a transient domain
 * (activities/node/backup/transient-definition.ts).
 */
export function libvirtDefinitionPath(vm: string): string {
  return `/etc/libvirt/qemu/${assertVmName(vm)}.xml`;
}

/** The overlay a VM writes to while its image is frozen: next to the image, named after the leaf. */
export function overlayPath(imagePath: string, ou: string): string {
  return joinPath(dirname(imagePath), `${basename(imagePath)}.overlay-${ou}`);
}

/** Where the RAM state is written first on the RAM disk. */
export function stagingStatePath(ramDisk: string, vm: string, ou: string): string {
  return joinPath(ramDisk, `kvm-backup-${assertVmName(vm)}-${assertLeafOu(ou)}.state`);
}

/**
 * The original's "intermediate path": the first disk's directory relative to the virtualization
 * root, then `<vm>/<ou>`. A disk outside the root keeps its whole directory below the backup root
 * (the original would have produced a path with '//' and escaped nothing either).
 */
export function intermediatePath(firstDiskPath: string, vm: string, ou: string, virtualizationRoot = '/var/virtualization'): string {
  const dir = dirname(firstDiskPath);
  const root = normalizePath(virtualizationRoot);
  const relative = isInside(root, dir) ? dir.slice(root.length).replace(/^\/+/, '') : dir.replace(/^\/+/, '');
  return joinPath(relative, assertVmName(vm), assertLeafOu(ou)).replace(/^\/+/, '');
}

/** `<root>/<intermediate>`, refusing anything that would land outside root. */
export function iterationDirectory(root: string, intermediate: string): string {
  const dir = joinPath(root, intermediate);
  if (!isInside(root, dir) || normalizePath(root) === dir) {
    throw new NamingError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `"${intermediate}" escapes ${root}`);
  }
  return dir;
}

/** The directories of one iteration. */
export interface IterationDirs {
  backupRoot: string;
  retainRoot: string;
  /** `<dir of first disk relative to the virtualization root>/<vm>/<ou>`. */
  intermediate: string;
  backupDir: string;
  retainDir: string;
  /** `<backupRoot>/<dir of first disk>/<vm>`: the iterations of this VM, for rotation. */
  backupVmDir: string;
  /**
   * Set when the backup root is a restic repository (core/backup-root.ts): the iteration is then the
   * snapshot tagged with the VM and the ou, and backupRoot, backupDir and backupVmDir only describe
   * it in messages (`<uri> vm=<vm> ou=<ou>`); no step treats them as paths.
   */
  repository?: ResticRepository;
}

/**
 * Where the iteration of leaf `ou` of `vm` lies, from the configured root URIs and the VM's first
 * disk in the directory (the original's rule). A root that is not `file://` is `uriCode` (39 for a
 * backup, 35 for a restore, as the original answered); a VM without disks is `noDiskCode`.
 */
export function iterationDirs(o: {
  vm: string;
  ou: string;
  disks: readonly LayoutDisk[];
  rootDirectoryUri: string;
  retainDirectoryUri: string;
  virtualizationRoot: string;
  uriCode?: number;
  noDiskCode?: number;
}): IterationDirs {
  const uriCode = o.uriCode ?? Code.UNSUPPORTED_CONFIGURATION_PARAMETER;
  const root = parseBackupRoot(o.rootDirectoryUri, 'sstBackupRootDirectory', uriCode);
  const retainRoot = fileUriToPath(o.retainDirectoryUri, 'sstBackupRetainDirectory', uriCode);
  if (o.disks.length === 0) throw new NamingError(o.noDiskCode ?? Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `VM ${o.vm} has no disk in the directory`);
  const intermediate = intermediatePath(o.disks[0]!.path, o.vm, o.ou, o.virtualizationRoot);
  if (root.kind === 'repository') {
    const { uri } = root.repository;
    return {
      backupRoot: uri,
      retainRoot,
      intermediate,
      backupDir: `${uri} vm=${o.vm} ou=${o.ou}`,
      retainDir: iterationDirectory(retainRoot, intermediate),
      backupVmDir: `${uri} vm=${o.vm}`,
      repository: root.repository,
    };
  }
  const backupRoot = root.path;
  const backupDir = iterationDirectory(backupRoot, intermediate);
  return {
    backupRoot,
    retainRoot,
    intermediate,
    backupDir,
    retainDir: iterationDirectory(retainRoot, intermediate),
    backupVmDir: dirname(backupDir),
  };
}

/**
 * An iteration being deleted: its directory `<ou>` is renamed to `.deleting-<ou>` beside it (one
 * atomic rename) before any of its files goes, and that directory is removed last. A crash at any
 * point leaves either the whole iteration under its own name or a marked one, which the next
 * rotation or `delete` finishes; a half-deleted iteration never passes for an unfinished one
 * (docs/on-disk-layout.md, "Deleting an iteration").
 */
export const DELETING_PREFIX = '.deleting-';

export function deletingDirName(ou: string): string {
  return `${DELETING_PREFIX}${assertLeafOu(ou)}`;
}

/** The ou of a marked iteration directory's name, or undefined for any other name. */
export function ouOfDeletingDir(name: string): string | undefined {
  if (!name.startsWith(DELETING_PREFIX)) return undefined;
  const ou = name.slice(DELETING_PREFIX.length);
  return isLeafOu(ou) ? ou : undefined;
}

/** The same iteration found elsewhere below the backup root (the disks moved since): its retain twin. */
export function relocatedIteration(dirs: IterationDirs, foundBackupDir: string): IterationDirs {
  const relative = foundBackupDir.slice(normalizePath(dirs.backupRoot).length).replace(/^\/+/, '');
  return { ...dirs, intermediate: relative, backupDir: foundBackupDir, retainDir: iterationDirectory(dirs.retainRoot, relative), backupVmDir: dirname(foundBackupDir) };
}

/**
 * Where the files of a backup wait between the snapshot and the export when the retain directory is
 * on another filesystem than the backup root: beside the iteration, below the backup root, so the
 * export publishes them by rename and every byte of a backup is written once. A dot name, so neither
 * rotation nor `list` takes it for an iteration.
 */
export function stagingDirectory(backupVmDir: string, ou: string): string {
  return joinPath(backupVmDir, `.${assertLeafOu(ou)}.partial`);
}

/**
 * Inside a restore's retain iteration: the image a restore replaced (`file` is the backup's name of
 * that disk), moved there by rename when the backup's image took its place, and removed with the
 * retain directory once the VM runs: freeing a large image takes seconds (about 1 s per 8 GiB here)
 * that the VM should not spend stopped. A dot name, so nothing takes it for a backup file.
 */
export function replacedImagePath(retainDir: string, file: string): string {
  return joinPath(retainDir, `.replaced.${file}`);
}

/**
 * Inside a backup's retain iteration: the iteration's files under their backup names (`<file>.<ou>`,
 * hard links, no byte copied) and the manifest, as `restic backup` stores them at the root of the
 * snapshot, so a restore from the repository gets the files of a plain iteration.
 */
export function snapshotViewDirectory(retainDir: string, ou: string): string {
  return joinPath(retainDir, `.snapshot-${assertLeafOu(ou)}`);
}

/**
 * A repository iteration has no directory of its own: `verify` restores it into this scratch
 * directory below the retain root to check it, and removes it again.
 */
export function verifyScratchDirectory(retainRoot: string, intermediate: string): string {
  return iterationDirectory(joinPath(retainRoot, '.kvm-backup-verify'), intermediate);
}

/** Where `verify` keeps the record of a repository iteration (the plain layout keeps it in the iteration). */
export function repositoryVerifyRecord(retainRoot: string, vm: string, ou: string): string {
  return joinPath(retainRoot, '.kvm-backup-verified', `${assertVmName(vm)}.${assertLeafOu(ou)}.json`);
}

/** The names of an iteration's files other than its disk images. */
export interface IterationFiles {
  state: string;
  xml: string;
  ldif: string;
  facts: string;
  nvram: string;
  tpm: string;
  manifest: string;
}

/** The names of an iteration's files in the retain directory (without the `.<ou>` suffix). */
export function iterationFiles(vm: string): IterationFiles {
  return {
    state: fileNames.state(vm),
    xml: fileNames.xml(vm),
    ldif: fileNames.ldif(vm),
    facts: fileNames.facts(vm),
    nvram: fileNames.nvram(vm),
    tpm: fileNames.tpm(vm),
    manifest: fileNames.manifest,
  };
}

/** The same names as they lie in the backup root: `<file>.<ou>`. */
export function suffixedIterationFiles(vm: string, ou: string): IterationFiles {
  const f = iterationFiles(vm);
  const out = {} as IterationFiles;
  for (const k of Object.keys(f) as Array<keyof IterationFiles>) out[k] = fileNames.inBackup(f[k], ou);
  return out;
}

/**
 * The facts file of an iteration (`<vm>.backup.json`): what the backup found and the restore puts
 * back. Iterations of the original daemon, and of versions before it, have none: the restore then
 * assumes a running (or, with the marker state file, shut-off) persistent VM on standalone images.
 */
export interface BackupFacts {
  version: 1;
  vm: string;
  ou: string;
  /** running, paused or shut off: the state the restore brings the VM back in. */
  runState: 'running' | 'paused' | 'shut off';
  /** false for a transient VM: restored without a definition. */
  persistent: boolean;
  /** How the snapshot was taken: live, classic, or offline for a shut-off VM. */
  method: string;
  disks: Array<{
    target: string;
    /** The VM's own image, where the restore puts the file back. */
    path: string;
    /** The file's name in the iteration (before the `.<ou>` suffix). */
    file: string;
    format: string;
    /** True when the image had a backing chain and the file holds all of it (a standalone image). */
    flattened: boolean;
    /** The chain the image had at backup time, nearest first (informational: the file needs none of it). */
    backing: Array<{ path: string; format: string }>;
  }>;
  firmware: {
    /** The NVRAM (UEFI VARS) path of the VM and the iteration's file holding it. */
    nvram?: { path: string; file: string };
    /** The TPM state directory of the VM and the iteration's tar archive of it. */
    tpm?: { dir: string; file: string };
  };
}

/** `sha256sum -c` format: `<hex>  <file>`. */
export function manifestText(entries: Array<[file: string, sha256: string]>): string {
  return entries.map(([f, h]) => `${h}  ${f}\n`).join('');
}

/** The manifest's file → sha256 (lines that are not `<hex>  <file>` are ignored). */
export function parseManifest(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (m) out.set(m[2]!, m[1]!);
  }
  return out;
}
