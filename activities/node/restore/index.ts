/** The node's restore activities (SPEC §3): locate and unretain, then apply to the VM. */
import type { BackupNodeDeps } from '../backup/deps.js';
import { createApply } from './apply.js';
import { createUnretain } from './unretain.js';
import { createVerify } from './verify.js';

export function createRestoreActivities(deps: BackupNodeDeps) {
  return { ...createUnretain(deps), ...createApply(deps), ...createVerify(deps) };
}

export type { UnretainedLarge } from './unretain.js';
export type { RestoreResult } from './apply.js';
export type { VerifyRecord } from './verify.js';
