/**
 * Keeps the control worker's per-VM "last successful backup" (WorkerMetrics.freshness, the gauges
 * kvm_backup_last_success_timestamp_seconds and …_age_seconds) current from the directory, which
 * survives any worker restart (docs/observability.md, "Last successful backup"):
 *
 * - at start and every hour: the bulk read, 5 searches whatever the fleet (the scheduler's 4 for
 *   VMs, pools and configurations, one paged subtree search for every leaf); it also drops VMs that
 *   left the directory or were excluded from backup, and follows migrations (node) and pool changes;
 * - after each backup or delete that ended on this worker: that VM alone, 2 reads (its entry, its leaves).
 *
 * A failed read is logged and changes nothing: the ages keep growing from the last known backup.
 */
import { freshnessOf, newestCompleteBackup, type VmFreshness } from '../core/backup-freshness.js';
import type { StoneyDirectoryModel } from '../core/directory-model.js';
import type { OperationOutcome } from '../core/operation-outcome.js';
import { messageOf } from '../core/failures.js';
import { productLog } from './logging.js';

/** How often the whole directory is read again. */
export const FULL_REFRESH_MS = 60 * 60 * 1000;

export type FreshnessDirectory = Pick<StoneyDirectoryModel, 'schedulingSnapshot' | 'backupLeaves' | 'vm' | 'leavesOf'>;

export class BackupFreshness {
  private timer: NodeJS.Timeout | undefined;
  /** VM → when its own re-read finished, so an older bulk read does not undo it. */
  private readonly touched = new Map<string, number>();
  private readonly log = productLog({ component: 'worker' });
  private reads = 0;

  constructor(
    private readonly directory: FreshnessDirectory,
    private readonly state: Map<string, VmFreshness>,
  ) {}

  /** The bulk read; replaces every VM's record. Rejects when the directory cannot be read. */
  async refreshAll(): Promise<void> {
    const started = Date.now();
    const [snapshot, leaves] = await Promise.all([this.directory.schedulingSnapshot(), this.directory.backupLeaves()]);
    const fresh = freshnessOf(snapshot, leaves);
    for (const [vm, at] of this.touched) {
      if (at < started) this.touched.delete(vm);
      else if (this.state.has(vm)) fresh.set(vm, this.state.get(vm)!);
    }
    this.state.clear();
    for (const [vm, f] of fresh) this.state.set(vm, f);
    const fields = { vms: fresh.size, leaves: leaves.length, durationMs: Date.now() - started };
    if (this.reads++ === 0) this.log.info('last successful backups read from the directory', fields);
    else this.log.debug('last successful backups read from the directory', fields);
  }

  /** One VM again (after its backup or delete ended). Rejects when the directory cannot be read. */
  async refreshVm(vm: string): Promise<void> {
    const [entry, leaves] = await Promise.all([this.directory.vm(vm), this.directory.leavesOf(vm)]);
    this.touched.set(vm, Date.now());
    if (!entry) {
      this.state.delete(vm);
      return;
    }
    const before = this.state.get(vm);
    const lastSuccess = newestCompleteBackup(leaves);
    this.state.set(vm, {
      vm,
      node: entry.node ?? '',
      pool: entry.pool ?? '',
      ...(lastSuccess ? { lastSuccess } : {}),
      ...(before?.created ? { created: before.created } : {}),
    });
  }

  /** The outcome sink's hook: a backup or delete changes which backups a VM has. Never throws. */
  outcome(o: OperationOutcome): void {
    if (!o.vm || (o.operation !== 'backup' && o.operation !== 'delete')) return;
    const vm = o.vm;
    this.refreshVm(vm).catch((e: unknown) => this.log.warn('could not re-read the backups of a VM for its metrics', { vm, error: messageOf(e) }));
  }

  /** The first bulk read now, then one every FULL_REFRESH_MS; the timer does not keep the process alive. */
  start(everyMs = FULL_REFRESH_MS): void {
    const run = () =>
      this.refreshAll().catch((e: unknown) => this.log.warn('could not read the last successful backups from the directory', { error: messageOf(e) }));
    void run();
    this.timer = setInterval(run, everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
