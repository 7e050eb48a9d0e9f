/**
 * Follows a running backup or restore for the operator: its phase (the workflow's progress query)
 * and, while a copy runs, bytes, total and rate from the copy activity's last heartbeat (Temporal's
 * describe, so progress costs no history events). One updating line on a terminal, one line per
 * phase otherwise.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { progressFromDetails } from '../core/progress.js';

export interface CopyProgress {
  phase: string;
  bytes?: number;
  total?: number;
  /** MiB/s over the last sample. */
  rateMiB?: number;
  /** Name of the file being copied. */
  file?: string;
}

/** The progress of the running copy (or block job), from the pending activities' latest heartbeats. */
export async function copyProgress(handle: WorkflowHandle): Promise<Omit<CopyProgress, 'phase' | 'rateMiB'> | undefined> {
  const desc = await handle.describe();
  for (const a of desc.raw.pendingActivities ?? []) {
    const payload = a.heartbeatDetails?.payloads?.[0];
    const p = payload ? progressFromDetails(defaultPayloadConverter.fromPayload(payload as never)) : undefined;
    if (p) return p;
  }
  return undefined;
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
  let last: { at: number; bytes: number; file?: string } | undefined;
  while (!done) {
    const progress = (await handle.query<Record<string, unknown>>(queryName).catch(() => undefined)) ?? {};
    await options.onProgress?.(progress);
    const phase = String(progress['phase'] ?? 'starting');
    // the workflow's own report (every few seconds, with its rate), else the latest heartbeat
    const reported = progress['copy'] as { file?: string; bytes: number; total: number; rateMiB?: number } | undefined;
    const copy = reported ?? (await copyProgress(handle).catch(() => undefined));
    const p: CopyProgress = { phase, ...(copy ?? {}) };
    if (reported?.rateMiB !== undefined) p.rateMiB = reported.rateMiB;
    else if (copy?.bytes !== undefined && last && last.file === copy.file && copy.bytes >= last.bytes) {
      p.rateMiB = (copy.bytes - last.bytes) / 2 ** 20 / ((Date.now() - last.at) / 1000);
    }
    if (copy?.bytes !== undefined) last = { at: Date.now(), bytes: copy.bytes, ...(copy.file ? { file: copy.file } : {}) };
    if (tty) process.stdout.write(`\r\x1b[2K${renderProgress(p)}`);
    else if (!options.quiet && phase !== lastPhase) console.log(phase);
    lastPhase = phase;
    await Promise.race([result.catch(() => undefined), sleep(500)]);
  }
  if (tty) process.stdout.write('\r\x1b[2K');
  return result;
}
