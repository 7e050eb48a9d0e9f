/**
 * The global INI file (the original's KVM.conf): sections [Global], [Database], [Service],
 * [Gateway], [Backup] with the seed's keys, plus [Temporal] for where the workflows live.
 *
 * Differences from the original, on purpose:
 * - the cloud-wide configuration DN is read from STONEY_CLOUD_WIDE_CONFIGURATION (the seed's template)
 *   or FOSS_CLOUD_WIDE_CONFIGURATION (what the original code read); both present and different is an error;
 * - ADMIN_PASSWORD may come from the environment (KVM_BACKUP_LDAP_PASSWORD), from a file
 *   (ADMIN_PASSWORD_FILE, or ADMIN_PASSWORD = file:/path), or inline as before.
 */
import { ConfigError } from './config-error.js';
import { Code } from './exit-codes.js';
import { parseIni, type IniSections } from './ini.js';
import { isSyslogTag, LOG_FORMATS, type LogFormat } from './log-format.js';
import { CONTROL_TASK_QUEUE } from './naming.js';
import { parseNotifySettings, type NotifySettings } from './notify-settings.js';
import type { ResticSettings } from './restic.js';
import { Secret, secretSetting } from './secret.js';
import { resolveTemporalSettings, type TemporalProfileLoader, type TemporalSettings } from './temporal-settings.js';
import { checkedExportCommand, parseGateway, parseTransportApi, type GatewaySettings, type TransportApi } from './transport-settings.js';

export { ConfigError };

export type SnapshotMethod = 'live' | 'classic';
export const SNAPSHOT_METHODS: readonly SnapshotMethod[] = ['live', 'classic'];

export interface GlobalConfig {
  /** [Global] ENVIRONMENT: this node's name, as in the VMs' sstNode. */
  environment: string;
  /** The seed's LOG_* switches, and LOG_FORMAT (json lines, or syslog lines tagged [Service] SYSLOG). */
  log: { debug: boolean; info: boolean; warning: boolean; err: boolean; format: LogFormat };
  database: {
    backend: 'LDAP';
    /** ldap://host:port built from SERVER and PORT (SERVER may already be a URL). */
    url: string;
    bindDn: string;
    password: Secret;
    serviceSubtree: string;
    cookieFile: string;
    defaultCookie: string;
    searchFilter: string;
    cloudWideConfigurationDn: string;
    /** Which INI key gave the cloud-wide DN, for `config show`. */
    cloudWideConfigurationKey: string;
  };
  /** TRANSPORTAPI: where the node's commands run (core/transport-settings.ts). */
  service: { modus: string; transportApi: TransportApi; service: string; type: string; syslogTag: string };
  /** The SSH gateway of CLISSH: HOST, USER, DSA_FILE, PORT, KNOWN_HOSTS. */
  gateway: GatewaySettings;
  backup: {
    /** [Backup] EXPORT_COMMAND; the default `cp -p` is the built-in copier, another command runs per file (exportCommandArgv). */
    exportCommand: string;
    /** Root the backup layout strips from image directories (the original hard-coded /var/virtualization). */
    virtualizationRoot: string;
    /** Default snapshot method when neither LDAP nor the request chooses one. */
    snapshotMethod: SnapshotMethod;
    /** Upper bound for big copies in MiB/s ([Backup] COPY_BANDWIDTH), 0 = unlimited. */
    copyBandwidthMiB: number;
    /** Target guest pause of a live snapshot in ms ([Backup] LIVE_MAX_DOWNTIME_MS, default 20). */
    liveMaxDowntimeMs: number;
    /** How restic runs for backup roots that are repositories ([Backup] RESTIC_*, docs/repository.md). */
    restic: ResticSettings;
    /**
     * Backups one node runs at once ([Backup] MAX_CONCURRENT_BACKUPS, default 2, 0 = no limit): the
     * slots the control worker grants per node (workflows/node-slots.ts); the node worker takes
     * this many plus 2 activity slots (at least 4).
     */
    maxConcurrentBackups: number;
  };
  /**
   * Where Temporal is and how to reach it: [Temporal] ADDRESS, NAMESPACE, TLS keys, API key, UI_URL,
   * CONTROL_TASK_QUEUE (sites sharing one namespace use their own queue), merged with Temporal's
   * TOML profile and TEMPORAL_* variables (core/temporal-settings.ts).
   */
  temporal: TemporalSettings;
  /** [Metrics] PORT (0 = no endpoint) and ADDRESS of each worker's Prometheus endpoint. */
  metrics: { port: number; address: string };
  /** Failure notifications: [Mail] (the original's keys) and [Notify] WEBHOOK_URL; empty = none. */
  notify: NotifySettings;
}

export const ENV_PASSWORD = 'KVM_BACKUP_LDAP_PASSWORD';
/** [Backup] MAX_CONCURRENT_BACKUPS when the INI has none: two backups per node at once (docs/configuration.md). */
export const DEFAULT_MAX_CONCURRENT_BACKUPS = 2;
/** The largest MAX_CONCURRENT_BACKUPS accepted. */
export const MAX_CONCURRENT_BACKUPS_LIMIT = 64;
export const CLOUD_WIDE_KEYS = ['STONEY_CLOUD_WIDE_CONFIGURATION', 'FOSS_CLOUD_WIDE_CONFIGURATION'] as const;

export interface ConfigSources {
  env: Record<string, string | undefined>;
  /** Reads a secret file; injected so this module stays pure. */
  readSecretFile: (path: string) => string;
  /**
   * Temporal's own configuration layers (TOML profile, TEMPORAL_* variables), read by
   * adapters/temporal/profile.ts; absent: the INI's [Temporal] keys alone.
   */
  temporalProfiles?: TemporalProfileLoader;
}

function flag(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `"${value}" is not a boolean (use 1/0)`);
}

function required(sections: IniSections, section: string, key: string): string {
  const value = sections[section]?.[key];
  if (value === undefined || value === '') {
    throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `[${section}] ${key} is missing in the configuration file`);
  }
  if (/^<.*>$/.test(value)) {
    throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `[${section}] ${key} still holds the template placeholder ${value}`);
  }
  return value;
}

function ldapUrl(server: string, port: string | undefined): string {
  if (/^ldaps?:\/\//i.test(server)) return server.replace(/\/+$/, '');
  if (port !== undefined && port !== '' && !/^\d{1,5}$/.test(port)) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Database] PORT "${port}" is not a port number`);
  }
  const host = server.includes(':') && !server.startsWith('[') ? `[${server}]` : server;
  return port ? `ldap://${host}:${port}` : `ldap://${host}`;
}

function password(sections: IniSections, sources: ConfigSources): Secret {
  const secret = secretSetting({
    env: sources.env,
    envVar: ENV_PASSWORD,
    values: sections['Database'] ?? {},
    section: 'Database',
    key: 'ADMIN_PASSWORD',
    readSecretFile: sources.readSecretFile,
    unreadable: (m) => new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, m.replace('[Database] ADMIN_PASSWORD file', 'LDAP password file')),
  });
  // inline (or missing): checked like every required key (empty, template placeholder)
  return secret && secret.origin !== 'configuration file' ? secret : new Secret(required(sections, 'Database', 'ADMIN_PASSWORD'), 'configuration file');
}

function cloudWide(sections: IniSections): { dn: string; key: string } {
  const db = sections['Database'] ?? {};
  const present = CLOUD_WIDE_KEYS.filter((k) => db[k] !== undefined && db[k] !== '');
  if (present.length === 0) {
    throw new ConfigError(
      Code.MISSING_PARAMETER_IN_CONFIG_FILE,
      `[Database] needs ${CLOUD_WIDE_KEYS.join(' or ')} (the DN of the cloud-wide backup configuration)`,
    );
  }
  const values = new Set(present.map((k) => db[k]!));
  if (values.size > 1) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Database] ${CLOUD_WIDE_KEYS.join(' and ')} name different DNs`);
  }
  const key = present[0]!;
  return { dn: db[key]!, key };
}

export function parseGlobalConfig(text: string, sources: ConfigSources): GlobalConfig {
  let sections: IniSections;
  try {
    sections = parseIni(text);
  } catch (e) {
    throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `configuration file: ${(e as Error).message}`);
  }
  const g = sections['Global'] ?? {};
  const db = sections['Database'] ?? {};
  const backend = db['BACKEND'] ?? 'LDAP';
  if (backend.toUpperCase() !== 'LDAP') {
    throw new ConfigError(Code.UNKNOWN_BACKEND_TYPE, `[Database] BACKEND "${backend}" is not supported (only LDAP)`);
  }
  const method = (sections['Backup']?.['SNAPSHOT_METHOD'] ?? 'live') as SnapshotMethod;
  if (!SNAPSHOT_METHODS.includes(method)) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Backup] SNAPSHOT_METHOD "${method}" is not one of ${SNAPSHOT_METHODS.join(', ')}`);
  }
  const virtualizationRoot = sections['Backup']?.['VIRTUALIZATION_ROOT'] ?? '/var/virtualization';
  if (!virtualizationRoot.startsWith('/')) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Backup] VIRTUALIZATION_ROOT "${virtualizationRoot}" is not an absolute path`);
  }
  const copyBandwidth = sections['Backup']?.['COPY_BANDWIDTH'] ?? '0';
  if (!/^\d{1,6}$/.test(copyBandwidth)) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Backup] COPY_BANDWIDTH "${copyBandwidth}" is not a number of MiB/s`);
  }
  const maxDowntime = sections['Backup']?.['LIVE_MAX_DOWNTIME_MS'] ?? '20';
  if (!/^\d{1,5}$/.test(maxDowntime) || Number(maxDowntime) < 1) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Backup] LIVE_MAX_DOWNTIME_MS "${maxDowntime}" is not a number of milliseconds`);
  }
  const maxBackups = sections['Backup']?.['MAX_CONCURRENT_BACKUPS'] ?? String(DEFAULT_MAX_CONCURRENT_BACKUPS);
  if (!/^\d{1,3}$/.test(maxBackups) || Number(maxBackups) > MAX_CONCURRENT_BACKUPS_LIMIT) {
    throw new ConfigError(
      Code.UNSUPPORTED_CONFIGURATION_PARAMETER,
      `[Backup] MAX_CONCURRENT_BACKUPS "${maxBackups}" is not a number of backups from 0 (no limit) to ${MAX_CONCURRENT_BACKUPS_LIMIT}`,
    );
  }
  const logFormat = (g['LOG_FORMAT'] || 'json').toLowerCase() as LogFormat;
  if (!LOG_FORMATS.includes(logFormat)) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Global] LOG_FORMAT "${g['LOG_FORMAT']}" is not one of ${LOG_FORMATS.join(', ')}`);
  }
  const syslogTag = sections['Service']?.['SYSLOG'] || 'Backup-KVM';
  if (!isSyslogTag(syslogTag)) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Service] SYSLOG "${syslogTag}" is not a syslog tag (printable, no spaces, [ ] or :)`);
  }
  const metrics = metricsEndpoint(sections);
  const cw = cloudWide(sections);
  const s = sections['Service'] ?? {};
  const gw = sections['Gateway'] ?? {};
  const t = sections['Temporal'] ?? {};
  const environment = required(sections, 'Global', 'ENVIRONMENT');
  return {
    environment,
    log: {
      debug: flag(g['LOG_DEBUG'], false),
      info: flag(g['LOG_INFO'], true),
      warning: flag(g['LOG_WARNING'], true),
      err: flag(g['LOG_ERR'], true),
      format: logFormat,
    },
    database: {
      backend: 'LDAP',
      url: ldapUrl(required(sections, 'Database', 'SERVER'), db['PORT']),
      bindDn: required(sections, 'Database', 'ADMIN_USER'),
      password: password(sections, sources),
      serviceSubtree: required(sections, 'Database', 'SERVICE_SUBTREE'),
      cookieFile: db['COOKIE_FILE'] || '/var/lib/kvm-backup/cookie',
      defaultCookie: db['DEFAULT_COOKIE'] || 'rid=001,csn=',
      searchFilter: db['SEARCH_FILTER'] || '(&(entryCSN>=%entryCSN%)(objectClass=*))',
      cloudWideConfigurationDn: cw.dn,
      cloudWideConfigurationKey: cw.key,
    },
    service: {
      modus: s['MODUS'] ?? 'selfcare',
      transportApi: parseTransportApi(s['TRANSPORTAPI']),
      service: s['SERVICE'] ?? 'Backup',
      type: s['TYPE'] ?? 'KVM',
      syslogTag,
    },
    gateway: parseGateway(gw),
    backup: {
      exportCommand: checkedExportCommand(sections['Backup']?.['EXPORT_COMMAND']),
      virtualizationRoot,
      snapshotMethod: method,
      copyBandwidthMiB: Number(copyBandwidth),
      liveMaxDowntimeMs: Number(maxDowntime),
      restic: resticSettings(sections['Backup'] ?? {}),
      maxConcurrentBackups: Number(maxBackups),
    },
    temporal: resolveTemporalSettings(t, {
      ...(sources.temporalProfiles
        ? {
            profiles: sources.temporalProfiles({
              env: sources.env,
              ...(t['CONFIG_FILE'] ? { configFile: t['CONFIG_FILE'] } : {}),
              ...(t['PROFILE'] ? { profile: t['PROFILE'] } : {}),
            }),
          }
        : {}),
      readSecretFile: sources.readSecretFile,
      defaultControlTaskQueue: CONTROL_TASK_QUEUE,
    }),
    metrics,
    notify: parseNotifySettings(sections, { env: sources.env, readSecretFile: sources.readSecretFile, environment }),
  };
}

/**
 * [Backup] RESTIC_* (docs/configuration.md): file settings must be absolute paths; the password is
 * only named here (restic reads the file), so it never passes through this process's memory or logs.
 */
function resticSettings(b: Record<string, string>): ResticSettings {
  const path = (key: string): string | undefined => {
    const v = b[key];
    if (v === undefined || v === '') return undefined;
    if (!v.startsWith('/')) throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Backup] ${key} "${v}" is not an absolute path`);
    return v;
  };
  const readData = b['RESTIC_VERIFY_READ_DATA'] || '100%';
  if (!/^(100|[1-9]?\d(\.\d{1,3})?)%$/.test(readData) || readData === '0%') {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Backup] RESTIC_VERIFY_READ_DATA "${readData}" is not a share between 0% and 100%`);
  }
  const binary = b['RESTIC_BINARY'] || 'restic';
  if (!/^[^\s]+$/.test(binary)) throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Backup] RESTIC_BINARY "${binary}" is not a program name or path`);
  const limit = b['RESTIC_LIMIT_KIB'] || '0';
  if (!/^\d{1,9}$/.test(limit)) throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Backup] RESTIC_LIMIT_KIB "${limit}" is not a number of KiB/s`);
  const out: ResticSettings = { binary, verifyReadData: readData, limitKiB: Number(limit) };
  const set = (k: keyof ResticSettings, key: string) => {
    const v = path(key);
    if (v !== undefined) (out as unknown as Record<string, string>)[k] = v;
  };
  set('passwordFile', 'RESTIC_PASSWORD_FILE');
  set('sshIdentityFile', 'RESTIC_SSH_IDENTITY_FILE');
  set('sshKnownHostsFile', 'RESTIC_SSH_KNOWN_HOSTS');
  set('cacheDir', 'RESTIC_CACHE_DIR');
  return out;
}

/** [Metrics] PORT (absent or 0: no endpoint) and ADDRESS (default all interfaces). */
function metricsEndpoint(sections: IniSections): GlobalConfig['metrics'] {
  const m = sections['Metrics'] ?? {};
  const port = m['PORT'] || '0';
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Metrics] PORT "${port}" is not a port number (0 = off)`);
  }
  const address = m['ADDRESS'] || '0.0.0.0';
  if (!/^[A-Za-z0-9.:_-]+$/.test(address)) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Metrics] ADDRESS "${address}" is not a host name or IP address`);
  }
  return { port: Number(port), address };
}
