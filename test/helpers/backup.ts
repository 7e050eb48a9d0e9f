/** Driving backups in tests: leaves as fc-brokerd writes them, workflows started and watched. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { copyProgress, type RunningCopy } from '../../client/follow.js';
import { value, values } from '../../core/ldap-entry.js';
import { leafDn, leafTimestamp } from '../../core/naming.js';
import { newLeafAttributes, parseExecutionTimes } from '../../core/provisioning.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { join } from 'node:path';
import { backupProgressQuery, backupWorkflow, restoreWorkflow } from '../../workflows/index.js';
import type { BackupRequest } from '../../workflows/backup.js';
import type { RestoreRequest } from '../../workflows/restore.js';
import type { World } from './world.js';

let lastOu = '';

/** A new backup leaf (ou = now in UTC, unique within the run). */
export async function addLeaf(world: World, mode = 'snapshot', ou?: string): Promise<{ dn: string; ou: string }> {
  let at = Date.now();
  let name = ou ?? leafTimestamp(new Date(at));
  while (!ou && name <= lastOu) name = leafTimestamp(new Date((at += 1000)));
  lastOu = name > lastOu ? name : lastOu;
  const dn = leafDn(DEMO_SERVICE_SUBTREE, world.vm, name);
  await world.directory.add(dn, newLeafAttributes(name, mode));
  return { dn, ou: name };
}

export async function startBackup(world: World, request: BackupRequest): Promise<WorkflowHandle<typeof backupWorkflow>> {
  return world.client.workflow.start(backupWorkflow, {
    taskQueue: world.controlQueue,
    workflowId: `test-backup/${world.vm}/${request.leafDn.slice(3, 19)}/${Math.random().toString(36).slice(2, 8)}`,
    args: [{ heartbeatTimeout: '5 seconds', ...request }],
  });
}

/** Polls the workflow's progress query until its phase is `phase` (or the workflow ended). */
export async function waitForPhase(handle: WorkflowHandle<typeof backupWorkflow>, phase: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await handle.query(backupProgressQuery).catch(() => undefined);
    if (p?.phase === phase) return;
    if (Date.now() > deadline) throw new Error(`phase ${phase} not reached within ${timeoutMs} ms (now ${p?.phase})`);
    await sleep(50);
  }
}

/**
 * Polls the running copy's progress (its heartbeat details on the server, as `status` reads them)
 * every 100 ms until `accept` takes one; after `timeoutMs` fails, listing the distinct reports seen.
 */
export async function waitForCopyProgress(handle: WorkflowHandle, accept: (p: RunningCopy) => boolean, timeoutMs: number): Promise<RunningCopy> {
  const seen: RunningCopy[] = [];
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    const p = await copyProgress(handle);
    if (p && JSON.stringify(p) !== JSON.stringify(seen.at(-1))) seen.push(p);
    if (p && accept(p)) return p;
  }
  throw new Error(`no copy progress as wanted within ${timeoutMs} ms; seen: ${JSON.stringify(seen)}`);
}

export async function readLeaf(world: World, dn: string) {
  const e = await world.directory.get(dn);
  if (!e) throw new Error(`leaf ${dn} is gone`);
  return {
    mode: value(e, 'sstProvisioningMode'),
    state: value(e, 'sstProvisioningState'),
    returnValue: value(e, 'sstProvisioningReturnValue'),
    times: parseExecutionTimes(values(e, 'sstProvisioningExecutionTime')),
    rawTimes: values(e, 'sstProvisioningExecutionTime'),
  };
}

/** One complete backup of the world's VM (one go); returns its leaf. */
export async function backupNow(world: World, request: Partial<BackupRequest> = {}): Promise<{ dn: string; ou: string }> {
  const leaf = await addLeaf(world);
  await (await startBackup(world, { leafDn: leaf.dn, ...request })).result();
  return leaf;
}

export async function startRestore(world: World, request: RestoreRequest): Promise<WorkflowHandle<typeof restoreWorkflow>> {
  return world.client.workflow.start(restoreWorkflow, {
    taskQueue: world.controlQueue,
    workflowId: `test-restore/${world.vm}/${request.leafDn.slice(3, 19)}/${Math.random().toString(36).slice(2, 8)}`,
    args: [{ heartbeatTimeout: '5 seconds', ...request }],
  });
}

/** The iteration directory of a backup of the world's first disk layout. */
export function backupDirOf(world: World, ou: string): string {
  return join(world.paths.backupRoot, 'vm-persistent', world.pool, world.vm, ou);
}
