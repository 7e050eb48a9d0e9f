/**
 * When each VM was last backed up successfully, read from the directory, which outlives every
 * worker (docs/observability.md, "Last successful backup"). Pure: the control worker feeds it the
 * directory's bulk read and serves the result as the gauges
 * `kvm_backup_last_success_timestamp_seconds` and `kvm_backup_last_success_age_seconds`.
 *
 * A complete backup is a leaf whose backup answered success (docs/ldap-protocol.md): `finished` or
 * `retained` with return value 0 (the end of a one-go or scheduled backup; the last step of a step-by-
 * step one, before fc-brokerd writes `finished`), or any restore step's mode, which only a complete
 * backup reaches (a failed restore step does not undo the backup). Its time is the one its ou names
 * (UTC, the backup's point in time).
 */
import { resolveBackupConfiguration } from './backup-config.js';
import type { DirectorySnapshot, LeafSummary } from './directory-model.js';
import { parseLeafTimestamp } from './naming.js';
import { FINISHED, STEP_MODES } from './provisioning.js';

const SUCCESS_ANSWERS = new Set<string>([FINISHED, STEP_MODES.retain[1]]);
const RESTORE_MODES = new Set<string>(
  (['unretainSmallFiles', 'unretainLargeFiles', 'restore', 'cleanup'] as const).flatMap((s) => [s, ...STEP_MODES[s]]).filter((m) => m !== FINISHED),
);

/** Whether the leaf stands for a complete backup (see the module comment). */
export function isCompleteBackup(leaf: Pick<LeafSummary, 'mode' | 'returnValue' | 'ou'>): boolean {
  if (!leaf.mode || !parseLeafTimestamp(leaf.ou)) return false;
  if (SUCCESS_ANSWERS.has(leaf.mode)) return (leaf.returnValue ?? 0) === 0;
  return RESTORE_MODES.has(leaf.mode);
}

/** The time of the newest complete backup among `leaves`, or undefined. */
export function newestCompleteBackup(leaves: Iterable<Pick<LeafSummary, 'mode' | 'returnValue' | 'ou'>>): Date | undefined {
  let newest: Date | undefined;
  for (const l of leaves) {
    if (!isCompleteBackup(l)) continue;
    const at = parseLeafTimestamp(l.ou)!;
    if (!newest || at > newest) newest = at;
  }
  return newest;
}

/** An LDAP GeneralizedTime such as createTimestamp (`20260301115900Z`, optionally with fractions), or undefined. */
export function parseGeneralizedTime(text: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:[.,]\d+)?Z$/.exec(text ?? '');
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** One VM's series: its labels and the two instants the gauges are made of. */
export interface VmFreshness {
  vm: string;
  /** sstNode, '' if the VM has none. */
  node: string;
  /** sstVirtualMachinePool, '' if none. */
  pool: string;
  /** The newest complete backup's time; undefined: none in the directory. */
  lastSuccess?: Date;
  /** When the VM entry was created (its createTimestamp): the age's start while it has no backup. */
  created?: Date;
}

/** A backup leaf with its VM, as the bulk read returns it. */
export type VmLeaf = LeafSummary & { vm: string };

/**
 * Every VM that should have backups: all VMs of the snapshot but those whose effective configuration
 * sets sstBackupExcludeFromBackup (a VM whose configuration cannot be resolved stays: its backups fail,
 * and the alert is right), with its newest complete backup among `leaves`.
 */
export function freshnessOf(snapshot: DirectorySnapshot, leaves: readonly VmLeaf[]): Map<string, VmFreshness> {
  const byVm = new Map<string, VmLeaf[]>();
  for (const l of leaves) byVm.set(l.vm, [...(byVm.get(l.vm) ?? []), l]);
  const result = new Map<string, VmFreshness>();
  for (const r of snapshot.vms) {
    try {
      const resolved = resolveBackupConfiguration({ vm: r.vmConfig, pool: r.pool ? snapshot.poolConfigs.get(r.pool) ?? [] : [], cloud: snapshot.cloud });
      if (resolved.config.excludeFromBackup) continue;
    } catch {
      // no or an ambiguous configuration: kept (see above)
    }
    const lastSuccess = newestCompleteBackup(byVm.get(r.vm) ?? []);
    const created = parseGeneralizedTime(r.createTimestamp);
    result.set(r.vm, { vm: r.vm, node: r.node ?? '', pool: r.pool ?? '', ...(lastSuccess ? { lastSuccess } : {}), ...(created ? { created } : {}) });
  }
  return result;
}

/**
 * The age in seconds at `now`: since the last complete backup, or, with none, since the VM entry
 * was created; undefined when neither is known (no series then).
 */
export function ageSeconds(f: Pick<VmFreshness, 'lastSuccess' | 'created'>, now: Date): number | undefined {
  const since = f.lastSuccess ?? f.created;
  return since ? Math.max(0, (now.getTime() - since.getTime()) / 1000) : undefined;
}
