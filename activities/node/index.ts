/**
 * The node worker's activities: every step that touches libvirt, QEMU images and local files on one
 * hypervisor, as thin mappings onto the host adapters (adapters/host/). Built by a factory with its
 * dependencies injected, so tests can hand in their own.
 */
import { createBackupActivities } from './backup/index.js';
import type { NodeDeps } from './deps.js';
import { createProbeActivities } from './probe.js';
import { createRestoreActivities } from './restore/index.js';

export type { NodeDeps } from './deps.js';

export function createNodeActivities(deps: NodeDeps) {
  return {
    ...createProbeActivities(deps),
    ...createBackupActivities(deps),
    ...createRestoreActivities(deps),
  };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
