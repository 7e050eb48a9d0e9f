/**
 * `kvm-backup list [<vm>]`: the backups of one VM or of all, with time, state, size and whether they
 * were verified (from the iteration directory where this host can see it).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { value } from '../../core/ldap-entry.js';
import { parseLeafTimestamp } from '../../core/naming.js';
import { backupContext, iterationDir } from '../backup-context.js';
import type { CliContext } from '../cli-context.js';
import { leavesOf, resolveVm } from '../vm-ref.js';
import { VERIFIED_FILE, type VerifyRecord } from '../../activities/node/restore/verify.js';

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

async function describeDir(dir: string | undefined, ou: string): Promise<Pick<ListedBackup, 'bytes' | 'manifest' | 'verified'>> {
  if (!dir) return {};
  const files = await readdir(dir).catch(() => undefined);
  if (!files) return {};
  let bytes = 0;
  for (const f of files) bytes += (await stat(`${dir}/${f}`).catch(() => undefined))?.blocks ?? 0;
  const record = files.includes(VERIFIED_FILE) ? (JSON.parse(await readFile(`${dir}/${VERIFIED_FILE}`, 'utf8')) as VerifyRecord) : undefined;
  const verified = record ? (record.ok ? `ok ${record.at.slice(0, 19)}Z` : `FAILED (${record.code}) ${record.at.slice(0, 19)}Z`) : 'not verified';
  return { bytes: bytes * 512, manifest: files.includes(`SHA256SUMS.${ou}`), verified };
}

export async function listCommand(ctx: CliContext, vmArg?: string): Promise<number> {
  const vms = vmArg
    ? [(await resolveVm(ctx, vmArg)).vm]
    : (await ctx.directory.search(`ou=virtual machines,${ctx.config.database.serviceSubtree}`, '(objectClass=sstVirtualizationVirtualMachine)', 'one'))
        .map((e) => value(e, 'sstVirtualMachine')!)
        .filter(Boolean)
        .sort();
  const rows: ListedBackup[] = [];
  for (const vm of vms) {
    for (const leaf of await leavesOf(ctx, vm)) {
      const context = await backupContext(ctx, vm, leaf.ou).catch(() => undefined);
      const dir = context ? iterationDir(ctx, context) : undefined;
      rows.push({
        vm,
        backup: leaf.ou,
        time: parseLeafTimestamp(leaf.ou)!.toISOString(),
        ...(leaf.mode ? { mode: leaf.mode } : {}),
        ...(leaf.returnValue !== undefined ? { returnValue: leaf.returnValue } : {}),
        ...(dir ? { directory: dir } : {}),
        ...(await describeDir(dir, leaf.ou)),
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
