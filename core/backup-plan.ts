/**
 * What one backup of one VM will touch, derived once from the leaf, the directory and the
 * configuration: every path comes from here, so each step (and each retry of a step, and the
 * compensation) finds the same files. Pure: the workflow and the node activities both use it.
 */
import type { ResolvedBackupConfiguration } from './backup-config.js';
import type { ResticRepository } from './backup-root.js';
import type { SnapshotMethod } from './global-config.js';
import { diskNames, iterationDirs, iterationFiles, overlayPath, stagingStatePath, type IterationFiles } from './layout.js';
import { joinPath, ramDiskPath, type LeafRef } from './naming.js';
import { retentionPolicy, type RetentionPolicy } from './retention.js';

/** One disk as the directory describes it (sstDevice=disk), in directory order. */
export interface LdapDisk {
  /** libvirt target, e.g. vda (sstDisk). */
  target: string;
  /** Image path (sstSourceFile). */
  path: string;
}

/** What the control worker reads from the directory for one backup leaf. */
export interface BackupContext {
  leaf: LeafRef;
  /** The VM's sstNode: its node worker runs the steps. */
  node: string;
  pool?: string;
  disks: LdapDisk[];
  configuration: ResolvedBackupConfiguration;
}

/** One image below a disk's own image in its backing chain (a linked clone's template, say). */
export interface BackingImage {
  path: string;
  format: string;
}

export interface PlannedDisk extends LdapDisk {
  /** Overlay the VM writes to while its image is frozen: next to the image, named after the leaf. */
  overlay: string;
  /** File name in the retain and backup directories (before the `.<ou>` suffix). */
  name: string;
  /** The image's format (qcow2 or raw), from the domain XML; the configured format until the preflight looked. */
  format: string;
  /**
   * The backing files below the VM's own image, nearest first (empty for a standalone image); from
   * the image itself (qemu-img) at preflight. Never written: merges commit into `path` only, and the
   * backup holds the image flattened (docs/backup.md, linked clones).
   */
  backing: BackingImage[];
}

/** The state of the VM a backup found and puts it back into (libvirt's domstate words). */
export type RunState = 'running' | 'paused' | 'shut off';

export interface Ownership {
  owner: string;
  group: string;
  mode: number;
}

export interface BackupPlan {
  vm: string;
  ou: string;
  leafDn: string;
  node: string;
  method: SnapshotMethod;
  /** `<dir of first disk relative to the virtualization root>/<vm>/<ou>`. */
  intermediate: string;
  retainRoot: string;
  backupRoot: string;
  retainDir: string;
  backupDir: string;
  /** `<backupRoot>/<dir of first disk>/<vm>`: the iterations of this VM, for rotation. */
  backupVmDir: string;
  /** The restic repository the backup root names (docs/repository.md); absent for the plain layout. */
  repository?: ResticRepository;
  /** RAM disk directory as configured (preflight decides whether it is usable). */
  ramDisk: string;
  /** State file on the RAM disk (or in the retain dir when the RAM disk is not usable). */
  stagingStateFile: string;
  disks: PlannedDisk[];
  files: IterationFiles;
  bandwidthMiB: number;
  /** sstBackupNumberOfIterations (keep-last); `retention` holds it with the calendar rules. */
  iterations: number;
  /**
   * What the one-go rotation keeps (core/retention.ts). Optional: plans made before the calendar
   * rules existed (in the histories of running workflows) have none and keep `iterations`.
   */
  retention?: RetentionPolicy;
  images: Ownership;
  directories: Ownership;
  imageFormat: string;
}

export function planBackup(ctx: BackupContext, options: { virtualizationRoot: string; method: SnapshotMethod }): BackupPlan {
  const { leaf, configuration } = ctx;
  const c = configuration.config;
  if (ctx.disks.length === 0) throw new Error(`VM ${leaf.vm} has no disk in the directory`);
  const dirs = iterationDirs({
    vm: leaf.vm,
    ou: leaf.ou,
    disks: ctx.disks,
    rootDirectoryUri: c.rootDirectory,
    retainDirectoryUri: c.retainDirectory,
    virtualizationRoot: options.virtualizationRoot,
  });
  const ramDisk = ramDiskPath(c.ramDiskLocation);
  const names = diskNames(ctx.disks);
  return {
    vm: leaf.vm,
    ou: leaf.ou,
    leafDn: leaf.dn,
    node: ctx.node,
    method: options.method,
    ...dirs,
    ramDisk,
    stagingStateFile: stagingStatePath(ramDisk, leaf.vm, leaf.ou),
    disks: ctx.disks.map((d, i) => ({ ...d, overlay: overlayPath(d.path, leaf.ou), name: names[i]!, format: c.imageFormat, backing: [] })),
    files: iterationFiles(leaf.vm),
    bandwidthMiB: c.bandwidthMerge,
    iterations: c.iterations,
    retention: retentionPolicy(c),
    images: { owner: c.imageOwner, group: c.imageGroup, mode: c.imagePermission },
    directories: { owner: c.directoryOwner, group: c.directoryGroup, mode: c.directoryPermission },
    imageFormat: c.imageFormat,
  };
}

/**
 * Retain-directory files in the order the original exported them: state, XML, LDIF, then each disk;
 * then this product's additions: the facts of the backup and, where the VM has them, its UEFI
 * variables and TPM state (docs/on-disk-layout.md).
 */
export function retainFiles(p: PreparedBackup): string[] {
  const { plan } = p;
  return [
    plan.files.state, plan.files.xml, plan.files.ldif, ...plan.disks.map((d) => d.name), plan.files.facts,
    ...(p.firmware.nvram ? [plan.files.nvram] : []),
    ...(p.firmware.tpmStateDir ? [plan.files.tpm] : []),
  ];
}

/** The plan after the node's preflight: what the node found, and where the state file goes. */
export interface PreparedBackup {
  plan: BackupPlan;
  /** Running or paused at the backup: the VM gets RAM state and overlays (a shut-off VM neither). */
  active: boolean;
  /** The state the VM was in, and is left in (a paused VM stays paused throughout). */
  runState: RunState;
  /** Whether libvirt keeps a definition of the VM (a transient VM has none and gets none). */
  persistent: boolean;
  memoryKiB: number;
  /** Where the state file is written during the snapshot: the RAM disk, or the retain dir as fallback. */
  staging: 'ramdisk' | 'retain';
  /** Devices that are not disks (CD-ROMs, floppies): never snapshotted, kept in the XML as they are. */
  untouched: string[];
  /** Files of the VM outside its disks that the backup keeps: the UEFI variables (VARS), the emulated TPM's state directory. */
  firmware: { nvram?: string; tpmStateDir?: string };
  warnings: string[];
}

export interface SnapshotResult {
  method: SnapshotMethod | 'offline';
  /** Guest pause from QEMU's STOP to RESUME events; 0 for a shut-off VM. */
  pauseMs: number;
  durationMs: number;
}

export interface CopyStats {
  bytes: number;
  files: number;
  durationMs: number;
  /** Bytes an earlier attempt had already copied and this one did not copy again. */
  resumedBytes: number;
}

/** Where the RAM state goes during the snapshot for a prepared backup. */
export function stagingStateFile(p: PreparedBackup): string {
  return p.staging === 'ramdisk' ? p.plan.stagingStateFile : joinPath(p.plan.retainDir, p.plan.files.state);
}
