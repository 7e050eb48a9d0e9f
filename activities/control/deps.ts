/** What the control worker's activities are built from (injected). */
import type { StoneyDirectoryModel } from '../../core/directory-model.js';
import type { NotificationChannel } from '../../core/notification.js';

export interface ControlDeps {
  /** The stoney cloud directory; the bind password stays inside its LDAP client. */
  directory: StoneyDirectoryModel;
  /** Where failure notifications go ([Mail], [Notify]); none configured: nothing is sent. */
  notifier?: { channels: NotificationChannel[] };
  /** Backups one node runs at once ([Backup] MAX_CONCURRENT_BACKUPS; default 2, 0 = no limit). */
  maxConcurrentBackups?: number;
}
