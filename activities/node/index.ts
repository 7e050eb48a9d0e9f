/**
 * The node worker's activities: everything that touches libvirt, QEMU images and local files on one
 * hypervisor. Built by a factory with its dependencies injected, so tests can hand in their own.
 */
import { createBackupActivities, type BackupNodeDeps } from './backup/index.js';
import { copyFile } from './copy.js';
import { Files } from './files.js';
import { Images } from './images.js';
import { createProbeActivities } from './probe.js';
import { createRestoreActivities } from './restore/index.js';
import { Virsh } from './virsh.js';

export interface NodeDeps extends BackupNodeDeps {
  /** This node's name ([Global] ENVIRONMENT). */
  environment: string;
}

export function createNodeActivities(deps: NodeDeps) {
  return {
    ...createProbeActivities(deps),
    ...createBackupActivities(deps),
    ...createRestoreActivities(deps),
  };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;

/** The real dependencies of a node worker, from its configuration. */
export function nodeDeps(o: {
  environment: string;
  libvirtUri?: string;
  virtualizationRoot: string;
  defaultMethod: NodeDeps['defaultMethod'];
  copyRateMiB: number;
  liveMaxDowntimeMs: number;
}): NodeDeps {
  const libvirtUri = o.libvirtUri ?? 'qemu:///system';
  return {
    environment: o.environment,
    virsh: new Virsh(libvirtUri),
    images: new Images(),
    files: new Files(),
    copy: copyFile,
    libvirtUri,
    virtualizationRoot: o.virtualizationRoot,
    defaultMethod: o.defaultMethod,
    copyRateMiB: o.copyRateMiB,
    liveMaxDowntimeMs: o.liveMaxDowntimeMs,
  };
}
