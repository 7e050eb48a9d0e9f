/**
 * Failure e-mails through nodemailer over SMTP with STARTTLS required (or TLS from the start, [Mail]
 * SSL = ssl), authenticated with [Mail] USERNAME and the password Secret. One connection per mail:
 * failures are rare, and nothing stays open between them. The Message-ID derives from the workflow
 * run (core/notification.ts), so a duplicate from a retried send can be recognised.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { ConfigError } from '../../core/config-error.js';
import { Code } from '../../core/exit-codes.js';
import { mailText, type FailureNotice, type NotificationChannel } from '../../core/notification.js';
import type { MailSettings } from '../../core/notify-settings.js';

/** The PEM files (*.pem, *.crt) of [Mail] CA_DIR; ConfigError 2 when the directory cannot be read. */
function caCertificates(dir: string): Buffer[] {
  try {
    return readdirSync(dir)
      .filter((f) => /\.(pem|crt)$/.test(f))
      .sort()
      .map((f) => readFileSync(join(dir, f)));
  } catch (e) {
    throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `cannot read [Mail] CA_DIR ${dir}: ${(e as Error).message}`);
  }
}

export function mailChannel(settings: MailSettings, o: { uiUrl?: string } = {}): NotificationChannel {
  const domain = settings.from.slice(settings.from.indexOf('@') + 1);
  return {
    name: 'mail',
    async send(notice: FailureNotice): Promise<void> {
      const ca = settings.caDir ? caCertificates(settings.caDir) : undefined;
      const transport = nodemailer.createTransport({
        host: settings.host,
        port: settings.port,
        secure: settings.security === 'ssl',
        // STARTTLS or nothing: the password never crosses the wire in clear
        requireTLS: settings.security === 'starttls',
        ...(settings.username ? { auth: { user: settings.username, ...(settings.password ? { pass: settings.password.reveal() } : {}) } } : {}),
        authMethod: settings.authMethod,
        tls: { ...(ca?.length ? { ca } : {}), minVersion: 'TLSv1.2' },
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 30_000,
        logger: false,
        debug: false,
      });
      try {
        const { subject, text } = mailText(notice, o.uiUrl);
        await transport.sendMail({
          from: { name: settings.fromName, address: settings.from },
          to: settings.sendTo,
          subject,
          text,
          messageId: `<failure.${notice.runId}@${domain}>`,
          headers: { 'X-Kvm-Backup-Workflow-Id': notice.workflowId, 'X-Kvm-Backup-Exit-Code': String(notice.code) },
        });
      } finally {
        transport.close();
      }
    },
  };
}
