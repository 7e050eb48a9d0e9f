/**
 * Follows a running backup or restore for the operator: its phase (the workflow's progress query)
 * and, while a copy runs, bytes, total and rate from the copy activity's last heartbeat details
 * (Temporal's describe, so progress costs no history events; core/progress.ts). One updating line
 * on a terminal, one line per phase otherwise.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { progressOfDetails } from '../core/progress.js';

export interface CopyProgress {
  phase: string;
  bytes?: number;
  total?: number;
  /** MiB/s over the last few seconds (measured by the node). */
  rateMiB?: number;
  /** Name of the file being copied. */
  file?: string;
  /** The activity copying (copyToRetain, exportBackup, mergeBack, unretainLargeFiles, verifyBackup). */
  activity?: string;
}

/**
 * The progress of the running copy (or block job): bytes, total, rate, file, from the pending
 * activities' latest heartbeat details (Temporal's describe: no history event, no query).
 */
export type RunningCopy = Omit<CopyProgress, 'phase' | 'bytes' | 'total'> & { bytes: number; total: number };

export async function copyProgress(handle: WorkflowHandle): Promise<RunningCopy | undefined> {
  return progressOfDescription(await handle.describe());
}

/** copyProgress of a description already read. */
export function progressOfDescription(desc: WorkflowExecutionDescription): RunningCopy | undefined {
  for (const a of desc.raw.pendingActivities ?? []) {
    const payload = a.heartbeatDetails?.payloads?.[0];
    const p = payload ? progressOfDetails(defaultPayloadConverter.fromPayload(payload as never)) : undefined;
    if (p) {
      const { at: _, ...rest } = p;
      return { ...rest, ...(p.activity === undefined && a.activityType?.name ? { activity: a.activityType.name } : {}) };
    }
  }
  return undefined;
}

/** A node step that is being retried: which, the attempt now due, why the last one ended, whether a worker has it. */
export interface RetriedStep {
  activity: string;
  attempt: number;
  started: boolean;
  lastFailure?: string;
}

/** temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED: a worker runs the attempt. */
const PENDING_ACTIVITY_STATE_STARTED = 2;

/** The pending activities past their first attempt (a crashed worker, a failed try), for `status`. */
export function retriedSteps(desc: WorkflowExecutionDescription): RetriedStep[] {
  return (desc.raw.pendingActivities ?? [])
    .filter((a) => (a.attempt ?? 1) > 1)
    .map((a) => ({
      activity: a.activityType?.name ?? '?',
      attempt: a.attempt ?? 1,
      started: Number(a.state) === PENDING_ACTIVITY_STATE_STARTED,
      ...(a.lastFailure?.message ? { lastFailure: a.lastFailure.message } : {}),
    }));
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);

export function renderProgress(p: CopyProgress): string {
  if (p.bytes === undefined || !p.total) return p.phase;
  const pct = Math.min(100, Math.floor((p.bytes / p.total) * 100));
  const bar = '#'.repeat(Math.round(pct / 5)).padEnd(20, '.');
  const rate = p.rateMiB !== undefined ? ` ${p.rateMiB.toFixed(0)} MiB/s` : '';
  return `${p.phase}: [${bar}] ${pct}% ${mib(p.bytes)}/${mib(p.total)} MiB${rate}${p.file ? ` ${p.file}` : ''}`;
}

/**
 * Polls until the workflow ends; `onPhase` may act on a phase (the restore's confirmation question).
 * Returns the workflow's result, or throws its failure.
 */
export async function follow<R>(
  handle: WorkflowHandle,
  queryName: string,
  options: { quiet?: boolean; onProgress?: (progress: Record<string, unknown>) => Promise<void> } = {},
): Promise<R> {
  const tty = process.stdout.isTTY && !options.quiet;
  let done = false;
  const result = handle.result().finally(() => (done = true)) as Promise<R>;
  let lastPhase = '';
  while (!done) {
    const progress = (await handle.query<Record<string, unknown>>(queryName).catch(() => undefined)) ?? {};
    await options.onProgress?.(progress);
    const phase = String(progress['phase'] ?? 'starting');
    const copy = tty ? await copyProgress(handle).catch(() => undefined) : undefined;
    const p: CopyProgress = { phase, ...(copy ?? {}) };
    if (tty) process.stdout.write(`\r\x1b[2K${renderProgress(p)}`);
    else if (!options.quiet && phase !== lastPhase) console.log(phase);
    lastPhase = phase;
    await Promise.race([result.catch(() => undefined), sleep(500)]);
  }
  if (tty) process.stdout.write('\r\x1b[2K');
  return result;
}
