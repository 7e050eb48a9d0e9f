/** The node's restore activities (docs/restore.md): locate and unretain, then apply to the VM; verify in place. */
import type { NodeDeps } from '../deps.js';
import { createApply } from './apply.js';
import { createUnretain } from './unretain.js';
import { createVerify } from './verify.js';

export function createRestoreActivities(deps: NodeDeps) {
  return { ...createUnretain(deps), ...createApply(deps), ...createVerify(deps) };
}

export type { UnretainedLarge } from './unretain.js';
export type { RestoreResult } from './apply.js';
export type { VerifyRecord } from './verify.js';
