/**
 * `kvm-backup list [<vm>]`: the backups of one VM or of all, with time, state, size and whether they
 * were verified (from the iteration directory where this host can see it).
 */
import { Files } from '../../adapters/host/files.js';
import { ledgerPath, LEDGERS, suffixedIterationFiles, type VerifyRecord } from '../../core/layout.js';
import { parseLeafTimestamp } from '../../core/naming.js';
import { backupContext, iterationDir } from '../backup-context.js';
import type { CliContext } from '../cli-context.js';
import { resolveVm } from '../vm-ref.js';

export interface ListedBackup {
  vm: string;
  backup: string;
  time: string;
  mode?: string;
  returnValue?: number;
  directory?: string;
  bytes?: number;
  manifest?: boolean;
  verified?: string;
}

async function describeDir(dir: string | undefined, vm: string, ou: string): Promise<Pick<ListedBackup, 'bytes' | 'manifest' | 'verified'>> {
  if (!dir) return {};
  const fs = new Files();
  if (!(await fs.exists(dir))) return {};
  const files = await fs.list(dir);
  let bytes = 0;
  for (const f of files) bytes += await fs.allocatedBytes(`${dir}/${f}`).catch(() => 0);
  const record = files.includes(LEDGERS.verified) ? await fs.readJson<VerifyRecord | undefined>(ledgerPath(dir, 'verified'), undefined) : undefined;
  const verified = record ? (record.ok ? `ok ${record.at.slice(0, 19)}Z` : `FAILED (${record.code}) ${record.at.slice(0, 19)}Z`) : 'not verified';
  return { bytes, manifest: files.includes(suffixedIterationFiles(vm, ou).manifest), verified };
}

export async function listCommand(ctx: CliContext, vmArg?: string): Promise<number> {
  const vms = vmArg
    ? [(await resolveVm(ctx, vmArg)).vm]
    : (await ctx.directory.vms()).map((v) => v.vm).sort();
  const rows: ListedBackup[] = [];
  for (const vm of vms) {
    for (const leaf of await ctx.directory.leavesOf(vm)) {
      const context = await backupContext(ctx, vm, leaf.ou).catch(() => undefined);
      const dir = context ? iterationDir(ctx, context) : undefined;
      rows.push({
        vm,
        backup: leaf.ou,
        time: parseLeafTimestamp(leaf.ou)!.toISOString(),
        ...(leaf.mode ? { mode: leaf.mode } : {}),
        ...(leaf.returnValue !== undefined ? { returnValue: leaf.returnValue } : {}),
        ...(dir ? { directory: dir } : {}),
        ...(await describeDir(dir, vm, leaf.ou)),
      });
    }
  }
  const mib = (b?: number) => (b === undefined ? '?' : `${(b / 2 ** 20).toFixed(1)} MiB`);
  const human = rows.length
    ? [
        ['VM', 'BACKUP', 'STATE', 'RV', 'SIZE', 'MANIFEST', 'VERIFIED'].join('\t'),
        ...rows.map((r) => [r.vm, r.backup, r.mode ?? '?', r.returnValue ?? '?', mib(r.bytes), r.manifest === undefined ? '?' : r.manifest ? 'sha256' : 'none', r.verified ?? '?'].join('\t')),
      ].join('\n')
    : vmArg
      ? `no backups of ${vms[0]}`
      : 'no backups';
  ctx.print(human, rows);
  return 0;
}
