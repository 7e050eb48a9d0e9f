/**
 * The schedules a site should have, computed from a read of the directory: for every VM on one of
 * the site's nodes, its effective configuration (VM → pool → cloud-wide, as the backup reads it),
 * unless it excludes the VM from backup or carries no valid active sstCron* schedule (core/cron.ts).
 * VMs of one pool that share a schedule share one Temporal Schedule, so the run at that time can
 * order them by sstVirtualizationVirtualMachineSequenceStop/-Start; a VM without a pool has its own.
 * Every VM left out is reported with the reason, for the log. Pure.
 */
import { resolveBackupConfiguration } from '../../core/backup-config.js';
import { cronExpression } from '../../core/cron.js';
import { ConfigError } from '../../core/global-config.js';
import type { DirectorySnapshot } from '../../core/directory-model.js';
import { assertVmName, NamingError } from '../../core/naming.js';
import type { ScheduledGroupInput } from '../../core/scheduled-group.js';

export type { ScheduledGroupInput } from '../../core/scheduled-group.js';

export type { DirectorySnapshot, VmRecord } from '../../core/directory-model.js';

export interface DesiredSchedule {
  scheduleId: string;
  cron: string;
  input: ScheduledGroupInput;
}

export interface LeftOut {
  vm: string;
  reason: string;
}

export const SCHEDULE_ID_PREFIX = 'kvm-backup-schedule/';

/** `0: uuid1`, `1: uuid2` → the VMs in rank order (values that do not parse are reported). */
export function sequenceOrder(values: readonly string[]): { order: string[]; bad: string[] } {
  const ranked: Array<[number, string]> = [];
  const bad: string[] = [];
  for (const v of values) {
    const m = /^\s*(\d{1,6})\s*:\s*(\S+)\s*$/.exec(v);
    if (m) ranked.push([Number(m[1]), m[2]!]);
    else bad.push(v);
  }
  ranked.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1]));
  const order: string[] = [];
  for (const [, vm] of ranked) if (!order.includes(vm)) order.push(vm);
  return { order, bad };
}

function scheduleIdOf(pool: string | undefined, vm: string, cron: string): string {
  return pool ? `${SCHEDULE_ID_PREFIX}pool/${pool}/${cron.replaceAll(' ', '_')}` : `${SCHEDULE_ID_PREFIX}vm/${vm}`;
}

export function desiredSchedules(snapshot: DirectorySnapshot, nodes: readonly string[]): { schedules: DesiredSchedule[]; leftOut: LeftOut[] } {
  const leftOut: LeftOut[] = [];
  const groups = new Map<string, { cron: string; pool?: string; members: string[]; stop: string[][]; start: string[][] }>();
  for (const r of [...snapshot.vms].sort((a, b) => a.vm.localeCompare(b.vm))) {
    if (!r.node || !nodes.includes(r.node)) continue; // another site's VM: not even worth a log line
    try {
      assertVmName(r.vm);
      if (r.pool !== undefined) assertVmName(r.pool); // pool names end up in schedule IDs
    } catch (e) {
      leftOut.push({ vm: r.vm, reason: (e as NamingError).message });
      continue;
    }
    let config;
    try {
      config = resolveBackupConfiguration({ vm: r.vmConfig, pool: r.pool ? snapshot.poolConfigs.get(r.pool) ?? [] : [], cloud: snapshot.cloud }).config;
    } catch (e) {
      if (e instanceof ConfigError) {
        leftOut.push({ vm: r.vm, reason: e.message });
        continue;
      }
      throw e;
    }
    if (config.excludeFromBackup) {
      leftOut.push({ vm: r.vm, reason: 'sstBackupExcludeFromBackup is TRUE' });
      continue;
    }
    const cron = cronExpression(config.cron);
    if (!cron.ok) {
      leftOut.push({ vm: r.vm, reason: cron.reason });
      continue;
    }
    const id = scheduleIdOf(r.pool, r.vm, cron.expression);
    const g = groups.get(id) ?? { cron: cron.expression, ...(r.pool ? { pool: r.pool } : {}), members: [], stop: [], start: [] };
    g.members.push(r.vm);
    g.stop.push(config.sequenceStop);
    g.start.push(config.sequenceStart);
    groups.set(id, g);
  }
  const schedules: DesiredSchedule[] = [];
  for (const [scheduleId, g] of groups) {
    // every member's configuration may carry the lists; usually they are the pool's, identical, so
    // each distinct list is read once (a pool of thousands of VMs carries one list thousands of times)
    const members = new Set(g.members);
    const order = (lists: string[][]) => {
      const merged = new Set<string>();
      for (const text of new Set(lists.map((l) => JSON.stringify(l)))) {
        for (const vm of sequenceOrder(JSON.parse(text) as string[]).order) if (members.has(vm)) merged.add(vm);
      }
      return [...merged];
    };
    schedules.push({
      scheduleId,
      cron: g.cron,
      input: {
        group: scheduleId.slice(SCHEDULE_ID_PREFIX.length),
        ...(g.pool ? { pool: g.pool } : {}),
        members: g.members,
        stopOrder: order(g.stop),
        startOrder: order(g.start),
        nodes: [...nodes].sort(),
      },
    });
  }
  return { schedules: schedules.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId)), leftOut };
}
