/**
 * Which finished iterations of a VM are kept (docs/configuration.md#retention). One pure decision
 * over the finished iterations' leaf ous (UTC timestamps), so every layout that stores iterations
 * keeps the same ones: the one-go rotation of the plain backup root (iteration directories), the
 * scheduler's retention (finished leaves), and any other layout (a restic repository, say) that
 * hands over the timestamps of its finished iterations.
 *
 * Rules, restic's `forget --keep-*` as the model: keep-last N (sstBackupNumberOfIterations, at
 * least 1, as the original never deleted its last backup) plus the newest iteration of each of the
 * last D UTC days, W ISO weeks and M UTC months that have an iteration (sstBackupKeepDaily, …Weekly,
 * …Monthly; 0 = the rule is off). An iteration is kept if any rule keeps it. Periods without an
 * iteration use up no slot, so old iterations are never lost by time passing alone, and no clock
 * is needed (the node, the control worker and a workflow replay decide alike). Unlike restic, the
 * oldest iteration is not kept in addition while a rule has slots left.
 */
import type { BackupConfiguration } from './backup-config.js';
import { parseLeafTimestamp } from './naming.js';

/** The rules of one VM; counts, 0 = the rule is off (`last` is raised to 1). */
export interface RetentionPolicy {
  /** sstBackupNumberOfIterations: the newest N finished iterations. */
  last: number;
  /** sstBackupKeepDaily: the newest iteration of each of the last D UTC days with one. */
  daily: number;
  /** sstBackupKeepWeekly: the newest of each of the last W ISO 8601 weeks (Monday to Sunday, UTC) with one. */
  weekly: number;
  /** sstBackupKeepMonthly: the newest of each of the last M UTC calendar months with one. */
  monthly: number;
}

export type RetentionRule = keyof RetentionPolicy;

export interface KeptIteration {
  ou: string;
  /** The rules that keep it, in the order last, daily, weekly, monthly. */
  rules: RetentionRule[];
}

export interface RetentionDecision {
  /** Kept iterations, newest first. */
  keep: KeptIteration[];
  /** Iterations to delete, oldest first (the order they are deleted in). */
  forget: string[];
}

/** The policy of an effective backup configuration (core/backup-config.ts). */
export function retentionPolicy(config: Pick<BackupConfiguration, 'iterations' | 'keepDaily' | 'keepWeekly' | 'keepMonthly'>): RetentionPolicy {
  return { last: config.iterations, daily: config.keepDaily, weekly: config.keepWeekly, monthly: config.keepMonthly };
}

/** Keep-last only: today's rule, and what a bare `sstBackupNumberOfIterations` means. */
export function keepLast(n: number): RetentionPolicy {
  return { last: n, daily: 0, weekly: 0, monthly: 0 };
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** ISO 8601 week of a UTC instant, as `YYYY-Www` (the week-numbering year can differ from the calendar year). */
export function isoWeek(at: Date): string {
  const d = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  const weekday = d.getUTCDay() || 7; // Monday 1 … Sunday 7
  d.setUTCDate(d.getUTCDate() + 4 - weekday); // the Thursday of this week decides the year
  const year = d.getUTCFullYear();
  const week = Math.floor((d.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 / 7) + 1;
  return `${year}-W${pad(week)}`;
}

/** The period of each calendar rule an instant falls in; equal strings = the same period. */
const PERIOD: Record<Exclude<RetentionRule, 'last'>, (at: Date) => string> = {
  daily: (at) => at.toISOString().slice(0, 10),
  weekly: isoWeek,
  monthly: (at) => at.toISOString().slice(0, 7),
};

/**
 * The decision for the finished iterations `finishedOus` (leaf ous, any order; duplicates count
 * once; anything that is not a valid UTC timestamp is left alone: neither kept nor forgotten).
 */
export function decideRetention(finishedOus: readonly string[], policy: RetentionPolicy): RetentionDecision {
  const newestFirst = [...new Set(finishedOus)]
    .map((ou) => ({ ou, at: parseLeafTimestamp(ou) }))
    .filter((i): i is { ou: string; at: Date } => i.at !== undefined)
    .sort((a, b) => (a.ou < b.ou ? 1 : a.ou > b.ou ? -1 : 0));
  const slots: Record<RetentionRule, number> = {
    last: Math.max(1, policy.last), // the newest finished iteration is always kept
    daily: Math.max(0, policy.daily),
    weekly: Math.max(0, policy.weekly),
    monthly: Math.max(0, policy.monthly),
  };
  const lastPeriod: Partial<Record<RetentionRule, string>> = {};
  const keep: KeptIteration[] = [];
  const forget: string[] = [];
  for (const { ou, at } of newestFirst) {
    const rules: RetentionRule[] = [];
    if (slots.last > 0) {
      slots.last--;
      rules.push('last');
    }
    for (const rule of ['daily', 'weekly', 'monthly'] as const) {
      const period = PERIOD[rule](at);
      // newest first: the first iteration seen in a period is that period's newest
      if (slots[rule] > 0 && period !== lastPeriod[rule]) {
        lastPeriod[rule] = period;
        slots[rule]--;
        rules.push(rule);
      }
    }
    if (rules.length) keep.push({ ou, rules });
    else forget.unshift(ou);
  }
  return { keep, forget };
}

/**
 * The ous to delete, oldest first. `keep` is a policy, or a bare count for keep-last only (the
 * rule before the calendar rules existed, and what workflows started before them pass).
 */
export function iterationsBeyond(finishedOus: readonly string[], keep: number | RetentionPolicy): string[] {
  return decideRetention(finishedOus, typeof keep === 'number' ? keepLast(keep) : keep).forget;
}

/** One line for logs and activity summaries, e.g. `the newest 3, one a day for 7 days, one a week for 4 weeks`. */
export function describeRetention(keep: number | RetentionPolicy): string {
  const p = typeof keep === 'number' ? keepLast(keep) : keep;
  const parts = [`the newest ${Math.max(1, p.last)}`];
  if (p.daily > 0) parts.push(`one a day for ${p.daily} day${p.daily === 1 ? '' : 's'}`);
  if (p.weekly > 0) parts.push(`one a week for ${p.weekly} week${p.weekly === 1 ? '' : 's'}`);
  if (p.monthly > 0) parts.push(`one a month for ${p.monthly} month${p.monthly === 1 ? '' : 's'}`);
  return parts.join(', ');
}
