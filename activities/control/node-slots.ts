/**
 * The activity side of the per-node backup slots (workflows/node-slots.ts): a workflow cannot
 * signal-with-start another workflow, so this activity does it for the requesting backup, through
 * the worker's own Temporal client, and adds how many slots this site's nodes have ([Backup]
 * MAX_CONCURRENT_BACKUPS of the control worker's INI, docs/configuration.md).
 */
import { Context } from '@temporalio/activity';
import { workflowRunIsOpen } from '../../adapters/temporal/vm-lock-state.js';
import { DEFAULT_MAX_CONCURRENT_BACKUPS } from '../../core/global-config.js';
import { nodeSlotsWorkflowId } from '../../core/naming.js';
import { NODE_SLOT_SIGNALS, NODE_SLOTS_WORKFLOW, type NodeSlotRequest } from '../../core/node-slots.js';
import type { ControlDeps } from './deps.js';

export function createNodeSlotActivities(deps: ControlDeps) {
  const slots = deps.maxConcurrentBackups ?? DEFAULT_MAX_CONCURRENT_BACKUPS;
  return {
    /**
     * Puts `request` in the line of `node`'s backup slots, starting the slots workflow if none runs.
     * Returns the slots per node; 0 (no limit configured) requests nothing, and the backup runs at once.
     */
    async requestNodeSlot(input: { node: string; request: Omit<NodeSlotRequest, 'slots'> }): Promise<{ slots: number }> {
      if (slots === 0) return { slots };
      const { client, info } = Context.current();
      await client.workflow.signalWithStart(NODE_SLOTS_WORKFLOW, {
        workflowId: nodeSlotsWorkflowId(input.node),
        // the slots live on the queue of the workflows that use them (this activity runs on it)
        taskQueue: info.taskQueue,
        args: [{ node: input.node }],
        signal: NODE_SLOT_SIGNALS.acquire,
        signalArgs: [{ ...input.request, slots } satisfies NodeSlotRequest],
      });
      return { slots };
    },

    /**
     * The semaphore's liveness check: does the holder's run still run? (describe, so the holder's
     * history gets no event; the semaphore runs it as a local activity). Errors: Temporal's, unclassified.
     */
    async nodeSlotHolderRunning(holder: Pick<NodeSlotRequest, 'workflowId' | 'runId'>): Promise<boolean> {
      return workflowRunIsOpen(Context.current().client, holder.workflowId, holder.runId);
    },
  };
}
