/**
 * History events of a backup and a restore (issue 10): how many events one backup, one restore and
 * the VM's lock workflow add to Temporal's histories, for a copy that is fast (unthrottled) and one
 * throttled to 1 MiB/s, on the real stack (slapd, libvirt, a running tiny VM with 40 MiB of data).
 * Temporal warns at 10,240 events per history and terminates a workflow at 51,200; a figure that
 * grows with the copy's duration is a backup that a big enough VM cannot finish.
 *
 *   node dist/bench/history-events.js [--throttled 1]
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { vmLockWorkflowId } from '../core/naming.js';
import { freePort } from '../stack/daemon.js';
import { ensureLibvirt } from '../stack/libvirt.js';
import { VAR_DIR } from '../stack/paths.js';
import { startTemporalServer } from '../stack/temporal-server.js';
import { addLeaf, startBackup, startRestore } from '../test/helpers/backup.js';
import { GuestData } from '../test/helpers/guest-data.js';
import { createWorld } from '../test/helpers/world.js';
import { fmt, machine, table } from './lib.js';

const { values: args } = parseArgs({ options: { throttled: { type: 'string', default: '1' } } });

/** Events of every run of the VM's lock workflow (it completes when idle; the next request starts a new run). */
async function lockEvents(client: Client, vm: string): Promise<number> {
  let sum = 0;
  for await (const x of client.workflow.list({ query: `WorkflowId = '${vmLockWorkflowId(vm)}'` })) {
    sum += (await client.workflow.getHandle(x.workflowId, x.runId).describe()).historyLength;
  }
  return sum;
}

async function measure(label: string, bandwidth: string): Promise<Array<string | number>> {
  const w = await createWorld({ label, backupIni: { COPY_BANDWIDTH: bandwidth } });
  const workers = await w.startWorkers();
  try {
    const data = new GuestData(w);
    await data.write('bulk', 0x31, '0', '40M');
    const leaf = await addLeaf(w);
    const started = Date.now();
    const backup = await startBackup(w, { leafDn: leaf.dn, heartbeatTimeout: '30 seconds' });
    const b = await backup.result();
    const backupS = (Date.now() - started) / 1000;
    const backupEvents = (await backup.describe()).historyLength;
    const t = Date.now();
    const restore = await startRestore(w, { leafDn: leaf.dn, confirmed: true, heartbeatTimeout: '30 seconds' });
    await restore.result();
    const restoreS = (Date.now() - t) / 1000;
    const restoreEvents = (await restore.describe()).historyLength;
    const lock = await lockEvents(w.client, w.vm);
    console.error(`${label}: backup ${backupEvents} events in ${fmt(backupS)} s (${fmt(b.bytes / 2 ** 20)} MiB), restore ${restoreEvents} in ${fmt(restoreS)} s, lock ${lock}`);
    return [bandwidth === '0' ? 'unthrottled' : `${bandwidth} MiB/s`, fmt(backupS, 1), backupEvents, fmt(restoreS, 1), restoreEvents, lock];
  } finally {
    await workers.shutdown();
    await w.close();
  }
}

async function main(): Promise<void> {
  const dir = join(VAR_DIR, 'bench', 'history-events');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  process.env['KVM_BACKUP_TEST_DIR'] = dir;
  const libvirt = await ensureLibvirt(join(dir, 'logs'));
  const temporal = await startTemporalServer({ port: await freePort(), logFile: join(dir, 'logs', 'temporal.log') });
  process.env['TEMPORAL_ADDRESS'] = temporal.address;
  try {
    const rows = [await measure('bench-hist-fast', '0'), await measure('bench-hist-slow', args.throttled!)];
    console.log(`History events of one backup and one restore (one go) of a running tiny VM with 40 MiB of data (${machine()}):\n`);
    console.log(table(['copy bandwidth', 'backup s', 'backup events', 'restore s', 'restore events', 'VM lock events'], rows));
  } finally {
    await temporal.stop();
    await libvirt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
