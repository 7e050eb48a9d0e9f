/**
 * The failure notification of one workflow run (core/notification.ts), sent through every channel
 * the control worker was configured with ([Mail], [Notify] WEBHOOK_URL; adapters/notify/).
 *
 * Idempotent per workflow run (docs/architecture.md, "Notifications"): the workflow schedules this
 * activity once, under the fixed activity ID `notify-failure`, and Temporal's history keeps it from
 * running again on replay. Within the activity each channel that accepted the notice is recorded
 * at once as heartbeat details; a failed attempt reports the last details with its failure, so the
 * retry finds them in `heartbeatDetails` and sends only through the channels still missing. A
 * failed channel makes the attempt fail (retryable) after the others were tried.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { FailureNotice } from '../../core/notification.js';
import type { ControlDeps } from './deps.js';

/** What the heartbeat details (and the result) say was sent. */
export interface NotifyProgress {
  sent: string[];
}

export function createNotifyActivities(deps: ControlDeps) {
  return {
    /** Sends `notice` through each channel not yet recorded; the channels sent by this attempt and those before. */
    async notifyFailure(notice: FailureNotice): Promise<{ sent: string[]; sentBefore: string[] }> {
      const ctx = Context.current();
      const before = (ctx.info.heartbeatDetails as NotifyProgress | undefined)?.sent ?? [];
      const sent = new Set(before);
      const errors: string[] = [];
      for (const channel of deps.notifier?.channels ?? []) {
        if (sent.has(channel.name)) {
          ctx.log.info('failure notification already sent by an earlier attempt', { channel: channel.name, workflowId: notice.workflowId });
          continue;
        }
        try {
          await channel.send(notice);
          sent.add(channel.name);
          ctx.heartbeat({ sent: [...sent] } satisfies NotifyProgress);
          ctx.log.info('failure notification sent', { channel: channel.name, workflowId: notice.workflowId, code: notice.code });
        } catch (e) {
          errors.push(`${channel.name}: ${(e as Error).message}`);
        }
      }
      if (errors.length) throw ApplicationFailure.retryable(`failure notification not sent: ${errors.join('; ')}`, 'NotificationFailed');
      return { sent: [...sent].filter((c) => !before.includes(c)), sentBefore: before };
    },
  };
}
