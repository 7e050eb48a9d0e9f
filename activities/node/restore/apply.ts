/**
 * The steps that change the live VM (docs/restore.md), run only after every check passed:
 * - stop and undefine the VM (fc-brokerd's job; done here when no control instance did it);
 * - put each image back at the path the backup recorded, one atomic rename at a time (a failure
 *   leaves the images not yet replaced untouched; 40);
 * - restore the VM from its state file, or define and start it (without state, for a VM that was not
 *   running, or when the restore fails and sstVirtualizationVirtualMachineForceStart says so; 41/42,
 *   21 otherwise), defined persistent again if it was;
 * - remove the retain directory (46).
 */
import { DomainNotFoundError } from '../../../adapters/host/virsh.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { ledgerPath } from '../../../core/layout.js';
import { dirname } from '../../../core/naming.js';
import type { RestoreImage, RestorePlan } from '../../../core/restore-plan.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat } from '../heartbeat.js';
import type { UnretainedLarge } from './unretain.js';

/** What the VM was before the restore stopped it; kept beside the retain files for retries. */
interface Stopped {
  wasRunning: boolean;
  wasPersistent: boolean;
}

export interface RestoreResult {
  /** restored = from the state file; started = defined and started (without state); forced = started after a failed restore. */
  how: 'restored' | 'started' | 'forced';
  state: string;
  reason: string;
  warnings: string[];
}

export function createApply(deps: NodeDeps) {
  const { virsh, files } = deps;

  async function stopVm(plan: RestorePlan): Promise<Stopped> {
    const note = ledgerPath(plan.retainDir, 'restoreStopped');
    if (await files.exists(note)) return files.readJson<Stopped>(note, { wasRunning: false, wasPersistent: false });
    let stopped: Stopped = { wasRunning: false, wasPersistent: false };
    try {
      stopped = { wasRunning: await virsh.isActive(plan.vm), wasPersistent: /^Persistent:\s+yes/m.test(await virsh.exec(['dominfo', plan.vm], {}, plan.vm)) };
      if (stopped.wasRunning) await virsh.destroy(plan.vm);
      if (stopped.wasPersistent) await virsh.undefine(plan.vm);
    } catch (e) {
      if (!(e instanceof DomainNotFoundError)) throw failure(Code.CANNOT_WORK_ON_UNDEFINED_OBJECT, `cannot stop ${plan.vm} for the restore: ${(e as Error).message}`);
    }
    await files.writeJson(note, stopped);
    return stopped;
  }

  /** One image back at its path: rename on one filesystem, else copy beside it and rename over it. */
  async function putBack(plan: RestorePlan, image: RestoreImage): Promise<void> {
    const src = `${plan.retainDir}/${image.file}`;
    if (!(await files.exists(src))) {
      if (await files.exists(image.destination)) return; // moved by an earlier attempt
      throw failure(Code.CANNOT_MOVE_DISK_IMAGE_TO_ORIGINAL_LOCATION, `${src} is gone and ${image.destination} is missing`);
    }
    try {
      if (await files.sameFilesystem(src, dirname(image.destination))) await files.rename(src, image.destination);
      else {
        const tmp = `${image.destination}.restore-${plan.ou}`;
        await deps.copy({ src, dst: tmp, rateMiB: deps.copyRateMiB });
        await files.rename(tmp, image.destination);
        await files.remove(src);
      }
    } catch (e) {
      throw failure(Code.CANNOT_MOVE_DISK_IMAGE_TO_ORIGINAL_LOCATION, `${src} → ${image.destination}: ${(e as Error).message}`);
    }
    await files.setOwnership(image.destination, plan.images, 'file');
  }

  async function defineAndStart(plan: RestorePlan): Promise<void> {
    try {
      await virsh.define(`${plan.retainDir}/${plan.files.xml}`);
    } catch (e) {
      throw failure(Code.CANNOT_DEFINE_MACHINE, `define ${plan.vm} from the backed-up XML: ${(e as Error).message}`);
    }
    try {
      await virsh.start(plan.vm);
    } catch (e) {
      throw failure(Code.CANNOT_START_MACHINE, `start ${plan.vm}: ${(e as Error).message}`);
    }
  }

  return {
    async restoreVm(plan: RestorePlan, large: UnretainedLarge): Promise<RestoreResult> {
      const warnings: string[] = [];
      const beat = startHeartbeat({ phase: 'restore' });
      try {
        const stopped = await stopVm(plan);
        for (const image of large.images) await putBack(plan, image);
        let how: RestoreResult['how'];
        const active = await virsh.isActive(plan.vm).catch(() => false);
        if (active) {
          how = plan.withoutState || large.stateKind === 'marker' ? 'started' : 'restored'; // done by an earlier attempt
        } else if (plan.withoutState || large.stateKind === 'marker') {
          await defineAndStart(plan);
          how = 'started';
        } else {
          try {
            await virsh.restore(`${plan.retainDir}/${plan.files.state}`);
            how = 'restored';
          } catch (e) {
            if (!plan.forceStart) {
              // the images are the backup's now: leave the VM defined on them (shut off) for the operator
              const defined = await virsh.define(`${plan.retainDir}/${plan.files.xml}`).then(() => true, () => false);
              throw failure(
                Code.CANNOT_RESTORE_MACHINE,
                `virsh restore of ${plan.vm}: ${(e as Error).message}; ${defined ? 'the VM is defined on the restored images, shut off' : 'the VM could not be defined either'} (sstVirtualizationVirtualMachineForceStart would start it without its state)`,
              );
            }
            warnings.push(`the state could not be restored (${(e as Error).message}); started without it (sstVirtualizationVirtualMachineForceStart)`);
            await defineAndStart(plan);
            how = 'forced';
          }
          // a restored save image runs as a transient domain; a VM that was defined stays defined
          if (how === 'restored' && stopped.wasPersistent) {
            await virsh.define(`${plan.retainDir}/${plan.files.xml}`).catch((e) => warnings.push(`${plan.vm} runs but could not be defined persistent again: ${(e as Error).message}`));
          }
        }
        const { state, reason } = await virsh.state(plan.vm);
        if (state !== 'running') throw failure(Code.CANNOT_START_MACHINE, `${plan.vm} is ${state} (${reason}) after the restore`);
        return { how, state, reason, warnings };
      } finally {
        beat.stop();
      }
    },

    /** Removes the retain directory of a restore (after it, or when it is cancelled). */
    async cleanupRetain(plan: RestorePlan): Promise<{ removed: boolean }> {
      const there = await files.exists(plan.retainDir);
      await files.removeDirectory(plan.retainDir, plan.retainRoot, Code.NOT_ALL_FILES_DELETED_FROM_RETAIN_LOCATION);
      return { removed: there };
    },
  };
}
