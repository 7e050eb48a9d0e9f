/**
 * Snapshot: RAM state and every disk frozen at one instant, the VM running (or paused, if it was) on
 * one overlay per disk (docs/backup.md).
 *
 * - `live`: one `snapshot-create-as --live --memspec … --diskspec … --atomic --no-metadata`; QEMU
 *   writes the RAM while the guest runs and pauses only for the last pass (tens of ms). Devices that
 *   are not disks (CD-ROMs) get `snapshot=no`.
 * - `classic`: the original's sequence, `save` → overlays → `restore --xml` with the disks pointed
 *   at the overlays and each disk's own `<backingStore>` dropped, so libvirt reads the overlay's
 *   chain (overlay → image → its backing files); the whole chain is asserted afterwards. A paused VM
 *   is saved paused and restored paused: it never runs.
 * - a shut-off VM gets neither: its images are copied as they are.
 *
 * The UEFI variables and TPM state are copied at the snapshot's instant: between save and restore
 * (classic), right after the snapshot (live).
 *
 * Idempotent: a retry finds the VM already on this backup's overlays (done), saved by an earlier
 * attempt (the classic method continues with the restore), or untouched (starts over after removing
 * leftovers of the failed attempt).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DomainNotFoundError } from '../../../adapters/host/virsh.js';
import { stagingStateFile, type PreparedBackup, type SnapshotResult } from '../../../core/backup-plan.js';
import { domainDisks, retargetDisks } from '../../../core/domain-xml.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { ledgerPath } from '../../../core/layout.js';
import type { PauseWatch } from '../../../adapters/host/guest-pause.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat } from '../heartbeat.js';
import { createFirmwareCopy } from './copy-to-retain.js';
import { createStrayDefinitionRemoval } from './transient-definition.js';

export function createSnapshot(deps: NodeDeps) {
  const { virsh, images, files } = deps;
  const retainFirmware = createFirmwareCopy(deps);
  const removeStrayDefinition = createStrayDefinitionRemoval(deps);

  async function currentSources(vm: string): Promise<Map<string, string>> {
    return new Map((await virsh.blockDevices(vm)).map((d) => [d.target, d.source]));
  }

  /** Waits for a libvirt job of an earlier attempt (an orphaned virsh may still be saving RAM). */
  async function waitForDomainJob(vm: string): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const info = await virsh.exec(['domjobinfo', vm], {}, vm).catch(() => '');
      if (!/Job type:\s+(Unbounded|Bounded)/.test(info)) return;
      await sleep(500);
    }
    throw failure(Code.CANNOT_SAVE_MACHINE_STATE, `a libvirt job on ${vm} did not end within 5 minutes`);
  }

  /** Leftovers of a failed attempt that would make libvirt refuse the snapshot. */
  async function removeLeftovers(p: PreparedBackup, inUse: Set<string>): Promise<void> {
    for (const d of p.plan.disks) if (!inUse.has(d.overlay)) await files.remove(d.overlay);
    await files.remove(stagingStateFile(p));
  }

  /**
   * The live method, with QEMU's downtime limit lowered for the RAM save and raised again step by
   * step if the save does not converge; the domain's own limit is put back afterwards.
   */
  async function live(p: PreparedBackup): Promise<void> {
    const vm = p.plan.vm;
    const previous = await virsh.maxDowntime(vm).catch(() => undefined);
    const ladder = [deps.liveMaxDowntimeMs, 100, 300, 1_000, 5_000].filter((ms, i, all) => i === 0 || ms > all[0]!);
    let step = 0;
    const escalate = async () => {
      if (step + 1 >= ladder.length) return;
      step++;
      await virsh.setMaxDowntime(vm, ladder[step]!).catch(() => undefined);
    };
    if (previous !== undefined) await virsh.setMaxDowntime(vm, ladder[0]!).catch(() => undefined);
    const timer = setInterval(() => void escalate(), 10_000);
    try {
      await virsh.snapshotCreateAs(vm, `kvm-backup-${p.plan.ou}`, {
        memoryFile: stagingStateFile(p),
        live: true,
        disks: p.plan.disks.map((d) => ({ target: d.target, overlay: d.overlay })),
        untouched: p.untouched,
      });
    } finally {
      clearInterval(timer);
      if (previous !== undefined) await virsh.setMaxDowntime(vm, previous).catch(() => undefined);
    }
  }

  async function classic(p: PreparedBackup, alreadySaved: boolean): Promise<void> {
    const { plan } = p;
    const state = stagingStateFile(p);
    if (!alreadySaved) await virsh.save(plan.vm, state, p.runState === 'paused' ? 'paused' : 'running');
    try {
      await retainFirmware(p);
      for (const d of plan.disks) {
        await files.remove(d.overlay);
        await images.createOverlay(d.path, d.overlay, d.format);
      }
    } catch (e) {
      await virsh.restore(state).catch(() => undefined); // back on its own images, as it was saved
      if ((e as { type?: string }).type) throw e;
      throw failure(Code.CANNOT_CREATE_EMPTY_DISK_IMAGE, `overlay for ${plan.vm}: ${(e as Error).message}`, {}, { cause: e });
    }
    const xml = retargetDisks(await virsh.saveImageXml(state), new Map(plan.disks.map((d) => [d.path, d.overlay])));
    const xmlFile = `${state}.restore.xml`;
    await files.writePrivate(xmlFile, xml);
    try {
      await virsh.restore(state, { xmlFile });
    } catch (e) {
      // the overlays are still empty: resume the VM on its own images instead
      await virsh.restore(state).catch(() => undefined);
      throw failure(Code.CANNOT_RESTORE_MACHINE, `restore of ${plan.vm} onto its overlays failed: ${(e as Error).message}`, {}, { cause: e });
    } finally {
      await files.remove(xmlFile);
    }
  }

  /**
   * After the snapshot every disk must run on its overlay, backed by its own image and then by that
   * image's own backing files: a chain that skips the image (a kept `<backingStore>`) would show the
   * guest a disk without its data, and a commit would write into the template.
   */
  async function assertChain(p: PreparedBackup): Promise<void> {
    const disks = domainDisks(await virsh.dumpXml(p.plan.vm));
    for (const d of p.plan.disks) {
      const x = disks.find((xd) => xd.target === d.target);
      const expected = [d.overlay, d.path, ...d.backing.map((b) => b.path)];
      const actual = x ? [x.source, ...x.chain.map((c) => c.source)] : [];
      if (actual.length !== expected.length || actual.some((path, i) => path !== expected[i])) {
        throw failure(
          Code.CANNOT_RESTORE_MACHINE,
          `${p.plan.vm} ${d.target} runs on the chain ${actual.join(' → ') || '?'}; expected ${expected.join(' → ')}`,
        );
      }
    }
  }

  return {
    async takeSnapshot(p: PreparedBackup): Promise<SnapshotResult> {
      const { plan } = p;
      const started = Date.now();
      await files.makeDirectory(plan.retainDir, plan.directories);
      const resultFile = ledgerPath(plan.retainDir, 'snapshotResult');
      if (!p.active) {
        const result: SnapshotResult = { method: 'offline', pauseMs: 0, durationMs: 0 };
        await files.writeJson(resultFile, result);
        return result;
      }
      const beat = startHeartbeat({ phase: 'snapshot' });
      // the guest-pause watcher connects and registers for QEMU's events while the checks below run
      // (its warm-up: 150 ms here, 1.5 s over SSH); stopped in the finally unless the snapshot used it
      let watching: Promise<PauseWatch> | undefined = deps.guestPause(plan.vm);
      void watching.catch(() => undefined); // awaited below: a failure is reported there, not as unhandled
      try {
        await waitForDomainJob(plan.vm);
        const sources = await currentSources(plan.vm).catch(() => new Map<string, string>());
        const onOverlay = plan.disks.filter((d) => sources.get(d.target) === d.overlay);
        if (onOverlay.length === plan.disks.length && (await files.exists(stagingStateFile(p)))) {
          // done by an earlier attempt that did not live to report it
          return files.readJson<SnapshotResult>(resultFile, { method: plan.method, pauseMs: -1, durationMs: 0 });
        }
        if (onOverlay.length > 0) {
          throw failure(Code.CANNOT_SAVE_MACHINE_STATE, `${plan.vm} runs on ${onOverlay.length} of ${plan.disks.length} overlays; not snapshotting over that`);
        }
        const { state, reason } = await virsh.state(plan.vm).catch((e) => {
          // a transient VM stopped since the preflight has no domain left
          if (e instanceof DomainNotFoundError) throw failure(Code.CANNOT_SAVE_MACHINE_STATE, `${plan.vm} is gone from libvirt since the preflight`, {}, { permanent: true });
          throw e;
        });
        const savedByUs = state === 'shut off' && reason === 'saved' && plan.method === 'classic' && (await files.exists(stagingStateFile(p)));
        if (!savedByUs) {
          // paused by a failed attempt of ours (a live save that stopped the guest): it ran before
          if (state === 'paused' && p.runState === 'running') await virsh.resume(plan.vm);
          // stopped (or paused) by somebody else since the preflight: nothing to snapshot, and retrying will not change that
          else if (state !== p.runState) throw failure(Code.CANNOT_SAVE_MACHINE_STATE, `${plan.vm} is ${state} (${reason}), not ${p.runState} as at the preflight`, {}, { permanent: true });
          await removeLeftovers(p, new Set(sources.values()));
        }
        const watch = await watching;
        watching = undefined;
        const wall = Date.now();
        let pauseMs: number | undefined;
        try {
          if (plan.method === 'live') await live(p);
          else await classic(p, savedByUs);
        } catch (e) {
          if ((e as { type?: string }).type) throw e;
          throw failure(Code.CANNOT_SAVE_MACHINE_STATE, `${plan.method} snapshot of ${plan.vm}: ${(e as Error).message}`, {}, { cause: e });
        } finally {
          pauseMs = await watch.stop();
        }
        const wallMs = Date.now() - wall;
        await assertChain(p);
        await removeStrayDefinition(p);
        if (plan.method === 'live') await retainFirmware(p);
        // a paused guest was paused anyway: the backup cost it no time
        const result: SnapshotResult = { method: plan.method, pauseMs: p.runState === 'paused' ? 0 : (pauseMs ?? wallMs), durationMs: Date.now() - started };
        await files.writeJson(resultFile, result);
        return result;
      } finally {
        beat.stop();
        if (watching) await watching.then((w) => w.stop()).catch(() => undefined);
      }
    },
  };
}
