/**
 * Where failure notifications go (docs/configuration.md, "[Mail] and [Notify]"): the original
 * daemon's [Mail] section (SENDTO, HOST, PORT 587, USERNAME, PASSWORD, FROMNAME, CA_DIR, SSL
 * starttls, AUTH_METHOD LOGIN; WANTINFOMAIL is read and not used: only failures are mailed), plus
 * FROM, and [Notify] WEBHOOK_URL. The mail password is a Secret from KVM_BACKUP_MAIL_PASSWORD, a file
 * (PASSWORD_FILE, PASSWORD = file:/path) or inline, as the LDAP password. Pure.
 */
import { ConfigError } from './config-error.js';
import { Code } from './exit-codes.js';
import type { IniSections } from './ini.js';
import { secretSetting, type Secret } from './secret.js';

export type MailSecurity = 'starttls' | 'ssl';

export interface MailSettings {
  /** Recipients ([Mail] SENDTO, separated by commas or spaces). */
  sendTo: string[];
  host: string;
  /** Default 587 (submission with STARTTLS), 465 with SSL = ssl. */
  port: number;
  /** starttls (default; the connection must be upgraded, else nothing is sent) or ssl (TLS from the start). */
  security: MailSecurity;
  username?: string;
  password?: Secret;
  authMethod: 'LOGIN' | 'PLAIN';
  /** Sender address ([Mail] FROM; default USERNAME when it is an address, else kvm-backup@<ENVIRONMENT>). */
  from: string;
  /** Sender display name ([Mail] FROMNAME, default kvm-backup). */
  fromName: string;
  /** Directory of PEM CA certificates the SMTP server's certificate must chain to (default: the system's). */
  caDir?: string;
}

export interface NotifySettings {
  mail?: MailSettings;
  /** [Notify] WEBHOOK_URL: a JSON POST per failure. */
  webhookUrl?: string;
}

export const ENV_MAIL_PASSWORD = 'KVM_BACKUP_MAIL_PASSWORD';

const ADDRESS = /^[^\s@<>,;]+@[^\s@<>,;]+$/;

function invalid(message: string): ConfigError {
  return new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, message);
}

function parseMail(m: Record<string, string>, o: { env: Record<string, string | undefined>; readSecretFile: (path: string) => string; environment: string }): MailSettings | undefined {
  const sendTo = (m['SENDTO'] ?? '').split(/[\s,;]+/).filter(Boolean);
  if (sendTo.length === 0) return undefined;
  for (const a of sendTo) if (!ADDRESS.test(a)) throw invalid(`[Mail] SENDTO "${a}" is not an e-mail address`);
  const host = m['HOST'];
  if (!host) throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, '[Mail] HOST is missing (SENDTO is set)');
  const ssl = (m['SSL'] || 'starttls').toLowerCase();
  if (!['starttls', 'ssl', 'tls'].includes(ssl)) throw invalid(`[Mail] SSL "${m['SSL']}" is not starttls or ssl`);
  const security: MailSecurity = ssl === 'starttls' ? 'starttls' : 'ssl';
  const port = m['PORT'] || (security === 'ssl' ? '465' : '587');
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw invalid(`[Mail] PORT "${port}" is not a port number`);
  const authMethod = (m['AUTH_METHOD'] || 'LOGIN').toUpperCase();
  if (authMethod !== 'LOGIN' && authMethod !== 'PLAIN') throw invalid(`[Mail] AUTH_METHOD "${m['AUTH_METHOD']}" is not LOGIN or PLAIN`);
  const username = m['USERNAME'] || undefined;
  const password = secretSetting({
    env: o.env,
    envVar: ENV_MAIL_PASSWORD,
    values: m,
    section: 'Mail',
    key: 'PASSWORD',
    readSecretFile: o.readSecretFile,
    unreadable: (msg) => new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, msg),
  });
  if (password && !username) throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, '[Mail] USERNAME is missing (a password is set)');
  const from = m['FROM'] || (username && ADDRESS.test(username) ? username : `kvm-backup@${o.environment}`);
  if (!ADDRESS.test(from)) throw invalid(`[Mail] FROM "${from}" is not an e-mail address`);
  const caDir = m['CA_DIR'] || undefined;
  if (caDir !== undefined && !caDir.startsWith('/')) throw invalid(`[Mail] CA_DIR "${caDir}" is not an absolute path`);
  return {
    sendTo,
    host,
    port: Number(port),
    security,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    authMethod,
    from,
    fromName: m['FROMNAME'] || 'kvm-backup',
    ...(caDir ? { caDir } : {}),
  };
}

/** [Mail] and [Notify]; throws ConfigError 2 (HOST, USERNAME missing; unreadable password file) or 39 (bad value). */
export function parseNotifySettings(
  sections: IniSections,
  o: { env: Record<string, string | undefined>; readSecretFile: (path: string) => string; environment: string },
): NotifySettings {
  const mail = parseMail(sections['Mail'] ?? {}, o);
  const webhookUrl = sections['Notify']?.['WEBHOOK_URL'] || undefined;
  if (webhookUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(webhookUrl);
    } catch {
      throw invalid(`[Notify] WEBHOOK_URL "${webhookUrl}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`[Notify] WEBHOOK_URL "${webhookUrl}" is not an http(s) URL`);
  }
  return { ...(mail ? { mail } : {}), ...(webhookUrl ? { webhookUrl } : {}) };
}
