/**
 * The control worker's activities: everything that reads or writes the stoney cloud directory.
 * The bind password stays inside `Directory`; no activity takes or returns it.
 */
import { createBackupLeafActivities } from './backup-leaf.js';
import type { Directory } from './directory.js';
import { createSchedulingActivities } from './scheduling.js';
import { createVmLockActivities } from './vm-lock.js';

export interface ControlDeps {
  directory: Directory;
  serviceSubtree: string;
  cloudWideConfigurationDn: string;
}

export function createControlActivities(deps: ControlDeps) {
  return {
    /** Checks the directory answers and the service subtree exists (for probes and `doctor`). */
    async pingDirectory(): Promise<{ serviceSubtree: string; found: boolean }> {
      const entry = await deps.directory.get(deps.serviceSubtree, ['1.1']);
      return { serviceSubtree: deps.serviceSubtree, found: !!entry };
    },
    ...createBackupLeafActivities(deps),
    ...createVmLockActivities(),
    ...createSchedulingActivities(deps),
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
