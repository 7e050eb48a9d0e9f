/**
 * The first two restore steps (docs/restore.md), both before anything on the live VM
 * changes:
 * - locate the iteration in the backup root (35 for a URI that is not file://, 37 if it is not there);
 * - unretainSmallFiles: the domain XML and the LDIF to the retain directory;
 * - unretainLargeFiles: the state file and the images too, then every check: completeness (37), the
 *   manifest's sha256 of every file (38; a backup of the original daemon has none: said as a warning),
 *   `qemu-img check` by its exit code (38), a readable state file (44) and XML (45).
 */
import type { BackupContext } from '../../../core/backup-plan.js';
import { backedUpDisks } from './checks.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { ledgerPath, type BackupFacts } from '../../../core/layout.js';
import { restoreImages, restorePlan, type RestoreImage, type RestorePlan } from '../../../core/restore-plan.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat } from '../heartbeat.js';
import { locateIteration } from '../locate-iteration.js';
import { repositoryFailure } from '../repository.js';
import { checkChecksums, checkImages, checkStateFile, firmwareFiles, imageFormats, readFacts, type Verified } from './checks.js';

export interface UnretainedLarge {
  images: RestoreImage[];
  /** 'saved' = a libvirt save image; 'marker' = the VM was not running at backup time. */
  stateKind: 'saved' | 'marker';
  /** How the files were verified: against the manifest, or (old backups) only by completeness and qemu-img check. */
  verified: Verified;
  warnings: string[];
  bytes: number;
  resumedBytes: number;
  /** Time spent copying the large files. */
  copyMs: number;
  /** What the backup found (run state, persistence, formats, firmware files); absent in older iterations. */
  facts?: BackupFacts;
}

interface UnretainProgress {
  phase: 'unretain';
  hashes: Record<string, string>;
  current?: { name: string; bytes: number; total: number };
}

export function createUnretain(deps: NodeDeps) {
  const { files, images, virsh } = deps;

  /**
   * `restic restore` of some of the snapshot's files into the retain directory: the files of a
   * plain iteration, under the same names (docs/repository.md). Errors by restic's answer, else 7.
   */
  async function fromRepository(plan: RestorePlan, names: string[], o: { signal?: AbortSignal; onProgress?: (name: string, bytes: number, total: number) => void } = {}): Promise<number> {
    try {
      const r = await deps.restic.restore(plan.repository!, plan.snapshot!, plan.retainDir, {
        files: names,
        ...(o.signal ? { signal: o.signal } : {}),
        onProgress: (s) => o.onProgress?.(s.file ?? names[0] ?? '', s.bytes, s.total),
      });
      return r.bytes;
    } catch (e) {
      throw repositoryFailure(e, Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `restic restore of ${names.join(', ')} from ${plan.repository!.uri} snapshot ${plan.snapshot}`);
    }
  }

  return {
    /** `mustExist` false: a cleanup only needs the retain directory, even if the iteration is gone. */
    async locateBackup(ctx: BackupContext, withoutState?: boolean, mustExist = true): Promise<RestorePlan> {
      const { dirs, found, snapshots } = await locateIteration(deps, ctx, deps.virtualizationRoot, Code.UNSUPPORTED_FILE_TRANSFER_PROTOCOL);
      if (!found && mustExist) throw failure(Code.MISSING_NECESSARY_FILES, `no backup ${ctx.leaf.ou} of ${ctx.leaf.vm} ${dirs.repository ? 'in' : 'below'} ${dirs.backupRoot}`);
      return restorePlan(ctx, dirs, withoutState, snapshots[snapshots.length - 1]);
    },

    async unretainSmallFiles(plan: RestorePlan): Promise<{ warnings: string[] }> {
      const warnings: string[] = [];
      await files.makeDirectory(plan.retainDir, plan.directories);
      if (plan.repository) {
        // the manifest comes along: the checks read it from the retain directory
        await fromRepository(plan, [plan.files.xml, plan.files.ldif, plan.files.facts, plan.files.manifest]);
        for (const name of [plan.files.xml, plan.files.ldif, plan.files.facts, plan.files.manifest]) {
          const at = `${plan.retainDir}/${name}`;
          if (await files.exists(at)) await files.setOwnership(at, plan.images, 'file');
          else if (name === plan.files.xml) throw failure(Code.MISSING_NECESSARY_FILES, `${name} is not in snapshot ${plan.snapshot} of ${plan.repository.uri}`);
          else if (name === plan.files.ldif) warnings.push(`${name} is not in snapshot ${plan.snapshot}: the restore can go on, the directory entries cannot be compared`);
        }
        return { warnings };
      }
      // the facts file is this product's: iterations of the original daemon have none
      for (const [name, required] of [[plan.files.xml, true], [plan.files.ldif, false], [plan.files.facts, false]] as const) {
        const src = `${plan.backupDir}/${name}`;
        if (!(await files.exists(src))) {
          if (required) throw failure(Code.MISSING_NECESSARY_FILES, `${src} is missing`);
          if (name === plan.files.ldif) warnings.push(`${src} is missing: the restore can go on, the directory entries cannot be compared`);
          continue;
        }
        await deps.copy({ src, dst: `${plan.retainDir}/${name}` });
        await files.setOwnership(`${plan.retainDir}/${name}`, plan.images, 'file');
      }
      return { warnings };
    },

    async unretainLargeFiles(plan: RestorePlan): Promise<UnretainedLarge> {
      const warnings: string[] = [];
      const at = (dir: string, name: string) => `${dir}/${name}`;
      let xml: string;
      try {
        xml = await files.readText(at(plan.retainDir, plan.files.xml));
      } catch (e) {
        throw failure(Code.CANNOT_READ_XML_FILE, `cannot read the backed-up domain XML (run unretainSmallFiles first?): ${(e as Error).message}`, {}, { cause: e });
      }
      const disks = backedUpDisks(xml, plan.files.xml).filter((d) => d.device === 'disk');
      if (disks.length === 0 || disks.some((d) => d.type !== 'file' || !d.source.startsWith('/'))) {
        throw failure(Code.CANNOT_READ_XML_FILE, `${plan.files.xml} is not a domain XML with file disks`);
      }
      const facts = await readFacts(files, `${plan.retainDir}/${plan.files.facts}`, plan.files.facts);
      const restoreSet = restoreImages(plan, disks.map((d) => ({ target: d.target, path: d.source })));

      // copy the state file, the images and the firmware files (resumable, hashed while copied)
      const large = [plan.files.state, ...restoreSet.map((i) => i.file), ...firmwareFiles(facts, plan.ou)];
      for (const name of plan.repository ? [] : large) {
        if (!(await files.exists(at(plan.backupDir, name)))) throw failure(Code.MISSING_NECESSARY_FILES, `${at(plan.backupDir, name)} is missing`);
      }
      const beat = startHeartbeat<UnretainProgress>({ phase: 'unretain', hashes: {} });
      // files an earlier call unretained (the vm-manager's restore step follows unretainLargeFiles)
      const ledger = ledgerPath(plan.retainDir, 'unretained');
      const noted = await files.readJson<Record<string, string>>(ledger, {});
      const hashes: Record<string, string> = { ...noted, ...(beat.previous?.hashes ?? {}) };
      let bytes = 0;
      let resumedBytes = 0;
      const copyStarted = Date.now();
      try {
        const missing: string[] = [];
        for (const name of large) if (!hashes[name] || !(await files.exists(at(plan.retainDir, name)))) missing.push(name);
        if (plan.repository && missing.length) {
          // one restore of every missing file, then each hashed where the restore puts it back from
          bytes += await fromRepository(plan, missing, { signal: beat.signal, onProgress: (name, b, total) => beat.set({ phase: 'unretain', hashes, current: { name, bytes: b, total } }) });
          for (const name of missing) {
            if (!(await files.exists(at(plan.retainDir, name)))) throw failure(Code.MISSING_NECESSARY_FILES, `${name} is not in snapshot ${plan.snapshot} of ${plan.repository.uri}`);
            hashes[name] = await files.sha256(at(plan.retainDir, name));
            beat.set({ phase: 'unretain', hashes });
          }
        }
        for (const name of plan.repository ? [] : large) {
          if (hashes[name] && (await files.exists(at(plan.retainDir, name)))) continue;
          const resumeFrom = beat.previous?.current?.name === name ? beat.previous.current.bytes : 0;
          resumedBytes += resumeFrom;
          const r = await deps
            .copy({
              src: at(plan.backupDir, name),
              dst: at(plan.retainDir, name),
              resumeFrom,
              sha256: true,
              rateMiB: deps.copyRateMiB,
              signal: beat.signal,
              onProgress: (b, total) => beat.set({ phase: 'unretain', hashes, current: { name, bytes: b, total } }),
            })
            .catch((e) => {
              if (beat.signal.aborted) throw e;
              throw failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, `unretain ${name}: ${(e as Error).message}`, {}, { cause: e });
            });
          hashes[name] = r.sha256!;
          bytes += r.bytes;
          beat.set({ phase: 'unretain', hashes });
        }
      } finally {
        beat.stop();
      }
      await files.writeJson(ledger, hashes);
      const copyMs = Date.now() - copyStarted;

      // completeness, as the original checked it (every file there, not empty)
      for (const name of [plan.files.xml, ...large]) {
        if (!(await files.size(at(plan.retainDir, name)))) throw failure(Code.MISSING_NECESSARY_FILES, `${name} is missing or empty in ${plan.retainDir}`);
      }

      // checksums, images, state file
      for (const name of [plan.files.xml, plan.files.ldif, plan.files.facts]) {
        if (await files.exists(at(plan.retainDir, name))) hashes[name] = await files.sha256(at(plan.retainDir, name));
      }
      // a repository's manifest came with the small files into the retain directory
      const verified = await checkChecksums(files, plan, plan.repository ? plan.retainDir : plan.backupDir, hashes, [...large, ...(facts ? [plan.files.facts] : [])], warnings);
      await checkImages(images, plan.retainDir, restoreSet, imageFormats(disks, facts, plan.imageFormat), warnings);
      const stateKind = await checkStateFile(files, virsh, at(plan.retainDir, plan.files.state), plan.files.state);
      return { images: restoreSet, stateKind, verified, warnings, bytes, resumedBytes, copyMs, ...(facts ? { facts } : {}) };
    },
  };
}
