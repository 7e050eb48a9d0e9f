/**
 * Workflow interceptors, bundled beside the workflows (workers/temporal.ts WORKFLOW_INTERCEPTOR_MODULES):
 *
 * - every log line of a workflow carries the `vm` and `leafDn` its request names;
 * - the end of a backup, restore or delete is logged once (finished / failed with its code /
 *   cancelled) and reported through the `outcomes` sink, which the worker counts for Prometheus.
 *
 * Neither adds a command to the history: logs and sinks run outside it (and not during replay), so
 * the workflows stay as deterministic as they were and running histories replay unchanged.
 */
import {
  ContinueAsNew, isCancellation, log, proxySinks, workflowInfo,
  type Next, type Sinks, type WorkflowExecuteInput, type WorkflowInboundCallsInterceptor, type WorkflowInterceptorsFactory,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { codeOf, messageOf } from '../core/failures.js';
import { subjectOf, type LogSubject } from '../core/log-subject.js';
import { operationOfWorkflow, outcomeOfResult, type Operation, type OperationOutcome } from '../core/operation-outcome.js';

export interface OutcomeSinks extends Sinks {
  outcomes: { record(outcome: OperationOutcome): void };
}

const { outcomes } = proxySinks<OutcomeSinks>();

const VERB = { success: 'finished', failure: 'failed', cancelled: 'cancelled' } as const;

function report(o: OperationOutcome, error?: unknown): void {
  outcomes.record(o);
  const fields = { operation: o.operation, code: o.code, durationMs: o.durationMs, ...(error ? { error: messageOf(error) } : {}) };
  if (o.outcome === 'failure') log.error(`${o.operation} ${VERB[o.outcome]}`, fields);
  else log.info(`${o.operation} ${VERB[o.outcome]}`, fields);
}

class ObserveExecution implements WorkflowInboundCallsInterceptor {
  constructor(private readonly subject: LogSubject) {}

  private vm(): { vm?: string } {
    return this.subject.vm ? { vm: this.subject.vm } : {};
  }

  async execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    Object.assign(this.subject, subjectOf(input.args));
    const operation: Operation | undefined = operationOfWorkflow(workflowInfo().workflowType);
    if (!operation) return next(input);
    // workflow time: deterministic, and the same on every worker
    const since = () => Date.now() - workflowInfo().runStartTime.getTime();
    try {
      const result = await next(input);
      report({ operation, outcome: outcomeOfResult(result), code: 0, durationMs: since(), ...this.vm() });
      return result;
    } catch (e) {
      if (e instanceof ContinueAsNew) throw e;
      report({ operation, outcome: isCancellation(e) ? 'cancelled' : 'failure', code: codeOf(e), durationMs: since(), ...this.vm() }, e);
      throw e;
    }
  }
}

class LogContext implements WorkflowOutboundCallsInterceptor {
  constructor(private readonly subject: LogSubject) {}

  getLogAttributes(input: Record<string, unknown>, next: Next<WorkflowOutboundCallsInterceptor, 'getLogAttributes'>): Record<string, unknown> {
    return next({ ...input, ...this.subject });
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => {
  // one subject per workflow execution, shared by its inbound and outbound interceptor
  const subject: LogSubject = {};
  return { inbound: [new ObserveExecution(subject)], outbound: [new LogContext(subject)] };
};
