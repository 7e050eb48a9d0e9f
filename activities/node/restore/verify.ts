/**
 * `verify`: the checks of a restore, run on a stored iteration without changing it (each file hashed
 * against the manifest, every image through `qemu-img check`, the state file read by libvirt). The
 * result is kept (`.verified.json`) so `list` can show it. A plain iteration is checked in place; a
 * snapshot in a restic repository is first checked by `restic check` (the repository's structure and
 * the snapshot's data read back, [Backup] RESTIC_VERIFY_READ_DATA), then restored into a scratch
 * directory below the retain root for the same checks, which is removed again (docs/repository.md).
 */
import { Code } from '../../../core/exit-codes.js';
import { codeOf, failure, messageOf } from '../../../core/failures.js';
import { ledgerPath, repositoryVerifyRecord, verifyScratchDirectory, type VerifyRecord } from '../../../core/layout.js';
import { restoreImages, type RestorePlan } from '../../../core/restore-plan.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat, type Beat } from '../heartbeat.js';
import { repositoryFailure } from '../repository.js';
import { backedUpDisks, checkChecksums, checkImages, checkStateFile, firmwareFiles, imageFormats, readFacts } from './checks.js';

export type { VerifyRecord };

type Checked = Omit<VerifyRecord, 'at' | 'ok'>;

export function createVerify(deps: NodeDeps) {
  const fs = deps.files;

  /** Every check of an iteration directory; `counted` gets files and bytes as they are hashed (for the record of a failure). */
  async function checkDirectory(plan: RestorePlan, dir: string, beat: Beat<object>, counted: { files: number; bytes: number }, warnings: string[]): Promise<Checked> {
    let xml: string;
    try {
      xml = await fs.readText(`${dir}/${plan.files.xml}`);
    } catch (e) {
      throw failure(Code.CANNOT_READ_XML_FILE, `cannot read ${plan.files.xml}: ${(e as Error).message}`, {}, { cause: e });
    }
    const disks = backedUpDisks(xml, plan.files.xml).filter((d) => d.device === 'disk' && d.type === 'file');
    if (disks.length === 0) throw failure(Code.CANNOT_READ_XML_FILE, `${plan.files.xml} lists no file disk`);
    const set = restoreImages(plan, disks.map((d) => ({ target: d.target, path: d.source })));
    const facts = await readFacts(fs, `${dir}/${plan.files.facts}`, plan.files.facts);
    const required = [plan.files.state, ...set.map((i) => i.file), ...firmwareFiles(facts, plan.ou), ...(facts ? [plan.files.facts] : [])];
    const hashes: Record<string, string> = {};
    for (const name of [plan.files.xml, plan.files.ldif, ...required]) {
      const path = `${dir}/${name}`;
      const size = await fs.size(path);
      if (size === undefined) {
        if (name === plan.files.ldif) continue;
        throw failure(Code.MISSING_NECESSARY_FILES, `${path} is missing`);
      }
      if (size === 0) throw failure(Code.MISSING_NECESSARY_FILES, `${path} is empty`);
      beat.set({ phase: 'verify', current: { name, bytes: 0, total: size } });
      hashes[name] = await fs.sha256(path);
      counted.bytes += size;
      counted.files++;
    }
    const verified = await checkChecksums(fs, plan, dir, hashes, required, warnings);
    await checkImages(deps.images, dir, set, imageFormats(disks, facts, plan.imageFormat), warnings);
    await checkStateFile(fs, deps.virsh, `${dir}/${plan.files.state}`, plan.files.state);
    return { verified, warnings, ...counted };
  }

  /** `restic check` of the snapshot (structure, and its data read back), then the snapshot restored to a scratch directory and checked there. */
  async function checkSnapshot(plan: RestorePlan, beat: Beat<object>, counted: { files: number; bytes: number }, warnings: string[]): Promise<Checked> {
    const repo = plan.repository!;
    const readData = deps.restic.settings.verifyReadData;
    try {
      beat.set({ phase: 'verify' });
      const { errors } = await deps.restic.check(repo, { snapshots: [plan.snapshot!], readData, signal: beat.signal });
      if (errors > 0) throw failure(Code.CORRUPT_DISK_IMAGE_FOUND, `restic check of ${repo.uri} found ${errors} errors`);
    } catch (e) {
      throw repositoryFailure(e, Code.CORRUPT_DISK_IMAGE_FOUND, `restic check of snapshot ${plan.snapshot} in ${repo.uri} (read data: ${readData})`);
    }
    const scratch = verifyScratchDirectory(plan.retainRoot, plan.intermediate);
    await fs.removeDirectory(scratch, plan.retainRoot);
    await fs.makeDirectory(scratch, plan.directories);
    try {
      try {
        await deps.restic.restore(repo, plan.snapshot!, scratch, {
          signal: beat.signal,
          onProgress: (s) => beat.set({ phase: 'verify', current: { name: s.file ?? 'snapshot', bytes: s.bytes, total: s.total } }),
        });
      } catch (e) {
        throw repositoryFailure(e, Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `restic restore of snapshot ${plan.snapshot} from ${repo.uri} for verify`);
      }
      return await checkDirectory(plan, scratch, beat, counted, warnings);
    } finally {
      await fs.removeDirectory(scratch, plan.retainRoot).catch(() => undefined);
    }
  }

  return {
    async verifyBackup(plan: RestorePlan): Promise<VerifyRecord> {
      const warnings: string[] = [];
      const recordAt = plan.repository ? repositoryVerifyRecord(plan.retainRoot, plan.vm, plan.ou) : ledgerPath(plan.backupDir, 'verified');
      const record = async (r: Omit<VerifyRecord, 'at'>) => {
        const full = { at: new Date().toISOString(), ...r };
        if (plan.repository) await fs.makeDirectory(recordAt.slice(0, recordAt.lastIndexOf('/')), plan.directories).catch(() => undefined);
        await fs.writeJson(recordAt, full).catch(() => undefined);
        return full;
      };
      const beat = startHeartbeat<object>({ phase: 'verify', current: { name: '', bytes: 0, total: 0 } });
      const counted = { files: 0, bytes: 0 };
      try {
        const checked = plan.repository ? await checkSnapshot(plan, beat, counted, warnings) : await checkDirectory(plan, plan.backupDir, beat, counted, warnings);
        return await record({ ok: true, ...checked });
      } catch (e) {
        await record({ ok: false, code: codeOf(e), message: messageOf(e), warnings, ...counted });
        throw e;
      } finally {
        beat.stop();
      }
    },
  };
}
