/**
 * Failure notices as a JSON POST to [Notify] WEBHOOK_URL (core/notification.ts, webhookBody), with
 * an Idempotency-Key header per workflow run. A status other than 2xx, or no answer within 10 s,
 * is a failed send. Messages name the URL without its query (which may hold a token).
 */
import { idempotencyKey, webhookBody, type FailureNotice, type NotificationChannel } from '../../core/notification.js';

export function webhookChannel(url: string, o: { uiUrl?: string; timeoutMs?: number } = {}): NotificationChannel {
  const shown = (() => {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  })();
  return {
    name: 'webhook',
    async send(notice: FailureNotice): Promise<void> {
      let status: number;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey(notice), 'user-agent': 'kvm-backup' },
          body: JSON.stringify(webhookBody(notice, o.uiUrl)),
          signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
          redirect: 'error',
        });
        status = res.status;
        await res.body?.cancel();
      } catch (e) {
        throw new Error(`webhook ${shown}: ${(e as Error).message}`);
      }
      if (status < 200 || status > 299) throw new Error(`webhook ${shown} answered HTTP ${status}`);
    },
  };
}
