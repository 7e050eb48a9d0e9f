/**
 * Backup and restore end to end through the CLI (`kvm-backup backup <vm>`, `kvm-backup restore <vm>
 * --yes`: request to finished leaf, request to running VM, checks included) on the real stack, a VM
 * with 512 MiB of RAM and a 2 GiB qcow2 disk holding 1.25 GiB of data (--data-mib: more), against the physical cost of
 * one copy of the same image measured in the same run: `cp --sparse=always` + `sync`, caches dropped
 * before each run. Also the bytes the backup wrote to the disk (the block device's write counter
 * around the backup) against the bytes the image and the RAM state occupy; for the restore also the
 * moment its VM runs (restoreVm completed, from the history). Each run also prints where
 * the workflows' time went (each activity, from the history), to show fixed costs against the copy.
 *
 *   node dist/bench/backup-e2e.js [--runs 3] [--data-mib 1280]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { tsToMs } from '@temporalio/common/lib/time.js';
import { parseValidLeafDn, workflowIdForLeaf } from '../core/naming.js';
import { cli } from '../test/helpers/cli.js';
import type { World } from '../test/helpers/world.js';
import { startBenchStack } from './vm-stack.js';
import { copyOnceMs, dropCaches, fmt, machine, median, table, timed } from './lib.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'data-mib': { type: 'string', default: '1280' } } });
const runs = Number(args.runs);
/** The data the image holds, MiB (a multiple of 256); the disk is 768 MiB larger. */
const dataMiB = Math.max(256, Math.round(Number(args['data-mib']) / 256) * 256);

/** Bytes written so far to the block device holding `path` (/sys/class/block/<dev>/stat, 512-byte sectors). */
function deviceBytesWritten(path: string): number {
  // the backup root appears with the first backup: its nearest existing ancestor is on the same device
  while (!existsSync(path)) path = dirname(path);
  const source = execFileSync('df', ['--output=source', path]).toString().trim().split('\n')[1]!;
  const stat = readFileSync(`/sys/class/block/${basename(source)}/stat`, 'utf8').trim().split(/\s+/).map(Number);
  return stat[6]! * 512; // field 7: sectors written
}

interface WorkflowTimes {
  /** Each completed activity in history order: its name, when it was scheduled and completed (ms since the epoch). */
  activities: Array<{ name: string; scheduledAt: number; completedAt: number }>;
  /** First to last event, ms. */
  workflowMs: number;
}

/** Where a workflow's time went, from its history (one fetch); local activities as markers have no duration. */
async function workflowTimes(w: World, workflowId: string): Promise<WorkflowTimes> {
  const events = (await w.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const scheduled = new Map<string, { name: string; at: number }>();
  const activities: WorkflowTimes['activities'] = [];
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(e.eventId?.toString() ?? '', { name: s.activityType?.name ?? '?', at: tsToMs(e.eventTime) });
    const from = scheduled.get(e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() ?? '');
    if (e.activityTaskCompletedEventAttributes && from) activities.push({ name: from.name, scheduledAt: from.at, completedAt: tsToMs(e.eventTime) });
  }
  return { activities, workflowMs: tsToMs(events.at(-1)?.eventTime) - tsToMs(events[0]?.eventTime) };
}

/** The times as `name=ms` pairs, then the whole run. */
function describeTimes(t: WorkflowTimes): string {
  return `${t.activities.map((a) => `${a.name}=${a.completedAt - a.scheduledAt}`).join(' ')} | workflow=${t.workflowMs}`;
}

/** The workflow ID of the CLI's JSON outcome (its leaf). */
function workflowOf(stdout: string, operation: 'backup' | 'restore'): string {
  const { leafDn } = JSON.parse(stdout) as { leafDn: string };
  return workflowIdForLeaf(parseValidLeafDn(leafDn), operation);
}

async function main(): Promise<void> {
  const stack = await startBenchStack('backup-e2e', 512);
  const w = stack.world;
  const dir = stack.dir;
  const image = w.disks[0]!.path;
  const backupMs: number[] = [];
  const restoreMs: number[] = [];
  const runningMs: number[] = [];
  const cpMs: number[] = [];
  const writtenRatio: number[] = [];
  try {
    await w.virsh.destroy(w.vm);
    execFileSync('qemu-img', ['resize', '-q', image, `${dataMiB + 768}M`]);
    for (let mib = 0; mib < dataMiB; mib += 256) execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a ${mib}M 256M`, image]);
    await w.virsh.start(w.vm);
    const allocated = statSync(image).blocks * 512;
    for (let i = 0; i < runs; i++) {
      cpMs.push(await copyOnceMs(image, dir));

      execFileSync('sync');
      dropCaches();
      const before = deviceBytesWritten(w.paths.backupRoot);
      const backup = await timed(() => cli(w, ['backup', w.vm, '--json'], { timeoutMs: 600_000 }));
      execFileSync('sync');
      const written = deviceBytesWritten(w.paths.backupRoot) - before;
      if (backup.value.exitCode !== 0) throw new Error(`backup failed: ${backup.value.stderr}`);
      backupMs.push(backup.ms);
      const stateBytes = 512 * 2 ** 20; // what the RAM state occupies at most (the guest's RAM)
      writtenRatio.push(written / (allocated + stateBytes));

      execFileSync('sync');
      dropCaches();
      const requested = Date.now();
      const restore = await timed(() => cli(w, ['restore', w.vm, '--yes', '--json'], { timeoutMs: 600_000 }));
      if (restore.value.exitCode !== 0) throw new Error(`restore failed: ${restore.value.stderr}`);
      if ((await w.virsh.state(w.vm)).state !== 'running') throw new Error('the VM is not running after the restore');
      restoreMs.push(restore.ms);
      // the VM runs (in its recorded state) when restoreVm completes; the retain directory goes after it
      const restoreTimes = await workflowTimes(w, workflowOf(restore.value.stdout, 'restore'));
      const restored = restoreTimes.activities.find((a) => a.name === 'restoreVm');
      if (!restored) throw new Error('the restore has no completed restoreVm');
      runningMs.push(restored.completedAt - requested);
      console.error(`run ${i + 1}: backup ${fmt(backup.ms)} ms, restore ${fmt(restore.ms)} ms, cp ${fmt(cpMs.at(-1)!)} ms, written/allocated ${fmt(writtenRatio.at(-1)!, 2)}`);
      console.error(`  backup (ms): ${describeTimes(await workflowTimes(w, workflowOf(backup.value.stdout, 'backup')))}`);
      console.error(`  restore (ms): ${describeTimes(restoreTimes)}`);
    }
    const cp = median(cpMs);
    console.log(`Backup and restore through the CLI, VM with 512 MiB RAM and a ${fmt((dataMiB + 768) / 1024, 2)} GiB qcow2 disk holding ${fmt(dataMiB / 1024, 2)} GiB (${fmt(allocated / 2 ** 20)} MiB allocated), ${runs} runs (${machine()}):\n`);
    console.log(
      table(
        ['measure', 'median', 'runs', 'ratio to cp'],
        [
          ['`cp --sparse=always` + sync of the image, s', fmt(cp / 1000, 2), cpMs.map((x) => fmt(x / 1000, 2)).join(', '), '1.00'],
          ['`kvm-backup backup <vm>` (request → finished), s', fmt(median(backupMs) / 1000, 2), backupMs.map((x) => fmt(x / 1000, 2)).join(', '), fmt(median(backupMs) / cp, 2)],
          ['`kvm-backup restore <vm> --yes` (request → CLI done), s', fmt(median(restoreMs) / 1000, 2), restoreMs.map((x) => fmt(x / 1000, 2)).join(', '), fmt(median(restoreMs) / cp, 2)],
          ['  of which request → VM running (restoreVm done), s', fmt(median(runningMs) / 1000, 2), runningMs.map((x) => fmt(x / 1000, 2)).join(', '), fmt(median(runningMs) / cp, 2)],
          ['bytes written by a backup / (image allocated + RAM)', fmt(median(writtenRatio), 2), writtenRatio.map((x) => fmt(x, 2)).join(', '), ''],
        ],
      ),
    );
  } finally {
    await stack.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
