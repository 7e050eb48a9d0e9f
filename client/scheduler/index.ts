/**
 * The scheduler of one site, in place of fc-brokerd's timetable: keeps one Temporal Schedule per
 * group of VMs with the same effective sstCron* schedule (desired.ts) and nothing else, re-reading
 * the directory when the watcher reports a change outside the backup leaves (debounced), and every
 * few minutes in case a change went unseen. Schedules are tagged with the site (the control task
 * queue), so two sites sharing a Temporal namespace never touch each other's. An operator's pause
 * of a schedule is kept across updates.
 *
 * A schedule starts `scheduledBackupWorkflow` (workflows/scheduled-backup.ts) at each time: it
 * creates the leaves (ou = the scheduled time in UTC), backs the VMs up and applies retention.
 * Overlap policy SKIP: a run is skipped while the group's previous run still goes on, and the run
 * itself skips a VM that another backup or a restore still holds.
 */
import { createHash } from 'node:crypto';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { StoneyDirectory } from '../../adapters/ldap/stoney-directory.js';
import type { GlobalConfig } from '../../core/global-config.js';
import { errorText, type Log } from '../watcher/log.js';
import { desiredSchedules, SCHEDULE_ID_PREFIX, type DesiredSchedule } from './desired.js';

export const SCHEDULED_BACKUP_WORKFLOW = 'scheduledBackupWorkflow';

export interface SchedulerOptions {
  nodes: string[];
  /** Control task queue of the site; also the site's tag on its schedules. */
  taskQueue: string;
  temporal: Client;
  log: Log;
  /** Time zone of the sstCron* fields (default: this machine's, as fc-brokerd used localtime). */
  timezone?: string;
  /** How long a burst of directory changes is awaited before the schedules are re-read (default 1 s). */
  debounceMs?: number;
  /** Full re-read interval (default 5 minutes). */
  resyncEveryMs?: number;
}

export interface ReconcileResult {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
  leftOut: Array<{ vm: string; reason: string }>;
}

export interface RunningScheduler {
  /** The directory changed: re-read it soon. */
  directoryChanged(): void;
  /** Re-reads the directory and brings the schedules in line now. */
  reconcile(): Promise<ReconcileResult>;
  /** Resolves when no re-read is pending or running (tests wait on it). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

const SITE_MEMO = 'kvmBackupSite';

function fingerprint(d: DesiredSchedule, timezone: string, taskQueue: string): string {
  const text = JSON.stringify({ cron: d.cron, timezone, taskQueue, input: d.input, v: 1 });
  return `kvm-backup ${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

export async function startScheduler(config: GlobalConfig, o: SchedulerOptions): Promise<RunningScheduler> {
  const directory = StoneyDirectory.fromConfig(config.database);
  const timezone = o.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC';
  const { temporal: client, log, taskQueue } = o;
  const reportedLeftOut = new Map<string, string>();

  function scheduleOptions(d: DesiredSchedule) {
    return {
      spec: { cronExpressions: [d.cron], timezone },
      action: {
        type: 'startWorkflow' as const,
        workflowType: SCHEDULED_BACKUP_WORKFLOW,
        args: [d.input],
        taskQueue,
        workflowId: `scheduled-backup/${d.input.group}`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false },
    };
  }

  async function existingSchedules(): Promise<Map<string, string | undefined>> {
    const found = new Map<string, string | undefined>();
    for await (const s of client.schedule.list()) {
      if (s.scheduleId.startsWith(SCHEDULE_ID_PREFIX) && s.memo?.[SITE_MEMO] === taskQueue) found.set(s.scheduleId, s.state.note);
    }
    return found;
  }

  async function reconcile(): Promise<ReconcileResult> {
    const snapshot = await directory.schedulingSnapshot();
    const { schedules, leftOut } = desiredSchedules(snapshot, o.nodes);
    for (const l of leftOut) {
      if (reportedLeftOut.get(l.vm) !== l.reason) log.info(`VM ${l.vm} has no backup schedule: ${l.reason}`);
      reportedLeftOut.set(l.vm, l.reason);
    }
    const existing = await existingSchedules();
    const result: ReconcileResult = { created: [], updated: [], deleted: [], unchanged: [], leftOut };
    for (const d of schedules) {
      const note = fingerprint(d, timezone, taskQueue);
      const options = scheduleOptions(d);
      const update = async () => {
        await client.schedule.getHandle(d.scheduleId).update((prev) => ({ ...options, state: { paused: prev.state.paused, note } }));
        result.updated.push(d.scheduleId);
      };
      if (!existing.has(d.scheduleId)) {
        try {
          await client.schedule.create({ scheduleId: d.scheduleId, ...options, memo: { [SITE_MEMO]: taskQueue }, state: { note } });
          result.created.push(d.scheduleId);
        } catch (e) {
          if (!(e instanceof ScheduleAlreadyRunning)) throw e;
          await update(); // listed late (visibility lags a moment behind)
        }
      } else if (existing.get(d.scheduleId) !== note) await update();
      else result.unchanged.push(d.scheduleId);
    }
    const wanted = new Set(schedules.map((d) => d.scheduleId));
    for (const id of existing.keys()) {
      if (wanted.has(id)) continue;
      await client.schedule.getHandle(id).delete().catch((e) => {
        if (!(e instanceof ScheduleNotFoundError)) throw e;
      });
      result.deleted.push(id);
    }
    for (const id of result.created) log.info(`schedule created: ${id}`);
    for (const id of result.updated) log.info(`schedule updated: ${id}`);
    for (const id of result.deleted) log.info(`schedule removed: ${id}`);
    return result;
  }

  // ---- when to reconcile: on changes (debounced), periodically, and again after a failure -----------
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let dirty = false;
  let failures = 0;
  const waiters: Array<() => void> = [];
  const due = (ms: number) => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
  const run = () => {
    timer = undefined;
    if (running) {
      dirty = true;
      return;
    }
    dirty = false;
    running = reconcile()
      .then(() => {
        failures = 0;
      })
      .catch((e) => {
        failures++;
        const retryMs = Math.min(60_000, 5_000 * 2 ** (failures - 1));
        if (failures === 1 || retryMs === 60_000) log.warn('could not bring the schedules in line; retrying', { error: errorText(e), retryMs });
        due(retryMs);
      })
      .finally(() => {
        running = undefined;
        if (dirty) run();
        else if (!timer) for (const w of waiters.splice(0)) w();
      });
  };
  const periodic = setInterval(() => due(0), o.resyncEveryMs ?? 5 * 60_000);
  periodic.unref();
  due(0);

  return {
    directoryChanged: () => due(o.debounceMs ?? 1_000),
    reconcile,
    settled: () => (running || timer ? new Promise<void>((resolve) => waiters.push(resolve)) : Promise.resolve()),
    stop: async () => {
      stopped = true;
      clearInterval(periodic);
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running;
      for (const w of waiters.splice(0)) w();
    },
  };
}
