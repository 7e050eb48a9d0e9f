/**
 * Merge: every overlay committed back into its image with an active block commit and a pivot
 * (bandwidth sstVirtualizationBandwidthMerge, 0 = unlimited), the job watched until the VM really
 * runs on its image again (a job that vanishes without the pivot is a failure, unlike the original),
 * then the overlay removed. A VM that went down on its overlay gets an offline `qemu-img commit`,
 * so no write is lost when it next starts from its persistent definition.
 *
 * The same routine, with the recovery of a paused or saved VM in front, is the compensation every
 * failure after the snapshot runs: `ensureOnOwnImages`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DomainNotFoundError } from '../../../adapters/host/virsh.js';
import { stagingStateFile, type BackupPlan, type PreparedBackup } from '../../../core/backup-plan.js';
import { ledgerPath } from '../../../core/layout.js';
import { domainDisks, withOriginalDisks } from '../../../core/domain-xml.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat, type Beat } from '../heartbeat.js';
import { createStrayDefinitionRemoval } from './transient-definition.js';

export interface MergeProgress {
  phase: 'merge';
  disk: string;
  cur: number;
  end: number;
}

export interface MergeResult {
  durationMs: number;
  /** Disks committed by this call (a retry after success commits none). */
  committed: string[];
}

export function createMerge(deps: NodeDeps) {
  const { virsh, images, files } = deps;
  const pollMs = deps.pollMs ?? 250;
  const removeStrayDefinition = createStrayDefinitionRemoval(deps);

  async function sourceOf(vm: string, target: string): Promise<string | undefined> {
    return (await virsh.blockDevices(vm)).find((d) => d.target === target)?.source;
  }

  /** Commit one disk of a running VM; returns true if it did anything. */
  async function commitLive(plan: BackupPlan, disk: BackupPlan['disks'][number], beat: Beat<MergeProgress>): Promise<boolean> {
    let startedJob = false;
    // a commit of a small overlay is ready within milliseconds: look again soon, then every pollMs
    let waitMs = Math.min(25, pollMs);
    for (;;) {
      if (beat.signal.aborted) throw beat.signal.reason;
      const source = await sourceOf(plan.vm, disk.target);
      if (source === disk.path) return startedJob;
      if (source !== disk.overlay) {
        throw failure(Code.CANNOT_MERGE_DISK_IMAGES, `${plan.vm} ${disk.target} runs on ${source ?? 'nothing'}, neither ${disk.path} nor its overlay`);
      }
      const job = await virsh.blockJob(plan.vm, disk.target);
      if (!job) {
        if (startedJob) {
          throw failure(Code.CANNOT_MERGE_DISK_IMAGES, `the block commit of ${plan.vm} ${disk.target} ended without a pivot (failed or aborted)`);
        }
        try {
          // into the VM's own image, named: never into a backing file below it (a linked clone's template)
          await virsh.blockCommitActive(plan.vm, disk.target, disk.path, plan.bandwidthMiB);
        } catch (e) {
          throw failure(Code.CANNOT_MERGE_DISK_IMAGES, `block commit of ${plan.vm} ${disk.target}: ${(e as Error).message}`);
        }
        startedJob = true;
        continue;
      }
      if (!/commit/i.test(job.type)) {
        throw failure(Code.CANNOT_MERGE_DISK_IMAGES, `${plan.vm} ${disk.target} has a foreign block job (${job.type})`);
      }
      startedJob = true; // ours, possibly started by an earlier attempt: attach to it
      beat.set({ phase: 'merge', disk: disk.target, cur: job.cur, end: job.end });
      if (job.end > 0 && job.cur === job.end) {
        try {
          await virsh.blockJobPivot(plan.vm, disk.target);
        } catch (e) {
          // "not ready for pivot yet" happens; the loop looks again
          if (!/not ready|no job|No current block job/i.test((e as Error).message)) {
            throw failure(Code.CANNOT_MERGE_DISK_IMAGES, `pivot of ${plan.vm} ${disk.target}: ${(e as Error).message}`);
          }
        }
        continue;
      }
      await sleep(waitMs);
      waitMs = Math.min(waitMs * 2, pollMs);
    }
  }

  /**
   * A snapshot points the persistent definition at the overlays too (a pivot points it back). A VM
   * that went down on its overlays is defined on them: after the offline commit it must be defined
   * on its own images again, or it would not start (or start on a stale overlay).
   */
  async function redefineOnImages(plan: BackupPlan): Promise<boolean> {
    const xml = await virsh.dumpXml(plan.vm, { inactive: true });
    const toImage = new Map(plan.disks.map((d) => [d.overlay, d.path]));
    if (!domainDisks(xml).some((d) => toImage.has(d.source))) return false;
    const file = `${plan.disks[0]!.overlay}.define.xml`;
    try {
      await files.writePrivate(file, withOriginalDisks(xml, toImage, new Map(plan.disks.map((d) => [d.path, d.format]))));
      await virsh.define(file);
    } catch (e) {
      throw failure(Code.CANNOT_DEFINE_MACHINE, `cannot define ${plan.vm} on its own images again: ${(e as Error).message}`);
    } finally {
      await files.remove(file);
    }
    return true;
  }

  async function removeOverlay(path: string): Promise<void> {
    try {
      await files.remove(path);
    } catch (e) {
      throw failure(Code.CANNOT_REMOVE_OLD_DISK_IMAGE, `cannot remove overlay ${path}: ${(e as Error).message}`);
    }
  }

  /**
   * Every disk back on its image, whatever state the VM is in now; overlays removed. A VM that went
   * down (or, transient, vanished) on its overlays gets an offline commit: its writes are only there.
   */
  async function commitOverlays(plan: BackupPlan): Promise<string[]> {
    const committed: string[] = [];
    const isActive = () =>
      virsh.isActive(plan.vm).catch((e) => {
        if (e instanceof DomainNotFoundError) return false;
        throw e;
      });
    let wentDown = false;
    const beat = startHeartbeat<MergeProgress>({ phase: 'merge', disk: '', cur: 0, end: 0 });
    try {
      for (const disk of plan.disks) {
        let live: boolean = !wentDown && (await isActive());
        if (live) {
          try {
            if (await commitLive(plan, disk, beat)) committed.push(disk.target);
          } catch (e) {
            // stopped in the middle of the commit (its job dies with QEMU): the overlay is whole, commit it offline
            if (beat.signal.aborted || (await isActive())) throw e;
            live = false;
          }
        }
        wentDown ||= !live;
        if (!live && (await files.exists(disk.overlay))) {
          // the VM went down on its overlay: its writes are only there
          const info = await images.info(disk.overlay).catch(() => undefined);
          if (info?.backingFile === disk.path) {
            try {
              await images.commit(disk.overlay, disk.path);
            } catch (e) {
              throw failure(Code.CANNOT_MERGE_DISK_IMAGES, `offline commit of ${disk.overlay}: ${(e as Error).message}`);
            }
            committed.push(disk.target);
          }
        }
        await removeOverlay(disk.overlay);
      }
      if (wentDown && (await virsh.exists(plan.vm)) && (await redefineOnImages(plan))) committed.push('definition');
    } finally {
      beat.stop();
    }
    return committed;
  }

  return {
    async mergeBack(p: PreparedBackup): Promise<MergeResult> {
      const started = Date.now();
      const committed = await commitOverlays(p.plan);
      await removeStrayDefinition(p); // the pivot writes it again
      return { durationMs: Date.now() - started, committed };
    },

    /**
     * Compensation: the VM back in the state it had before the backup (running stays running, paused
     * stays paused) on its own images, whatever a failed step left: saved by the classic method
     * (a transient VM's save leaves no domain at all), paused by a failed live save, on overlays, or
     * down with writes in an overlay. A VM that somebody else stopped is not started behind their back.
     */
    async ensureOnOwnImages(p: PreparedBackup): Promise<{ actions: string[] }> {
      const { plan } = p;
      const actions: string[] = [];
      const state = await virsh.state(plan.vm).catch((e) => {
        if (e instanceof DomainNotFoundError) return undefined; // a transient VM, saved or destroyed
        throw e;
      });
      const staged = stagingStateFile(p);
      const snapshotDone = await files.exists(ledgerPath(plan.retainDir, 'snapshotResult'));
      const savedByUs = p.active && plan.method === 'classic' && !snapshotDone && (await files.exists(staged)) && (state ? state.state === 'shut off' && state.reason === 'saved' : true);
      if (savedByUs) {
        // the classic method failed between save and restore: the state matches the images as they are,
        // and restores into the state it was saved in (paused or running)
        for (const d of plan.disks) await removeOverlay(d.overlay);
        await virsh.restore(staged);
        actions.push(`restored the saved VM on its own images (${p.runState})`);
      } else if (state?.state === 'paused' && p.runState === 'running') {
        await virsh.resume(plan.vm);
        actions.push('resumed the VM a failed snapshot left paused');
      } else if (!state) {
        actions.push(`${plan.vm} is gone from libvirt (a transient VM that was stopped): its overlay writes go into its images offline`);
      }
      const committed = await commitOverlays(plan);
      if (committed.length) actions.push(`committed overlays of ${committed.join(', ')}`);
      const removed = await removeStrayDefinition(p);
      if (removed) actions.push(removed);
      return { actions };
    },
  };
}
