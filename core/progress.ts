/**
 * Progress of a long step (a copy, a block commit, a verification), as the node activities report
 * it: in their heartbeat details (for resume) and, every few seconds, as a signal to their workflow,
 * whose `progress` query then answers bytes done, total and rate.
 */
export const PROGRESS_SIGNAL = 'copyProgress';

export interface ProgressReport {
  /** The activity reporting (copyToRetain, exportBackup, mergeBack, unretainLargeFiles, verifyBackup). */
  activity: string;
  /** The file being copied, or `block commit of vda`. */
  file?: string;
  bytes: number;
  total: number;
  /** MiB/s since the previous report. */
  rateMiB?: number;
  /** Epoch ms of the report. */
  at: number;
}

/** The shapes our heartbeat details take: `{ current: { name, bytes, total } }` or a block job `{ disk, cur, end }`. */
export function progressFromDetails(details: unknown): Pick<ProgressReport, 'file' | 'bytes' | 'total'> | undefined {
  const d = details as { current?: { name: string; bytes: number; total: number }; cur?: number; end?: number; disk?: string } | undefined;
  if (d?.current && d.current.total > 0) return { file: d.current.name, bytes: d.current.bytes, total: d.current.total };
  if (d?.end) return { file: `block commit of ${d.disk ?? '?'}`, bytes: d.cur ?? 0, total: d.end };
  return undefined;
}
