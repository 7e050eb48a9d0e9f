/**
 * Heartbeats for long activities: details are kept current by the work and sent on a timer (the SDK
 * throttles anyway), so a blocked child process never starves the heartbeat and a retry after a worker
 * crash finds the last progress in `activityInfo().heartbeatDetails`.
 */
import { activityInfo, Context, getClient, heartbeat } from '@temporalio/activity';
import { progressFromDetails, PROGRESS_SIGNAL, type ProgressReport } from '../../core/progress.js';

/** How often progress goes to the workflow as a signal (each one is a history event). */
const REPORT_EVERY_MS = 5_000;

export interface Beat<T> {
  /** Details of the previous attempt (undefined on the first). */
  readonly previous: T | undefined;
  /** Replace the details the next heartbeat sends. */
  set(details: T): void;
  readonly signal: AbortSignal;
  stop(): void;
}

function inActivity(): boolean {
  try {
    Context.current();
    return true;
  } catch {
    return false;
  }
}

/** Starts heartbeating `initial` every `everyMs`; outside an activity (plain unit tests) it does nothing. */
export function startHeartbeat<T>(initial: T, everyMs = 1_000): Beat<T> {
  if (!inActivity()) {
    return { previous: undefined, set: () => undefined, signal: new AbortController().signal, stop: () => undefined };
  }
  let details = initial;
  const info = activityInfo();
  const previous = info.heartbeatDetails as T | undefined;
  heartbeat(details);
  let last: ProgressReport | undefined;
  const report = () => {
    const p = progressFromDetails(details);
    const target = info.workflowExecution;
    if (!p || !target) return;
    const now = Date.now();
    if (last && now - last.at < REPORT_EVERY_MS && p.bytes < p.total) return;
    if (last && last.file === p.file && last.bytes === p.bytes) return;
    const rate = last && last.file === p.file && now > last.at ? (p.bytes - last.bytes) / 2 ** 20 / ((now - last.at) / 1000) : undefined;
    const r: ProgressReport = { activity: info.activityType, ...p, ...(rate !== undefined && rate >= 0 ? { rateMiB: Math.round(rate * 10) / 10 } : {}), at: now };
    last = r;
    // best effort: progress must never fail the work
    void getClient()
      .workflow.getHandle(target.workflowId, target.runId)
      .signal(PROGRESS_SIGNAL, r)
      .catch(() => undefined);
  };
  const timer = setInterval(() => {
    heartbeat(details);
    report();
  }, everyMs);
  return {
    previous,
    set: (d) => {
      details = d;
    },
    signal: Context.current().cancellationSignal,
    stop: () => {
      clearInterval(timer);
      report();
    },
  };
}
