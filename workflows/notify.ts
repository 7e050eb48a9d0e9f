/**
 * The failure path's notification (docs/architecture.md, "Notifications"): every leaf workflow that
 * fails (workflows/leaf-protocol.ts `fail()`) and a scheduled run that fails on its own call this
 * once, after the code is on the leaf and before the workflow fails with it. The notice is built
 * from the workflow's own facts (its search attributes KvmOperation, KvmVm, KvmNode, KvmPool, its
 * info), never from configuration, so no secret reaches the history. A notification that cannot be
 * sent is logged; the workflow's failure and code stay what they were.
 *
 * `patched`: histories recorded before this step existed replay without it.
 */
import { CancellationScope, log, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control/index.js';
import { messageOf, NOTIFY_RETRY } from '../core/failures.js';
import { codeName, type FailureNotice } from '../core/notification.js';
import { SA } from '../core/search-attributes.js';
import { WORKFLOW_PATCHES } from '../core/workflow-patches.js';

export const NOTIFY_PATCH = WORKFLOW_PATCHES.failureNotification.id;

/** One activity per workflow run, under a fixed ID: the history keeps it from being scheduled twice. */
const notifier = proxyActivities<ControlActivities>({ activityId: 'notify-failure', startToCloseTimeout: '2 minutes', retry: NOTIFY_RETRY });

export async function notifyFailure(f: { code: number; message: string; leaf?: string }): Promise<void> {
  if (!patched(NOTIFY_PATCH)) return;
  const info = workflowInfo();
  const sa = info.typedSearchAttributes;
  const vm = sa.get(SA.vm);
  const node = sa.get(SA.node);
  const pool = sa.get(SA.pool);
  const leaf = f.leaf ?? sa.get(SA.leaf);
  const notice: FailureNotice = {
    operation: sa.get(SA.operation) ?? info.workflowType,
    ...(vm ? { vm } : {}),
    ...(node ? { node } : {}),
    ...(leaf ? { leaf } : {}),
    ...(pool ? { pool } : {}),
    code: f.code,
    name: codeName(f.code),
    message: f.message,
    namespace: info.namespace,
    workflowId: info.workflowId,
    runId: info.runId,
    workflowType: info.workflowType,
    at: new Date().toISOString(),
  };
  try {
    // also when the workflow is being cancelled: the failure it ends with is still reported
    await CancellationScope.nonCancellable(() => notifier.notifyFailure(notice));
  } catch (e) {
    log.warn('failure notification not sent', { error: messageOf(e), code: f.code });
  }
}
