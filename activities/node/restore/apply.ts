/**
 * The steps that change the live VM (docs/restore.md), run only after every check passed:
 * - stop and undefine the VM (fc-brokerd's job; done here when no control instance did it), keeping
 *   its UEFI variables and TPM state files for the next step to replace;
 * - put the backup's UEFI variables and TPM state back, then each image at the path the backup
 *   recorded, one atomic rename at a time (a failure leaves what was not yet replaced untouched; 40);
 *   the image it replaces waits in the retain directory and is freed with it, after the VM runs;
 * - restore the VM from its state file, or start it without (restore without state, or when the
 *   restore fails and sstVirtualizationVirtualMachineForceStart says so; 41/42, 21 otherwise), in the
 *   state it had at the backup (running, paused, or, shut off, only defined) and as persistent or
 *   transient as it was (the backup's facts; for older iterations as before the restore);
 * - remove the retain directory (46).
 */
import { DomainNotFoundError } from '../../../adapters/host/virsh.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import type { RunState } from '../../../core/backup-plan.js';
import { withoutBackingStores } from '../../../core/domain-xml.js';
import { fileNames, ledgerPath, replacedImagePath, type BackupFacts } from '../../../core/layout.js';
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

  /** What the VM was, noted before anything is done to it (a retry after a crash finds it), then stopped and undefined. */
  async function stopVm(plan: RestorePlan): Promise<Stopped> {
    const note = ledgerPath(plan.retainDir, 'restoreStopped');
    let stopped = await files.readJson<Stopped | undefined>(note, undefined);
    try {
      // the VM as it is now, read once (a retry reads again: an earlier attempt may have half stopped it)
      const [active, persistent] = (await virsh.exists(plan.vm)) ? await Promise.all([virsh.isActive(plan.vm), virsh.isPersistent(plan.vm)]) : [false, false];
      if (!stopped) {
        stopped = { wasRunning: active, wasPersistent: persistent };
        await files.writeJson(note, stopped);
      }
      if (active) await virsh.destroy(plan.vm);
      // a transient VM is gone once destroyed; a persistent one keeps its definition until undefined
      if (persistent) await virsh.undefine(plan.vm);
    } catch (e) {
      if (!(e instanceof DomainNotFoundError)) throw failure(Code.CANNOT_WORK_ON_UNDEFINED_OBJECT, `cannot stop ${plan.vm} for the restore: ${(e as Error).message}`, {}, { cause: e });
    }
    return stopped ?? { wasRunning: false, wasPersistent: false };
  }

  /** The backup's UEFI variables and TPM state where the VM keeps them, before it is defined or restored. */
  async function putFirmwareBack(plan: RestorePlan, facts: BackupFacts | undefined): Promise<void> {
    const at = (file: string) => `${plan.retainDir}/${fileNames.inBackup(file, plan.ou)}`;
    try {
      const nvram = facts?.firmware.nvram;
      if (nvram && (await files.exists(at(nvram.file)))) {
        const tmp = `${nvram.path}.restore-${plan.ou}`;
        await deps.copy({ src: at(nvram.file), dst: tmp });
        await files.rename(tmp, nvram.path);
        await files.remove(at(nvram.file));
      }
      const tpm = facts?.firmware.tpm;
      if (tpm && (await files.exists(at(tpm.file)))) {
        await files.replaceWithArchive(at(tpm.file), tpm.dir);
        await files.remove(at(tpm.file));
      }
    } catch (e) {
      throw failure(Code.CANNOT_MOVE_DISK_IMAGE_TO_ORIGINAL_LOCATION, `UEFI variables or TPM state of ${plan.vm} back in place: ${(e as Error).message}`, {}, { cause: e });
    }
  }

  /**
   * One image back at its path: on one filesystem the image it replaces moves into the retain
   * directory (freed with it, after the VM runs) and the backup's image is renamed into its place;
   * else copied beside it and renamed over it.
   */
  async function putBack(plan: RestorePlan, image: RestoreImage): Promise<void> {
    const src = `${plan.retainDir}/${image.file}`;
    if (!(await files.exists(src))) {
      if (await files.exists(image.destination)) return; // moved by an earlier attempt
      throw failure(Code.CANNOT_MOVE_DISK_IMAGE_TO_ORIGINAL_LOCATION, `${src} is gone and ${image.destination} is missing`);
    }
    try {
      if (await files.sameFilesystem(src, dirname(image.destination))) {
        if (await files.exists(image.destination)) await files.rename(image.destination, replacedImagePath(plan.retainDir, image.file));
        await files.rename(src, image.destination);
      } else {
        const tmp = `${image.destination}.restore-${plan.ou}`;
        await deps.copy({ src, dst: tmp, rateMiB: deps.copyRateMiB });
        await files.rename(tmp, image.destination);
        await files.remove(src);
      }
    } catch (e) {
      throw failure(Code.CANNOT_MOVE_DISK_IMAGE_TO_ORIGINAL_LOCATION, `${src} → ${image.destination}: ${(e as Error).message}`, {}, { cause: e });
    }
    await files.setOwnership(image.destination, plan.images, 'file');
  }

  async function define(plan: RestorePlan): Promise<void> {
    try {
      await virsh.define(`${plan.retainDir}/${plan.files.xml}`);
    } catch (e) {
      throw failure(Code.CANNOT_DEFINE_MACHINE, `define ${plan.vm} from the backed-up XML: ${(e as Error).message}`, {}, { cause: e });
    }
  }

  /** Starts the VM from the backed-up XML without its RAM state: defined first if persistent, else created transient. */
  async function startWithoutState(plan: RestorePlan, persistent: boolean, paused: boolean): Promise<void> {
    try {
      if (persistent) {
        await define(plan);
        await virsh.start(plan.vm, { paused });
      } else await virsh.create(`${plan.retainDir}/${plan.files.xml}`, { paused });
    } catch (e) {
      if ((e as { type?: string }).type) throw e;
      throw failure(Code.CANNOT_START_MACHINE, `start ${plan.vm}: ${(e as Error).message}`, {}, { cause: e });
    }
  }

  /**
   * `virsh restore` of the state file with the saved XML's disks probed afresh: the images put back
   * may be flattened copies of a linked clone, without the template the saved XML names.
   */
  async function restoreState(plan: RestorePlan, large: UnretainedLarge): Promise<void> {
    const state = `${plan.retainDir}/${plan.files.state}`;
    const xmlFile = `${plan.retainDir}/${plan.vm}.restore.xml`;
    await files.writePrivate(xmlFile, withoutBackingStores(await virsh.saveImageXml(state), large.images.map((i) => i.destination)));
    try {
      await virsh.restore(state, { xmlFile });
    } finally {
      await files.remove(xmlFile);
    }
  }

  return {
    async restoreVm(plan: RestorePlan, large: UnretainedLarge): Promise<RestoreResult> {
      const warnings: string[] = [];
      const beat = startHeartbeat({ phase: 'restore' });
      try {
        const { facts } = large;
        const stopped = await stopVm(plan);
        // the state and persistence the VM had at the backup; an older iteration says neither: a
        // running VM, defined as it is now (its marker state file: started, as the original did)
        const target: RunState = facts?.runState ?? 'running';
        const withState = !plan.withoutState && large.stateKind === 'saved';
        const persistent = facts?.persistent ?? (withState ? stopped.wasPersistent : true);
        await putFirmwareBack(plan, facts);
        for (const image of large.images) await putBack(plan, image);
        let how: RestoreResult['how'];
        const exists = await virsh.exists(plan.vm);
        if (exists && ((await virsh.isActive(plan.vm)) || target === 'shut off')) {
          how = withState ? 'restored' : 'started'; // done by an earlier attempt
        } else if (!withState) {
          if (target === 'shut off') await define(plan);
          else await startWithoutState(plan, persistent, target === 'paused');
          how = 'started';
        } else {
          try {
            await restoreState(plan, large);
            how = 'restored';
          } catch (e) {
            if (!plan.forceStart) {
              // the images are the backup's now: leave the VM defined on them (shut off) for the operator
              const defined = await virsh.define(`${plan.retainDir}/${plan.files.xml}`).then(() => true, () => false);
              throw failure(
                Code.CANNOT_RESTORE_MACHINE,
                `virsh restore of ${plan.vm}: ${(e as Error).message}; ${defined ? 'the VM is defined on the restored images, shut off' : 'the VM could not be defined either'} (sstVirtualizationVirtualMachineForceStart would start it without its state)`,
                {},
                { cause: e },
              );
            }
            warnings.push(`the state could not be restored (${(e as Error).message}); started without it (sstVirtualizationVirtualMachineForceStart)`);
            await startWithoutState(plan, persistent, target === 'paused');
            how = 'forced';
          }
        }
        // a restored save image runs as a transient domain; a VM that was defined is defined again
        if (how === 'restored' && persistent && !(await virsh.isPersistent(plan.vm))) {
          await virsh.define(`${plan.retainDir}/${plan.files.xml}`).catch((e) => warnings.push(`${plan.vm} runs but could not be defined persistent again: ${(e as Error).message}`));
        }
        const { state, reason } = await virsh.state(plan.vm);
        if (state !== target) throw failure(Code.CANNOT_START_MACHINE, `${plan.vm} is ${state} (${reason}) after the restore, not ${target} as at the backup`);
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
