/**
 * The node worker's activities: every step that touches libvirt, QEMU images and local files on one
 * hypervisor, as thin mappings onto the host adapters (adapters/host/). Built by a factory with its
 * dependencies injected, so tests can hand in their own.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import { createBackupActivities } from './backup/index.js';
import type { NodeDeps } from './deps.js';
import { keepAlive } from './heartbeat.js';
import { createProbeActivities } from './probe.js';
import { createRestoreActivities } from './restore/index.js';

export type { NodeDeps } from './deps.js';

/** Activities that must never give up whatever the error says (the VM back on its own images). */
const NEVER_GIVE_UP = new Set(['ensureOnOwnImages']);

/**
 * Every step heartbeats while it runs (heartbeat.ts: a dead node worker is noticed at the heartbeat
 * timeout, in a short step as in a long one). An error a step did not map to an exit code becomes
 * UNDEFINED_ERROR (1), classified by its cause (core/failure-causes.ts): one that will fail again the
 * same way ("Requested operation is not valid", a parse error, …) is not retried, so it reaches the
 * user and LDAP within seconds.
 */
function heartbeatingAndClassified<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const out = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(activities)) {
    out[name] = NEVER_GIVE_UP.has(name)
      ? keepAlive(fn)
      : keepAlive(async (...args: never[]) => {
          try {
            return await fn(...args);
          } catch (e) {
            if (e instanceof ApplicationFailure || e instanceof CancelledFailure || (e as { name?: string }).name === 'AbortError') throw e;
            throw failure(Code.UNDEFINED_ERROR, (e as Error).message ?? String(e), {}, { cause: e });
          }
        });
  }
  return out as T;
}

export function createNodeActivities(deps: NodeDeps) {
  return heartbeatingAndClassified({
    ...createProbeActivities(deps),
    ...createBackupActivities(deps),
    ...createRestoreActivities(deps),
  });
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
