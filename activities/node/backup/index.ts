/** The node's backup activities, one file per phase (SPEC §2). */
import type { BackupNodeDeps } from './deps.js';
import { createExport } from './export.js';
import { createMerge } from './merge.js';
import { createPreflight } from './preflight.js';
import { createCopyToRetain } from './retain.js';
import { createRotate } from './rotate.js';
import { createSnapshot } from './snapshot.js';

export function createBackupActivities(deps: BackupNodeDeps) {
  return {
    ...createPreflight(deps),
    ...createSnapshot(deps),
    ...createCopyToRetain(deps),
    ...createMerge(deps),
    ...createExport(deps),
    ...createRotate(deps),
  };
}

export type { BackupNodeDeps } from './deps.js';
