/** The notification channels the configuration asks for (core/notify-settings.ts): mail, webhook, both or none. */
import type { NotificationChannel } from '../../core/notification.js';
import type { NotifySettings } from '../../core/notify-settings.js';
import { mailChannel } from './mail.js';
import { webhookChannel } from './webhook.js';

export function notificationChannels(settings: NotifySettings, o: { uiUrl?: string } = {}): NotificationChannel[] {
  return [...(settings.mail ? [mailChannel(settings.mail, o)] : []), ...(settings.webhookUrl ? [webhookChannel(settings.webhookUrl, o)] : [])];
}
