/**
 * What the workers add to Worker.create so that logs and metrics see every activity and workflow
 * without the activities or workflows doing anything:
 *
 * - an activity interceptor: times each attempt and its queue lag, reads bytes and guest pause
 *   from its result, logs a failed attempt (warn, with its code) or a completed one (debug), and
 *   puts `vm`, `leafDn` (from the arguments) and `node` on every activity log line;
 * - for the control worker, the workflow interceptor module (workflows/interceptors.ts) and the
 *   `outcomes` sink it reports each backup, restore and delete end to.
 */
import { performance } from 'node:perf_hooks';
import { CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory, InjectedSinks, WorkerOptions } from '@temporalio/worker';
import { codeOf, messageOf } from '../core/failures.js';
import { subjectOf, type LogSubject } from '../core/log-subject.js';
import type { OperationOutcome } from '../core/operation-outcome.js';
import type { OutcomeSinks } from '../workflows/interceptors.js';
import type { WorkerMetrics } from './metrics.js';
import { WORKFLOW_INTERCEPTOR_MODULES, workflowSource } from './workflow-bundle.js';

export function observeActivities(metrics: WorkerMetrics, o: { phases: boolean; node?: string }): ActivityInterceptorsFactory {
  return (ctx) => {
    const subject: LogSubject & { node?: string } = o.node ? { node: o.node } : {};
    return {
      inbound: {
        async execute(input, next) {
          Object.assign(subject, subjectOf(input.args));
          const info = ctx.info;
          metrics.activityStarted(info.taskQueue, Date.now() - info.currentAttemptScheduledTimestampMs);
          // the monotonic clock: a step of a few ms must not read as 0 or go negative when NTP steps
          const started = performance.now();
          const end = { taskQueue: info.taskQueue, activityType: info.activityType, ...(info.workflowType ? { workflowType: info.workflowType } : {}) };
          const stopped = o.phases ? metrics.phaseStarted(info.workflowType, info.activityType) : undefined;
          try {
            const result = await next(input);
            const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
            metrics.activityEnded({ ...end, outcome: 'success', durationMs, result }, o);
            ctx.log.debug('activity completed', { durationMs });
            return result;
          } catch (error) {
            const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
            const cancelled = error instanceof CancelledFailure || ctx.cancellationSignal.aborted;
            metrics.activityEnded({ ...end, outcome: cancelled ? 'cancelled' : 'failure', durationMs, error }, o);
            ctx.log.warn(cancelled ? 'activity cancelled' : 'activity attempt failed', { code: codeOf(error), error: messageOf(error), durationMs });
            throw error;
          } finally {
            stopped?.();
          }
        },
      },
      outbound: {
        getLogAttributes: (attributes, next) => next({ ...attributes, ...subject }),
      },
    };
  };
}

/** `onOutcome` also hears each end (backup-freshness.ts re-reads that VM's backups). */
export function outcomeSinks(metrics: WorkerMetrics, onOutcome?: (o: OperationOutcome) => void): InjectedSinks<OutcomeSinks> {
  // not during replay: an outcome is counted when the workflow ends, not again when a worker replays it
  const fn = (_info: unknown, outcome: OperationOutcome) => {
    metrics.operationEnded(outcome);
    onOutcome?.(outcome);
  };
  return { outcomes: { record: { fn, callDuringReplay: false } } };
}

/** What the node and control workers add to their Worker.create options. */
export type WorkerObservation = Pick<WorkerOptions, 'interceptors' | 'sinks'>;

export function nodeWorkerObservation(metrics: WorkerMetrics, node: string): WorkerObservation {
  return { interceptors: { activity: [observeActivities(metrics, { phases: true, node })] } };
}

export function controlWorkerObservation(metrics: WorkerMetrics, onOutcome?: (o: OperationOutcome) => void): WorkerObservation {
  // a prebuilt bundle already contains the interceptor modules (and the SDK warns if they are given again)
  const bundled = 'workflowBundle' in workflowSource();
  return {
    interceptors: {
      activity: [observeActivities(metrics, { phases: false })],
      ...(bundled ? {} : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES }),
    },
    sinks: outcomeSinks(metrics, onOutcome),
  };
}
