/**
 * Exit codes as Temporal failures, and the retry policies that follow the code table.
 * Pure: used by activities (to throw), workflows (to read the code back) and clients.
 */
import { ApplicationFailure, type RetryPolicy } from '@temporalio/common';
import { Code, exitCode, exitCodeByName, NON_RETRYABLE_NAMES } from './exit-codes.js';
import { causeOfError, errorText, type Cause } from './failure-causes.js';
import { gatewayProblemIn, isPermanentGatewayProblem, type GatewayProblem } from './gateway.js';

export interface FailureDetails {
  /** The exit code number, as written to sstProvisioningReturnValue. */
  code: number;
  /** The cause of the error underneath, when the caller passed one (FailureOptions.cause). */
  cause?: Cause;
  /** The SSH gateway's problem, when the step failed because of it (core/gateway.ts). */
  gateway?: GatewayProblem;
  [key: string]: unknown;
}

export interface FailureOptions {
  /**
   * The error underneath (a CommandError with its stderr, any Error, or the text itself). Its cause
   * (core/failure-causes.ts) is recorded in the details; a permanent one makes the failure
   * non-retryable even under a retryable code, a transient or unknown one leaves the code's flag.
   * It is read, not attached: the failure's message stays the caller's.
   */
  cause?: unknown;
  /** The caller knows the failure will repeat (the VM is not in the state the backup needs): not retried. */
  permanent?: boolean;
}

/**
 * The failure for an exit code: type = the code's name, the number first in details, nonRetryable
 * from the table, or forced by a permanent `options.cause` (docs/exit-codes.md, "Retried or not: by
 * cause"). Unknown numbers become UNDEFINED_ERROR (raw libvirt codes never leak).
 */
export function failure(code: number, message: string, extra: Record<string, unknown> = {}, options: FailureOptions = {}): ApplicationFailure {
  // the SSH gateway's failures keep their meaning through any step that wraps them (core/gateway.ts):
  // a refused key is configuration (39, never retried), a lost connection is transient
  const gateway = gatewayProblemIn(`${message}\n${options.cause === undefined ? '' : errorText(options.cause)}`);
  const permanentGateway = gateway !== undefined && isPermanentGatewayProblem(gateway);
  let entry = (permanentGateway ? exitCode(Code.UNSUPPORTED_CONFIGURATION_PARAMETER) : exitCode(code)) ?? exitCode(Code.UNDEFINED_ERROR)!;
  // a transient gateway problem is retried even where the step's own code is not (chown: 19)
  if (gateway && !permanentGateway && !entry.retryable) entry = exitCode(Code.UNDEFINED_ERROR)!;
  const cause = options.permanent || permanentGateway ? 'permanent' : gateway ? 'transient' : options.cause !== undefined ? causeOfError(options.cause) : undefined;
  const details: FailureDetails = { ...extra, ...(cause ? { cause } : {}), ...(gateway ? { gateway } : {}), code: entry.code };
  return ApplicationFailure.create({
    type: entry.name,
    // a message that already names its code (rethrown from an activity) is not prefixed twice
    message: message.startsWith(`${entry.name} (`) ? message : `${entry.name} (${entry.code}): ${message}`,
    nonRetryable: !entry.retryable || cause === 'permanent',
    details: [details],
  });
}

/**
 * The exit code carried by an error or any of its causes (ActivityFailure → ApplicationFailure,
 * ChildWorkflowFailure → …). Anything without one is UNDEFINED_ERROR.
 */
export function codeOf(error: unknown): number {
  for (let e: unknown = error, depth = 0; e && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ApplicationFailure) {
      const detail = e.details?.[0] as Partial<FailureDetails> | undefined;
      if (detail && typeof detail.code === 'number' && exitCode(detail.code)) return detail.code;
      const byType = e.type ? exitCodeByName(e.type) : undefined;
      if (byType) return byType.code;
    }
  }
  return Code.UNDEFINED_ERROR;
}

/** The message of the innermost failure, for LDAP-free logs and CLI output. */
export function messageOf(error: unknown): string {
  let last = error instanceof Error ? error.message : String(error);
  for (let e: unknown = error, depth = 0; e && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof Error && e.message) last = e.message;
  }
  return last;
}

/** Ordinary steps: a few quick retries, never for the codes that need an operator. */
export const STEP_RETRY: RetryPolicy = {
  initialInterval: '2s',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 5,
  nonRetryableErrorTypes: [...NON_RETRYABLE_NAMES],
};

/** Long copies and block jobs: they resume from heartbeats, so they may retry for longer. */
export const LONG_STEP_RETRY: RetryPolicy = {
  ...STEP_RETRY,
  maximumInterval: '2 minutes',
  maximumAttempts: 10,
};

/**
 * Compensation (put the VM back on its own images, resume it): must not give up, whatever the code,
 * because giving up leaves a VM paused or on an overlay.
 */
export const COMPENSATION_RETRY: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  // no maximumAttempts: unlimited
};

/**
 * Failure notifications: a few quick retries (about a minute in all) so that a mail server or
 * webhook that is briefly away still gets the notice, without holding back the failure's result long.
 */
export const NOTIFY_RETRY: RetryPolicy = {
  initialInterval: '2s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  maximumAttempts: 5,
};

/** LDAP writes of the control worker: the directory may restart; keep trying with backoff. */
export const DIRECTORY_RETRY: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  maximumAttempts: 20,
  nonRetryableErrorTypes: [...NON_RETRYABLE_NAMES],
};
