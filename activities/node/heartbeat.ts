/**
 * Heartbeats of the node's activities. Every node activity heartbeats while it runs (`keepAlive`,
 * wrapped around each in index.ts), so a node worker that dies in any step, short or long, is noticed
 * at the step's heartbeat timeout and the step is retried on the worker's restart
 * (docs/architecture.md, "Crashes"). Long steps also put their resume state in the details
 * (`startHeartbeat`), with the progress report (bytes, total, rate; core/progress.ts) added: Temporal
 * keeps the last details on the pending activity, where the CLI, `status` and the UI read them, so
 * progress costs no history event. A retry after a crash finds the last details in
 * `activityInfo().heartbeatDetails`.
 */
import { Context } from '@temporalio/activity';
import { ProgressMeter } from '../../core/progress.js';

export interface Beat<T> {
  /** Details of the previous attempt (undefined on the first). */
  readonly previous: T | undefined;
  /** Replace the details the next heartbeat sends. */
  set(details: T): void;
  readonly signal: AbortSignal;
  stop(): void;
}

/** How often the details are handed to the SDK, which sends them at most every throttle interval (node-worker.ts). */
const BEAT_EVERY_MS = 1_000;

/** The details each running activity's heartbeats carry now, shared by keepAlive and startHeartbeat. */
const current = new WeakMap<Context, { details: unknown }>();

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/**
 * `fn` heartbeating while it runs, with the step's latest details (at first those of the previous
 * attempt, so a crash before the step sets its own keeps them for the next). Outside an activity
 * (plain unit tests) it is `fn`.
 */
export function keepAlive<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    const ctx = activityContext();
    if (!ctx) return fn(...args);
    const state = { details: ctx.info.heartbeatDetails as unknown };
    current.set(ctx, state);
    ctx.heartbeat(state.details);
    const timer = setInterval(() => ctx.heartbeat(state.details), BEAT_EVERY_MS);
    try {
      return await fn(...args);
    } finally {
      clearInterval(timer);
      current.delete(ctx);
    }
  };
}

/** Heartbeats `initial` (then what `set` gives) with the progress report added; outside an activity it does nothing. */
export function startHeartbeat<T extends object>(initial: T): Beat<T> {
  const ctx = activityContext();
  if (!ctx) {
    return { previous: undefined, set: () => undefined, signal: new AbortController().signal, stop: () => undefined };
  }
  const previous = ctx.info.heartbeatDetails as T | undefined;
  const state = current.get(ctx) ?? { details: undefined };
  current.set(ctx, state);
  const meter = new ProgressMeter(ctx.info.activityType);
  let details: T = initial;
  const beat = () => {
    const progress = meter.report(details, Date.now());
    state.details = progress ? { ...details, progress } : details;
    ctx.heartbeat(state.details);
  };
  beat();
  const timer = setInterval(beat, BEAT_EVERY_MS);
  return {
    previous,
    set: (d) => {
      details = d;
    },
    signal: ctx.cancellationSignal,
    stop: () => {
      clearInterval(timer);
      beat();
    },
  };
}
