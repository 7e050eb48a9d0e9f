/**
 * `verify`: the checks of a restore, run in place on a stored iteration without changing anything
 * (each file hashed against the manifest, every image through `qemu-img check`, the state file read
 * by libvirt). The result is kept beside the files (`.verified.json`) so `list` can show it.
 */
import { Code } from '../../../core/exit-codes.js';
import { codeOf, failure, messageOf } from '../../../core/failures.js';
import { ledgerPath, type VerifyRecord } from '../../../core/layout.js';
import { restoreImages, type RestorePlan } from '../../../core/restore-plan.js';
import type { NodeDeps } from '../deps.js';
import { startHeartbeat } from '../heartbeat.js';
import { backedUpDisks, checkChecksums, checkImages, checkStateFile, firmwareFiles, imageFormats, readFacts, type Verified } from './checks.js';

export type { VerifyRecord };

export function createVerify(deps: NodeDeps) {
  const fs = deps.files;
  return {
    async verifyBackup(plan: RestorePlan): Promise<VerifyRecord> {
      const dir = plan.backupDir;
      const warnings: string[] = [];
      const record = async (r: Omit<VerifyRecord, 'at'>) => {
        const full = { at: new Date().toISOString(), ...r };
        await fs.writeJson(ledgerPath(dir, 'verified'), full).catch(() => undefined);
        return full;
      };
      const beat = startHeartbeat({ phase: 'verify', current: { name: '', bytes: 0, total: 0 } });
      let bytes = 0;
      let files = 0;
      try {
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
          bytes += size;
          files++;
        }
        const verified = await checkChecksums(fs, plan, dir, hashes, required, warnings);
        await checkImages(deps.images, dir, set, imageFormats(disks, facts, plan.imageFormat), warnings);
        await checkStateFile(fs, deps.virsh, `${dir}/${plan.files.state}`, plan.files.state);
        return await record({ ok: true, verified, warnings, files, bytes });
      } catch (e) {
        await record({ ok: false, code: codeOf(e), message: messageOf(e), warnings, files, bytes });
        throw e;
      } finally {
        beat.stop();
      }
    },
  };
}
