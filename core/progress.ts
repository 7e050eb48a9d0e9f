/**
 * Progress of a long step (a copy, a block commit, a verification), as the node activities report
 * it: in their heartbeat details, which Temporal keeps on the pending activity (never in the
 * history). The CLI's `follow`, `status` and the Temporal UI read it from there (describe), so a copy
 * that runs for hours adds no history event for its progress.
 */

export interface ProgressReport {
  /** The activity reporting (copyToRetain, exportBackup, mergeBack, unretainLargeFiles, verifyBackup). */
  activity: string;
  /** The file being copied, or `block commit of vda`. */
  file?: string;
  bytes: number;
  total: number;
  /** MiB/s over the last few seconds of this file. */
  rateMiB?: number;
  /** Epoch ms of the report. */
  at: number;
}

/** The heartbeat details of a node activity: its own resume state, with `progress` added by the heartbeat. */
export interface DetailsWithProgress {
  progress?: ProgressReport;
  [key: string]: unknown;
}

/** The shapes our heartbeat details take: `{ current: { name, bytes, total } }` or a block job `{ disk, cur, end }`. */
export function progressFromDetails(details: unknown): Pick<ProgressReport, 'file' | 'bytes' | 'total'> | undefined {
  const d = details as { current?: { name: string; bytes: number; total: number }; cur?: number; end?: number; disk?: string } | undefined;
  if (d?.current && d.current.total > 0) return { file: d.current.name, bytes: d.current.bytes, total: d.current.total };
  if (d?.end) return { file: `block commit of ${d.disk ?? '?'}`, bytes: d.cur ?? 0, total: d.end };
  return undefined;
}

/**
 * The progress a pending activity's last heartbeat details carry: the report with its rate, or
 * (details of a node worker of an earlier version) bytes and total alone. Undefined when there is none.
 */
export function progressOfDetails(details: unknown): (Pick<ProgressReport, 'file' | 'bytes' | 'total'> & Partial<ProgressReport>) | undefined {
  const reported = (details as DetailsWithProgress | undefined)?.progress;
  if (reported && typeof reported.bytes === 'number' && reported.total > 0) return reported;
  return progressFromDetails(details);
}

/** What the heartbeat adds to a step's details: the report, its rate measured over `windowMs` or more of the same file. */
export class ProgressMeter {
  private sample: { file?: string; bytes: number; at: number } | undefined;
  private rateMiB: number | undefined;

  constructor(
    private readonly activity: string,
    private readonly windowMs = 3_000,
  ) {}

  report(details: unknown, now: number): ProgressReport | undefined {
    const p = progressFromDetails(details);
    if (!p) return undefined;
    const s = this.sample;
    if (!s || s.file !== p.file || p.bytes < s.bytes) {
      this.sample = { ...(p.file ? { file: p.file } : {}), bytes: p.bytes, at: now };
      this.rateMiB = undefined;
    } else if (now - s.at >= this.windowMs) {
      this.rateMiB = Math.round(((p.bytes - s.bytes) / 2 ** 20 / ((now - s.at) / 1000)) * 10) / 10;
      this.sample = { ...(p.file ? { file: p.file } : {}), bytes: p.bytes, at: now };
    }
    return { activity: this.activity, ...p, ...(this.rateMiB !== undefined ? { rateMiB: this.rateMiB } : {}), at: now };
  }
}
