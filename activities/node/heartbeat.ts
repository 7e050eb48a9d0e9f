/**
 * Heartbeats for long activities: details are kept current by the work and sent on a timer (the SDK
 * throttles anyway), so a blocked child process never starves the heartbeat and a retry after a worker
 * crash finds the last progress in `activityInfo().heartbeatDetails`.
 */
import { activityInfo, Context, heartbeat } from '@temporalio/activity';

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
  const previous = activityInfo().heartbeatDetails as T | undefined;
  heartbeat(details);
  const timer = setInterval(() => heartbeat(details), everyMs);
  return {
    previous,
    set: (d) => {
      details = d;
    },
    signal: Context.current().cancellationSignal,
    stop: () => clearInterval(timer),
  };
}
