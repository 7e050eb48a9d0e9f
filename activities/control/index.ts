/**
 * The control worker's activities: every step that reads or writes the stoney cloud directory, as
 * thin mappings onto the directory model (core/directory-model.ts), the requests of the per-VM
 * lock and of the per-node backup slots, and the failure notifications.
 */
import { createBackupLeafActivities } from './backup-leaf.js';
import type { ControlDeps } from './deps.js';
import { createNodeSlotActivities } from './node-slots.js';
import { createNotifyActivities } from './notify.js';
import { createSchedulingActivities } from './scheduling.js';
import { createVmLockActivities } from './vm-lock.js';

export type { ControlDeps } from './deps.js';

export function createControlActivities(deps: ControlDeps) {
  return {
    /** Checks the directory answers and the service subtree exists (for probes and `doctor`). */
    pingDirectory: () => deps.directory.ping(),
    ...createBackupLeafActivities(deps),
    ...createVmLockActivities(),
    ...createNodeSlotActivities(deps),
    ...createSchedulingActivities(deps),
    ...createNotifyActivities(deps),
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
