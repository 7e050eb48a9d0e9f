/**
 * `kvm-backup list [<vm>]`: the backups of one VM or of all, with time, state, size and whether they
 * were verified: from the iteration directory where this host can see it, or, for a backup root that
 * is a restic repository, from the repository's snapshots (docs/repository.md), which also shows
 * snapshots whose leaf is gone.
 */
import { Files } from '../../adapters/host/files.js';
import { Restic } from '../../adapters/host/restic.js';
import type { BackupContext } from '../../core/backup-plan.js';
import type { ResticRepository } from '../../core/backup-root.js';
import { ledgerPath, LEDGERS, repositoryVerifyRecord, suffixedIterationFiles, type VerifyRecord } from '../../core/layout.js';
import { parseLeafTimestamp } from '../../core/naming.js';
import { tagValue, type ResticSnapshot } from '../../core/restic.js';
import { expectedBackupDir } from '../../core/restore-plan.js';
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
  /** Repository roots: the snapshot's ID and the bytes it added to the repository (compressed). */
  snapshot?: string;
  addedBytes?: number;
}

function verifiedText(record: VerifyRecord | undefined): string {
  return record ? (record.ok ? `ok ${record.at.slice(0, 19)}Z` : `FAILED (${record.code}) ${record.at.slice(0, 19)}Z`) : 'not verified';
}

async function describeDir(dir: string | undefined, vm: string, ou: string): Promise<Pick<ListedBackup, 'bytes' | 'manifest' | 'verified'>> {
  if (!dir) return {};
  const fs = new Files();
  if (!(await fs.exists(dir))) return {};
  const files = await fs.list(dir);
  let bytes = 0;
  for (const f of files) bytes += await fs.allocatedBytes(`${dir}/${f}`).catch(() => 0);
  const record = files.includes(LEDGERS.verified) ? await fs.readJson<VerifyRecord | undefined>(ledgerPath(dir, 'verified'), undefined) : undefined;
  return { bytes, manifest: files.includes(suffixedIterationFiles(vm, ou).manifest), verified: verifiedText(record) };
}

/** A snapshot as a row's facts: its size, what it added, the manifest it always holds, the last verify (kept below the retain root). */
async function describeSnapshot(s: ResticSnapshot, retainRoot: string, vm: string, ou: string): Promise<Pick<ListedBackup, 'bytes' | 'manifest' | 'verified' | 'snapshot' | 'addedBytes'>> {
  const record = await new Files().readJson<VerifyRecord | undefined>(repositoryVerifyRecord(retainRoot, vm, ou), undefined).catch(() => undefined);
  return {
    snapshot: s.short_id,
    ...(s.summary?.total_bytes_processed !== undefined ? { bytes: s.summary.total_bytes_processed } : {}),
    ...(s.summary?.data_added_packed !== undefined ? { addedBytes: s.summary.data_added_packed } : {}),
    manifest: true,
    verified: verifiedText(record),
  };
}

/** The VM's snapshots in the repository its configuration names (one call per VM), by ou. */
async function snapshotsOf(ctx: CliContext, repo: ResticRepository, vm: string): Promise<Map<string, ResticSnapshot>> {
  const restic = new Restic(ctx.config.backup.restic);
  const out = new Map<string, ResticSnapshot>();
  for (const s of await restic.snapshots(repo, [`vm=${vm}`])) {
    const ou = tagValue(s.tags, 'ou');
    if (ou && tagValue(s.tags, 'vm') === vm) out.set(ou, s);
  }
  return out;
}

export async function listCommand(ctx: CliContext, vmArg?: string): Promise<number> {
  const vms = vmArg
    ? [(await resolveVm(ctx, vmArg)).vm]
    : (await ctx.directory.vms()).map((v) => v.vm).sort();
  const rows: ListedBackup[] = [];
  for (const vm of vms) {
    let repository: { repo: ResticRepository; retainRoot: string; snapshots: Map<string, ResticSnapshot> } | undefined;
    for (const leaf of await ctx.directory.leavesOf(vm)) {
      const context: BackupContext | undefined = await backupContext(ctx, vm, leaf.ou).catch(() => undefined);
      const dirs = context ? (() => { try { return expectedBackupDir(context, ctx.config.backup.virtualizationRoot); } catch { return undefined; } })() : undefined;
      if (dirs?.repository && !repository) {
        repository = { repo: dirs.repository, retainRoot: dirs.retainRoot, snapshots: await snapshotsOf(ctx, dirs.repository, vm) };
      }
      const snapshot = dirs?.repository ? repository?.snapshots.get(leaf.ou) : undefined;
      const dir = context && !dirs?.repository ? iterationDir(ctx, context) : undefined;
      rows.push({
        vm,
        backup: leaf.ou,
        time: parseLeafTimestamp(leaf.ou)!.toISOString(),
        ...(leaf.mode ? { mode: leaf.mode } : {}),
        ...(leaf.returnValue !== undefined ? { returnValue: leaf.returnValue } : {}),
        ...(dirs?.repository ? { directory: dirs.backupDir } : dir ? { directory: dir } : {}),
        ...(dirs?.repository ? (snapshot ? await describeSnapshot(snapshot, dirs.retainRoot, vm, leaf.ou) : {}) : await describeDir(dir, vm, leaf.ou)),
      });
      repository?.snapshots.delete(leaf.ou);
    }
    // snapshots whose leaf is gone are still backups (restorable once a leaf names them again)
    for (const [ou, s] of repository?.snapshots ?? []) {
      rows.push({ vm, backup: ou, time: s.time, mode: '(no leaf)', directory: `${repository!.repo.uri} vm=${vm} ou=${ou}`, ...(await describeSnapshot(s, repository!.retainRoot, vm, ou)) });
    }
    rows.sort((a, b) => (a.vm === b.vm ? a.backup.localeCompare(b.backup) : a.vm.localeCompare(b.vm)));
  }
  const mib = (b?: number) => (b === undefined ? '?' : `${(b / 2 ** 20).toFixed(1)} MiB`);
  const withSnapshots = rows.some((r) => r.snapshot);
  const human = rows.length
    ? [
        ['VM', 'BACKUP', 'STATE', 'RV', 'SIZE', 'MANIFEST', 'VERIFIED', ...(withSnapshots ? ['SNAPSHOT', 'ADDED'] : [])].join('\t'),
        ...rows.map((r) =>
          [
            r.vm, r.backup, r.mode ?? '?', r.returnValue ?? '?', mib(r.bytes), r.manifest === undefined ? '?' : r.manifest ? 'sha256' : 'none', r.verified ?? '?',
            ...(withSnapshots ? [r.snapshot ?? '-', r.addedBytes === undefined ? '-' : mib(r.addedBytes)] : []),
          ].join('\t'),
        ),
      ].join('\n')
    : vmArg
      ? `no backups of ${vms[0]}`
      : 'no backups';
  ctx.print(human, rows);
  return 0;
}
