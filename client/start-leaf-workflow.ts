/**
 * How the CLI starts a workflow for a backup leaf: on the site's control queue, with the workflow ID
 * derived from the leaf (a run already going for it is followed, not duplicated), and the search
 * attributes the UI filters on from the start.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { parseValidLeafDn, workflowIdForLeaf, type Operation } from '../core/naming.js';
import { SA } from '../core/search-attributes.js';
import type { CliContext } from './cli-context.js';

export async function startLeafWorkflow(
  ctx: CliContext,
  o: { workflow: 'backupWorkflow' | 'restoreWorkflow' | 'verifyWorkflow'; operation: Operation; leafDn: string; args: object; summary: string },
): Promise<WorkflowHandle> {
  const leaf = parseValidLeafDn(o.leafDn);
  const client = await ctx.temporal();
  return client.workflow.start(o.workflow, {
    taskQueue: ctx.config.temporal.controlTaskQueue,
    workflowId: workflowIdForLeaf(leaf, o.operation),
    args: [o.args],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [
      { key: SA.vm, value: leaf.vm },
      { key: SA.operation, value: o.operation },
      { key: SA.leaf, value: o.leafDn },
    ],
    staticSummary: `${o.summary} (kvm-backup CLI)`,
  });
}
