/**
 * Failure notifications (docs/configuration.md, "[Mail] and [Notify]"): what a failed backup,
 * restore, deletion or scheduled run reports, and how it reads as an e-mail and as a webhook's JSON.
 * Pure: the workflow builds the notice from its own facts (search attributes, workflow info), the
 * control activity sends it through the channels of adapters/notify/.
 *
 * Idempotency (docs/architecture.md, "Notifications"): one notice per workflow run, keyed by
 * `workflowId` and `runId`; the mail's Message-ID and the webhook's Idempotency-Key derive from them,
 * so a receiver can drop the duplicate of the one case a retry cannot rule out (a worker killed
 * between a send and recording it).
 */
import { exitCode } from './exit-codes.js';

export interface FailureNotice {
  /** backup, restore, delete, scheduled-backup (the workflow's KvmOperation). */
  operation: string;
  vm?: string;
  /** The VM's node (sstNode), when the workflow got that far. */
  node?: string;
  /** DN of the backup leaf, when the operation has one. */
  leaf?: string;
  /** Pool of a scheduled run. */
  pool?: string;
  /** Exit code (core/exit-codes.ts) and its name. */
  code: number;
  name: string;
  message: string;
  namespace: string;
  workflowId: string;
  runId: string;
  workflowType: string;
  /** ISO 8601 time of the failure (the workflow's clock). */
  at: string;
}

/** The link to the workflow run in the Temporal Web UI, when [Temporal] UI_URL is set. */
export function workflowUiLink(uiUrl: string | undefined, n: Pick<FailureNotice, 'namespace' | 'workflowId' | 'runId'>): string | undefined {
  if (!uiUrl) return undefined;
  return `${uiUrl}/namespaces/${encodeURIComponent(n.namespace)}/workflows/${encodeURIComponent(n.workflowId)}/${encodeURIComponent(n.runId)}/history`;
}

/** The key receivers deduplicate on: one per workflow run. */
export function idempotencyKey(n: Pick<FailureNotice, 'workflowId' | 'runId'>): string {
  return `${n.workflowId}/${n.runId}`;
}

/** The name of an exit code, UNDEFINED_ERROR for an unknown number. */
export function codeName(code: number): string {
  return exitCode(code)?.name ?? 'UNDEFINED_ERROR';
}

/** The webhook's JSON body. */
export function webhookBody(n: FailureNotice, uiUrl?: string) {
  const link = workflowUiLink(uiUrl, n);
  return {
    event: 'kvm-backup.failure',
    id: idempotencyKey(n),
    operation: n.operation,
    vm: n.vm ?? null,
    node: n.node ?? null,
    leaf: n.leaf ?? null,
    ...(n.pool ? { pool: n.pool } : {}),
    code: n.code,
    name: n.name,
    message: n.message,
    namespace: n.namespace,
    workflowId: n.workflowId,
    runId: n.runId,
    workflowType: n.workflowType,
    at: n.at,
    link: link ?? null,
  };
}

/** Subject and plain-text body of the e-mail. */
export function mailText(n: FailureNotice, uiUrl?: string): { subject: string; text: string } {
  const what = n.vm ? `${n.operation} of ${n.vm}` : n.pool ? `${n.operation} of pool ${n.pool}` : n.operation;
  const link = workflowUiLink(uiUrl, n);
  const lines: Array<[string, string | undefined]> = [
    ['VM', n.vm],
    ['node', n.node],
    ['pool', n.pool],
    ['leaf', n.leaf],
    ['exit code', `${n.code} ${n.name}`],
    ['message', n.message],
    ['workflow', `${n.workflowId} (run ${n.runId}, ${n.workflowType}, namespace ${n.namespace})`],
    ['failed at', n.at],
    ['Temporal UI', link],
  ];
  return {
    subject: `kvm-backup: ${what} failed: ${n.name} (${n.code})`,
    text: `${what} failed.\n\n${lines.filter(([, v]) => v !== undefined).map(([k, v]) => `${k.padEnd(12)} ${v}`).join('\n')}\n`,
  };
}

/**
 * One way a notice leaves (e-mail, webhook), built by adapters/notify/ from the configuration.
 * `send` throws when the notice was not accepted (SMTP refused, HTTP status not 2xx, timeout).
 */
export interface NotificationChannel {
  readonly name: string;
  send(notice: FailureNotice): Promise<void>;
}
