/**
 * `kvm-backup status [--limit N]`: the running and recent backups, restores, verifications and
 * deletions of this site (its control task queue), newest first, with phase, progress and rate for
 * the running ones, the node a running one waits for (KvmWaitingFor: its worker has not picked up
 * a step for a while), and the exit code of the ended ones.
 */
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { SA } from '../../core/search-attributes.js';
import type { CliContext } from '../cli-context.js';
import { copyProgress, renderProgress } from '../follow.js';

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
  /** The node whose worker has not picked up this workflow's step yet (KvmWaitingFor). */
  waitingFor?: string;
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

/** The PHASE / PROGRESS cell: progress or phase, and the node waited for. */
function stateText(r: StatusRow): string {
  const text = r.progress ?? r.phase ?? '';
  return r.waitingFor ? [text, `waiting for node ${r.waitingFor}`].filter(Boolean).join('; ') : text;
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
      const copy = await copyProgress(handle).catch(() => undefined);
      rows.at(-1)!.phase = phase;
      if (copy?.total) rows.at(-1)!.progress = renderProgress({ phase, ...copy });
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
