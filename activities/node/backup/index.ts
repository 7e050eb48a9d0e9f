/** The node's backup activities, one file per phase (docs/backup.md). */
import type { NodeDeps } from '../deps.js';
import { createCopyToRetain } from './copy-to-retain.js';
import { createExport } from './export.js';
import { createMerge } from './merge.js';
import { createPreflight } from './preflight.js';
import { createRotate } from './rotate.js';
import { createSnapshot } from './snapshot.js';

export function createBackupActivities(deps: NodeDeps) {
  return {
    ...createPreflight(deps),
    ...createSnapshot(deps),
    ...createCopyToRetain(deps),
    ...createMerge(deps),
    ...createExport(deps),
    ...createRotate(deps),
  };
}
