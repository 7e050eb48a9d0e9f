/**
 * `kvm-backup status [--limit N]`: the running and recent backups, restores, verifications and
 * deletions of this site (its control task queue), newest first, with phase, progress and rate for
 * the running ones (from the copy's heartbeat details: client/follow.ts), a step being retried
 * (attempt and why), the node a running one waits for (KvmWaitingFor: its worker has not picked up
 * a step or a compensation for a while), and the exit code of the ended ones.
 */
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { SA } from '../../core/search-attributes.js';
import type { CliContext } from '../cli-context.js';
import { progressOfDescription, renderProgress, retriedSteps } from '../follow.js';

export interface StatusRow {
  workflowId: string;
  operation?: string;
  vm?: string;
  status: string;
  phase?: string;
  code?: number;
  started: string;
  ended?: string;
  seconds: number;
  progress?: string;
  /** The node whose worker has not picked up this workflow's step or compensation yet (KvmWaitingFor). */
  waitingFor?: string;
  /** A node step being retried: `mergeBack attempt 2 (last: activity Heartbeat timeout)`. */
  retrying?: string;
}

function row(info: WorkflowExecutionInfo): StatusRow {
  const sa = info.typedSearchAttributes;
  const ended = info.closeTime;
  const operation = sa.get(SA.operation);
  const vm = sa.get(SA.vm);
  const phase = sa.get(SA.phase);
  const code = sa.get(SA.exitCode);
  const waitingFor = info.status.name === 'RUNNING' ? sa.get(SA.waitingFor) : undefined;
  return {
    workflowId: info.workflowId,
    ...(operation ? { operation } : {}),
    ...(vm ? { vm } : {}),
    status: info.status.name,
    ...(phase ? { phase } : {}),
    ...(code !== undefined ? { code } : {}),
    ...(waitingFor ? { waitingFor } : {}),
    started: info.startTime.toISOString(),
    ...(ended ? { ended: ended.toISOString() } : {}),
    seconds: Math.round(((ended ?? new Date()).getTime() - info.startTime.getTime()) / 1000),
  };
}

/** The PHASE / PROGRESS cell: progress or phase, the node waited for, a step being retried. */
function stateText(r: StatusRow): string {
  const parts = [r.progress ?? r.phase ?? ''];
  if (r.waitingFor && !parts[0]!.includes(`waiting for node ${r.waitingFor}`)) parts.push(`waiting for node ${r.waitingFor}`);
  if (r.retrying) parts.push(`retrying ${r.retrying}`);
  return parts.filter(Boolean).join('; ');
}

export async function statusCommand(ctx: CliContext, o: { limit: number }): Promise<number> {
  const client = await ctx.temporal();
  const queue = ctx.config.temporal.controlTaskQueue;
  const query = `TaskQueue = '${queue.replace(/'/g, '')}' AND KvmOperation IN ('backup', 'restore', 'verify', 'delete')`;
  const rows: StatusRow[] = [];
  for await (const info of client.workflow.list({ query })) {
    rows.push(row(info));
    if (info.status.name === 'RUNNING') {
      const handle = client.workflow.getHandle(info.workflowId, info.runId);
      const phase = ((await handle.query<{ phase?: string }>('progress').catch(() => undefined))?.phase) ?? rows.at(-1)!.phase ?? '?';
      const desc = await handle.describe().catch(() => undefined);
      const copy = desc ? progressOfDescription(desc) : undefined;
      const r = rows.at(-1)!;
      r.phase = phase;
      if (copy?.total) r.progress = renderProgress({ phase, ...copy });
      const retried = desc ? retriedSteps(desc)[0] : undefined;
      if (retried) r.retrying = `${retried.activity} attempt ${retried.attempt}${retried.lastFailure ? ` (last: ${retried.lastFailure})` : ''}`;
    }
  }
  rows.sort((a, b) => b.started.localeCompare(a.started));
  const shown = rows.slice(0, o.limit);
  const human = shown.length
    ? [
        ['STARTED', 'OPERATION', 'VM', 'STATUS', 'PHASE / PROGRESS', 'CODE', 'SECONDS', 'WORKFLOW'].join('\t'),
        ...shown.map((r) => [r.started.slice(0, 19), r.operation ?? '?', r.vm ?? '?', r.status, stateText(r), r.code ?? '', r.seconds, r.workflowId].join('\t')),
      ].join('\n')
    : `nothing has run on ${queue} yet`;
  ctx.print(human, shown);
  return 0;
}
