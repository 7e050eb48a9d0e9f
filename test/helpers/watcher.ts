/**
 * Driving the watcher in tests: a watcher on a world's task queue and node, requests written on
 * leaves the way fc-brokerd and vm-manager write them (mode and state 0 in one modify), a recorder
 * of every state a leaf passes through, and waits with deadlines.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { leafDn, leafTimestamp, vmBackupDn, vmDn } from '../../core/naming.js';
import { newLeafAttributes } from '../../core/provisioning.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { startWatcher, type RunningWatcher, type WatcherOptions } from '../../client/watcher/index.js';
import { LdapClient } from '../../adapters/ldap/client.js';
import { value } from '../../core/ldap-entry.js';
import { consoleLog, recordingLog } from '../../client/watcher/log.js';
import type { World } from './world.js';

export type RecordingLog = ReturnType<typeof recordingLog>;

export async function startTestWatcher(world: World, options: WatcherOptions = {}): Promise<RunningWatcher & { log: RecordingLog }> {
  const quiet = process.env['KVM_BACKUP_TEST_VERBOSE'] ? consoleLog('watcher', 'debug', (l) => console.error(l)) : undefined;
  const log = recordingLog(quiet);
  const watcher = await startWatcher(world.config, {
    taskQueue: world.controlQueue,
    nodes: [world.node],
    pollIntervalMs: 100,
    temporal: world.client,
    scheduler: false,
    log,
    ...options,
  });
  return { ...watcher, log };
}

/** fc-brokerd's request: the mode and state 0 in one modify. */
export async function request(world: World, dn: string, mode: string): Promise<void> {
  await world.directory.modify(dn, { sstProvisioningMode: mode, sstProvisioningState: '0' });
}

/** A leaf as fc-brokerd creates it (any mode), for the world's VM or another. */
export async function createLeaf(world: World, ou: string, mode: string, vm = world.vm): Promise<string> {
  const dn = leafDn(DEMO_SERVICE_SUBTREE, vm, ou);
  // a finished leaf is processed (stamped); `finished` with state 0 is the vm-manager's restore cancel
  const attributes = newLeafAttributes(ou, mode);
  if (mode === 'finished') attributes['sstProvisioningState'] = leafTimestamp(new Date());
  await world.directory.add(dn, attributes);
  return dn;
}

/** A further VM entry (no libvirt domain) with its `ou=backup`, on `node` (or without sstNode). */
export async function addVmEntry(world: World, vm: string, node: string | undefined): Promise<string> {
  const dn = vmDn(DEMO_SERVICE_SUBTREE, vm);
  await world.directory.add(dn, {
    objectClass: ['top', 'sstVirtualizationVirtualMachine'],
    sstVirtualMachine: vm,
    ...(node ? { sstNode: node } : {}),
    sstVirtualMachinePool: world.pool,
    sstVirtualMachineType: 'persistent',
  });
  await world.directory.add(vmBackupDn(DEMO_SERVICE_SUBTREE, vm), { objectClass: ['top', 'organizationalUnit'], ou: 'backup' });
  return dn;
}

export interface LeafState {
  mode?: string;
  state?: string;
  rv?: string;
}

export async function leafState(world: World, dn: string): Promise<LeafState | undefined> {
  const e = await world.directory.get(dn, ['sstProvisioningMode', 'sstProvisioningState', 'sstProvisioningReturnValue']);
  if (!e) return undefined;
  const s: LeafState = {};
  const mode = value(e, 'sstProvisioningMode');
  const state = value(e, 'sstProvisioningState');
  const rv = value(e, 'sstProvisioningReturnValue');
  if (mode !== undefined) s.mode = mode;
  if (state !== undefined) s.state = state;
  if (rv !== undefined) s.rv = rv;
  return s;
}

export async function waitForLeaf(world: World, dn: string, what: string, ok: (s: LeafState | undefined) => boolean, timeoutMs = 60_000): Promise<LeafState | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await leafState(world, dn);
    if (ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`${dn}: ${what} not reached within ${timeoutMs} ms (now ${JSON.stringify(s)})`);
    await sleep(40);
  }
}

export const processed = (s: LeafState | undefined) => !!s && /^\d{8}T\d{6}Z$/.test(s.state ?? '');

/** Every distinct (mode, state, rv) a leaf shows, read every 15 ms on one connection. */
export function recordLeaf(world: World, dn: string): { stop(): Promise<LeafState[]> } {
  const session = LdapClient.session({ url: world.config.database.url, bindDn: world.config.database.bindDn, password: world.config.database.password });
  const seen: LeafState[] = [];
  let stopped = false;
  const loop = (async () => {
    // one last read after stop(), so the state the caller waited for is in the record
    for (let last = false; !last; ) {
      last = stopped;
      const [e] = await session
        .search(dn, { scope: 'base', attributes: ['sstProvisioningMode', 'sstProvisioningState', 'sstProvisioningReturnValue'] })
        .catch(() => [undefined]);
      if (e) {
        const s = { mode: value(e, 'sstProvisioningMode') ?? '', state: value(e, 'sstProvisioningState') ?? '', rv: value(e, 'sstProvisioningReturnValue') ?? '' };
        const previous = seen[seen.length - 1];
        if (!previous || previous.mode !== s.mode || previous.state !== s.state || previous.rv !== s.rv) seen.push(s);
      }
      await sleep(15);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      await session.close();
      return seen;
    },
  };
}

/**
 * What a workflow wrote on leaves, in order, from its history (the `updateLeaf` activities'
 * arguments, or a local activity's result, which is the changes it wrote): the exact sequence of
 * modifies, each one change set, which no sampling can miss.
 */
export async function leafWrites(client: Client, workflowId: string): Promise<Array<Record<string, unknown>>> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const writes: Array<Record<string, unknown>> = [];
  const json = (p: { data?: Uint8Array | null }) => JSON.parse(Buffer.from(p.data!).toString()) as unknown;
  for (const e of history.events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name === 'updateLeaf') {
      const [, changes] = (a.input?.payloads ?? []).map(json);
      writes.push(changes as Record<string, unknown>);
    }
    // a local activity (a backup holding its node slot): the marker keeps the result, which is the changes written
    const m = e.markerRecordedEventAttributes;
    if (m?.markerName === 'core_local_activity') {
      const data = (m.details?.['data']?.payloads ?? []).map(json)[0] as { activity_type?: string } | undefined;
      const result = (m.details?.['result']?.payloads ?? []).map(json)[0];
      if (data?.activity_type === 'updateLeaf' && result) writes.push(result as Record<string, unknown>);
    }
  }
  return writes;
}

/** How many runs of `workflowId` Temporal knows (visibility lags a little: waits until it is stable). */
export async function runsOf(client: Client, workflowId: string): Promise<number> {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    let n = 0;
    for await (const _ of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) n++;
    if (n === last && n > 0) return n;
    last = n;
    await sleep(150);
  }
  return Math.max(last, 0);
}

let counter = 0;
/** A leaf ou `hoursAgo` hours back (UTC; default 30 days), unique per call within a test file. */
export function testOu(hoursAgo = 24 * 30): string {
  const t = new Date(Date.now() - hoursAgo * 3_600_000 + (counter++ % 3600) * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${t.getUTCFullYear()}${p(t.getUTCMonth() + 1)}${p(t.getUTCDate())}T${p(t.getUTCHours())}${p(t.getUTCMinutes())}${p(t.getUTCSeconds())}Z`;
}
