/**
 * A node worker without a hypervisor, for the tests and recordings that exercise the workflows and
 * the control activities (real Temporal, real slapd) but must not touch libvirt: every node activity
 * of `NodeActivities` (activities/node/index.ts), answering with a result of the real shape built
 * from the same pure plans the real steps use (core/backup-plan.ts, core/restore-plan.ts). The long
 * copies heartbeat their progress as the real ones do (in the heartbeat details, core/progress.ts:
 * nothing in the history).
 *
 * A test can make one activity fail with an exit code (non-retryable, as a permanent failure), hold
 * one until it is released (a backup that waits in the middle), and read which activities ran.
 */
import { activityInfo, heartbeat } from '@temporalio/activity';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { NodeActivities } from '../../activities/node/index.js';
import { planBackup, type BackupContext, type PreparedBackup } from '../../core/backup-plan.js';
import { failure } from '../../core/failures.js';
import { nodeTaskQueue } from '../../core/naming.js';
import { ProgressMeter } from '../../core/progress.js';
import { expectedBackupDir, restoreImages, restorePlan, type RestorePlan } from '../../core/restore-plan.js';

export type NodeActivityName = keyof NodeActivities;

export interface StubNodeOptions {
  /** This node's name: the worker polls its task queue (core/naming.ts nodeTaskQueue). */
  node: string;
  /** [Backup] VIRTUALIZATION_ROOT the plans are made for. */
  virtualizationRoot: string;
  /** Activities that fail with this exit code (not retried: the failure is marked permanent). */
  fail?: Partial<Record<NodeActivityName, number>>;
}

/** A held activity: `entered` resolves when a call waits, `release()` lets it finish. */
export interface Hold {
  entered: Promise<void>;
  release(): void;
}

export interface StubNode {
  activities: NodeActivities;
  /** Activity names in the order they were called (retries included). */
  calls: NodeActivityName[];
  /** The next call of `name` waits until released. */
  hold(name: NodeActivityName): Hold;
  /** Changes which activities fail from now on. */
  failing(fail: Partial<Record<NodeActivityName, number>>): void;
  /** The OUs rotation reports as deleted from now on (default none). */
  rotating(ous: string[]): void;
}

/** One heartbeat with the copy's details and progress report, as activities/node/heartbeat.ts sends it. */
async function reportProgress(file: string, total: number): Promise<void> {
  const details = { current: { name: file, bytes: total, total } };
  const progress = new ProgressMeter(activityInfo().activityType).report(details, Date.now());
  heartbeat(progress ? { ...details, progress } : details);
}

const MiB = 2 ** 20;

export function stubNodeActivities(o: StubNodeOptions): StubNode {
  const calls: NodeActivityName[] = [];
  const holds = new Map<NodeActivityName, { entered: () => void; released: Promise<void> }>();
  let fail = { ...o.fail };
  let rotated: string[] = [];
  /** Every activity first records itself, waits if held, and fails if asked to. */
  const enter = async (name: NodeActivityName): Promise<void> => {
    calls.push(name);
    const held = holds.get(name);
    if (held) {
      holds.delete(name);
      held.entered();
      await held.released;
    }
    const code = fail[name];
    if (code !== undefined) throw failure(code, `stub node: ${name} fails as the test asked`, {}, { permanent: true });
  };
  const prepared = (ctx: BackupContext, method: PreparedBackup['plan']['method']): PreparedBackup => ({
    plan: planBackup(ctx, { virtualizationRoot: o.virtualizationRoot, method }),
    active: true,
    runState: 'running',
    persistent: true,
    memoryKiB: 65_536,
    staging: 'ramdisk',
    untouched: [],
    firmware: {},
    warnings: [],
  });
  const restoreImagesOf = (plan: RestorePlan) => restoreImages(plan, [{ target: 'vda', path: `${o.virtualizationRoot}/vm-persistent/${plan.vm}-vda.disk.qcow2` }]);

  const activities: NodeActivities = {
    async probeNode() {
      await enter('probeNode');
      return { node: o.node, libvirt: 'QEMU 9.2.0 (stub)', kvm: true, domains: [] };
    },
    async preflight(ctx, method, purpose) {
      await enter('preflight');
      void purpose;
      return prepared(ctx, method ?? ctx.configuration.config.snapshotMethod ?? 'live');
    },
    async takeSnapshot(p) {
      await enter('takeSnapshot');
      return { method: p.plan.method, pauseMs: 42, durationMs: 900 };
    },
    async copyToRetain(p, ldif) {
      await enter('copyToRetain');
      await reportProgress(p.plan.disks[0]!.name, 64 * MiB);
      return { bytes: 64 * MiB + ldif.length, files: 4 + p.plan.disks.length, durationMs: 1_200, resumedBytes: 0 };
    },
    async mergeBack(p) {
      await enter('mergeBack');
      return { durationMs: 700, committed: p.plan.disks.map((d) => d.target) };
    },
    async ensureOnOwnImages(p) {
      await enter('ensureOnOwnImages');
      return { actions: p.plan.disks.map((d) => `block commit ${d.overlay} → ${d.path}`) };
    },
    async exportBackup(p) {
      await enter('exportBackup');
      await reportProgress(p.plan.disks[0]!.name, 64 * MiB);
      return { bytes: 64 * MiB, files: 5 + p.plan.disks.length, durationMs: 1_500, resumedBytes: 0 };
    },
    async rotateIterations(plan, keep) {
      await enter('rotateIterations');
      void keep;
      return { kept: [plan.ou], deleted: rotated, unfinished: [] };
    },
    async purgeDeletedIterations() {
      await enter('purgeDeletedIterations');
      return { purged: rotated };
    },
    async deleteIteration(ctx) {
      await enter('deleteIteration');
      return { deleted: true, backupDir: expectedBackupDir(ctx, o.virtualizationRoot).backupDir };
    },
    async locateBackup(ctx, withoutState) {
      await enter('locateBackup');
      return restorePlan(ctx, expectedBackupDir(ctx, o.virtualizationRoot), withoutState);
    },
    async unretainSmallFiles() {
      await enter('unretainSmallFiles');
      return { warnings: [] };
    },
    async unretainLargeFiles(plan) {
      await enter('unretainLargeFiles');
      await reportProgress(plan.files.state, 64 * MiB);
      return { images: restoreImagesOf(plan), stateKind: 'saved', verified: 'sha256', warnings: [], bytes: 128 * MiB, resumedBytes: 0, copyMs: 800 };
    },
    async restoreVm(plan) {
      await enter('restoreVm');
      return plan.withoutState
        ? { how: 'started', state: 'running', reason: 'restored without state', warnings: [] }
        : { how: 'restored', state: 'running', reason: 'restored from the state file', warnings: [] };
    },
    async cleanupRetain() {
      await enter('cleanupRetain');
      return { removed: true };
    },
    async verifyBackup() {
      await enter('verifyBackup');
      return { at: new Date().toISOString(), ok: true, verified: 'sha256', warnings: [], files: 6, bytes: 128 * MiB };
    },
  };

  return {
    activities,
    calls,
    hold(name) {
      let entered!: () => void;
      let release!: () => void;
      const enteredP = new Promise<void>((r) => (entered = r));
      const released = new Promise<void>((r) => (release = r));
      holds.set(name, { entered, released });
      return { entered: enteredP, release };
    },
    failing(f) {
      fail = { ...f };
    },
    rotating(ous) {
      rotated = [...ous];
    },
  };
}

/** A running stub node worker on `node`'s task queue. */
export interface StubNodeWorker extends StubNode {
  worker: Worker;
  shutdown(): Promise<void>;
}

export async function startStubNodeWorker(connection: NativeConnection, namespace: string, o: StubNodeOptions): Promise<StubNodeWorker> {
  const stub = stubNodeActivities(o);
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: nodeTaskQueue(o.node),
    activities: stub.activities,
    identity: `stub-node-worker@${o.node}/${process.pid}`,
    shutdownGraceTime: '1 second',
  });
  const running = worker.run();
  return {
    ...stub,
    worker,
    shutdown: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
