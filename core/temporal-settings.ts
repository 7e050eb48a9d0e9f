/**
 * How the workers, the watcher and the CLI reach Temporal (docs/configuration.md, "[Temporal]"):
 * address, namespace, TLS (server CA, client certificate and key, server name) and API key, merged
 * from three layers, each later one winning field by field:
 *
 * 1. a profile of Temporal's TOML client configuration (`temporal.toml`; the file from
 *    TEMPORAL_CONFIG_FILE or [Temporal] CONFIG_FILE, else ~/.config/temporalio/temporal.toml if it
 *    exists; the profile from TEMPORAL_PROFILE or [Temporal] PROFILE, else `default`),
 * 2. the INI's [Temporal] keys,
 * 3. Temporal's standard environment variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 *    TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_*).
 *
 * Layers 1 and 3 are read by @temporalio/envconfig (adapters/temporal/profile.ts) and handed in as
 * plain data, so this module stays pure. Secrets (the API key, a client key given as data) become
 * `Secret`s; an API key written inline in the INI is refused. PEM files are read when connecting.
 */
import { ConfigError } from './config-error.js';
import { Code } from './exit-codes.js';
import { Secret } from './secret.js';
import { parseDormantPatches } from './workflow-patches.js';

/** A PEM as a file path or as the data itself (the two ways Temporal's configuration gives one). */
export type PemSource = { path: string } | { data: Secret };

type DataSource = { path: string } | { data: string | Uint8Array };

/** One layer, in the shape of @temporalio/envconfig's ClientConfigProfile (the fields used here). */
export interface TemporalProfile {
  address?: string;
  namespace?: string;
  apiKey?: string;
  tls?: {
    disabled?: boolean;
    serverName?: string;
    serverCACert?: DataSource;
    clientCert?: DataSource;
    clientKey?: DataSource;
  };
}

export interface TemporalProfiles {
  /** The TOML profile, when a file was found; origin names file and profile. */
  file?: { profile: TemporalProfile; origin: string };
  /** What the TEMPORAL_* environment variables say. */
  env: TemporalProfile;
}

/**
 * Reads layers 1 and 3. `configFile` and `profile` are the INI's CONFIG_FILE and PROFILE (the
 * environment's TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE win over them). Throws ConfigError (2)
 * for a named file that cannot be read or a named profile that is not in it.
 */
export type TemporalProfileLoader = (request: {
  env: Record<string, string | undefined>;
  configFile?: string;
  profile?: string;
}) => TemporalProfiles;

export interface TemporalTls {
  /** CA certificate(s) the server's certificate must chain to (default: the system's roots). */
  serverCa?: PemSource;
  /** Client certificate and key for mutual TLS (both or neither). */
  clientCert?: PemSource;
  clientKey?: PemSource;
  /** The name the server certificate must carry, when it differs from the address's host. */
  serverName?: string;
}

export interface TemporalSettings {
  /** host:port of the frontend. */
  address: string;
  namespace: string;
  /** Task queue of the control worker ([Temporal] CONTROL_TASK_QUEUE). */
  controlTaskQueue: string;
  /** TLS options, or undefined for a plain connection. */
  tls?: TemporalTls;
  /** API key (Temporal Cloud), sent as a bearer token; implies TLS unless TLS is switched off. */
  apiKey?: Secret;
  /** Base URL of the Temporal Web UI for links in notifications ([Temporal] UI_URL), no trailing slash. */
  uiUrl?: string;
  /** Workflow patches this worker leaves untaken in runs that reach them ([Temporal] DORMANT_PATCHES; docs/upgrades.md). */
  dormantPatches: string[];
  /** Where each part came from ("environment", "[Temporal]", "profile default of /…/temporal.toml", "default"). */
  origins: { address: string; namespace: string; tls: string; apiKey: string };
}

export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

function flag(key: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Temporal] ${key} "${value}" is not a boolean (use 1/0)`);
}

function pem(source: DataSource | undefined, origin: string): PemSource | undefined {
  if (!source) return undefined;
  if ('path' in source) return { path: source.path };
  const text = typeof source.data === 'string' ? source.data : new TextDecoder().decode(source.data);
  return { data: new Secret(text, origin) };
}

function iniFile(ini: Record<string, string>, key: string): PemSource | undefined {
  const path = ini[key];
  return path ? { path } : undefined;
}

/** Layer by layer, the first defined value from the top (environment, INI, TOML profile). */
function pick<T>(layers: Array<[T | undefined, string]>): [T, string] | undefined {
  for (const [value, origin] of layers) if (value !== undefined) return [value, origin];
  return undefined;
}

/**
 * The effective connection settings. `ini` is the [Temporal] section; `profiles` the TOML and
 * environment layers (absent: the INI alone, as pure tests and `kvm-backup dev` use it);
 * `readSecretFile` reads API_KEY_FILE. Throws ConfigError: 39 for an inline API_KEY, a bad flag or
 * UI_URL; 2 for an unreadable API key file or a client certificate without its key.
 */
export function resolveTemporalSettings(
  ini: Record<string, string>,
  o: { profiles?: TemporalProfiles; readSecretFile: (path: string) => string; defaultControlTaskQueue: string },
): TemporalSettings {
  if (ini['API_KEY'] !== undefined) {
    throw new ConfigError(
      Code.UNSUPPORTED_CONFIGURATION_PARAMETER,
      '[Temporal] API_KEY: secrets are not written into the configuration file; use API_KEY_FILE or the environment variable TEMPORAL_API_KEY',
    );
  }
  const env = o.profiles?.env ?? {};
  const file = o.profiles?.file?.profile ?? {};
  const fileOrigin = o.profiles?.file?.origin ?? 'temporal.toml';
  const envTls = env.tls ?? {};
  const fileTls = file.tls ?? {};

  const address = pick<string>([[env.address, 'environment TEMPORAL_ADDRESS'], [ini['ADDRESS'] || undefined, '[Temporal] ADDRESS'], [file.address, fileOrigin]]) ?? [DEFAULT_TEMPORAL_ADDRESS, 'default'];
  const namespace =
    pick<string>([[env.namespace, 'environment TEMPORAL_NAMESPACE'], [ini['NAMESPACE'] || undefined, '[Temporal] NAMESPACE'], [file.namespace, fileOrigin]]) ??
    [DEFAULT_TEMPORAL_NAMESPACE, 'default'];

  let apiKey: Secret | undefined;
  if (env.apiKey) apiKey = new Secret(env.apiKey, 'environment TEMPORAL_API_KEY');
  else if (ini['API_KEY_FILE']) {
    const path = ini['API_KEY_FILE'];
    let text: string;
    try {
      text = o.readSecretFile(path);
    } catch (e) {
      throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `cannot read the Temporal API key file ${path} ([Temporal] API_KEY_FILE): ${(e as Error).message}`);
    }
    apiKey = new Secret(text.trim(), `file ${path}`);
  } else if (file.apiKey) apiKey = new Secret(file.apiKey, fileOrigin);

  const serverCa = pick<PemSource>([[pem(envTls.serverCACert, 'environment TEMPORAL_TLS_SERVER_CA_CERT_DATA'), 'environment'], [iniFile(ini, 'TLS_CA_FILE'), '[Temporal]'], [pem(fileTls.serverCACert, fileOrigin), fileOrigin]]);
  const clientCert = pick<PemSource>([[pem(envTls.clientCert, 'environment TEMPORAL_TLS_CLIENT_CERT_DATA'), 'environment'], [iniFile(ini, 'TLS_CERT_FILE'), '[Temporal]'], [pem(fileTls.clientCert, fileOrigin), fileOrigin]]);
  const clientKey = pick<PemSource>([[pem(envTls.clientKey, 'environment TEMPORAL_TLS_CLIENT_KEY_DATA'), 'environment'], [iniFile(ini, 'TLS_KEY_FILE'), '[Temporal]'], [pem(fileTls.clientKey, fileOrigin), fileOrigin]]);
  const serverName = pick<string>([[envTls.serverName, 'environment'], [ini['TLS_SERVER_NAME'] || undefined, '[Temporal]'], [fileTls.serverName, fileOrigin]]);
  if (!clientCert !== !clientKey) {
    throw new ConfigError(
      Code.MISSING_PARAMETER_IN_CONFIG_FILE,
      `a Temporal client certificate needs its key and the key its certificate ([Temporal] TLS_CERT_FILE and TLS_KEY_FILE, or TEMPORAL_TLS_CLIENT_CERT_* and TEMPORAL_TLS_CLIENT_KEY_*); only the ${clientCert ? 'certificate' : 'key'} is given`,
    );
  }
  const explicit = pick<boolean>([
    [envTls.disabled === undefined ? undefined : !envTls.disabled, 'environment TEMPORAL_TLS'],
    [flag('TLS', ini['TLS']), '[Temporal] TLS'],
    [fileTls.disabled === undefined ? undefined : !fileTls.disabled, fileOrigin],
  ]);
  const parts = [serverCa, clientCert, serverName].filter((p) => p !== undefined);
  const tlsOn = explicit ? explicit[0] : parts.length > 0 || apiKey !== undefined;
  const tlsOrigin = explicit ? explicit[1] : parts.length ? `TLS settings (${[...new Set(parts.map((p) => p[1]))].join(', ')})` : apiKey ? 'an API key implies TLS' : 'default';

  const uiUrl = ini['UI_URL']?.replace(/\/+$/, '');
  if (uiUrl !== undefined && uiUrl !== '' && !/^https?:\/\/[^\s/]+/.test(uiUrl)) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Temporal] UI_URL "${ini['UI_URL']}" is not an http(s) URL`);
  }

  return {
    address: address[0],
    namespace: namespace[0],
    controlTaskQueue: ini['CONTROL_TASK_QUEUE'] || o.defaultControlTaskQueue,
    dormantPatches: parseDormantPatches(ini['DORMANT_PATCHES']),
    ...(tlsOn
      ? {
          tls: {
            ...(serverCa ? { serverCa: serverCa[0] } : {}),
            ...(clientCert ? { clientCert: clientCert[0] } : {}),
            ...(clientKey ? { clientKey: clientKey[0] } : {}),
            ...(serverName ? { serverName: serverName[0] } : {}),
          },
        }
      : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(uiUrl ? { uiUrl } : {}),
    origins: { address: address[1], namespace: namespace[1], tls: `${tlsOn ? 'on' : 'off'} (${tlsOrigin})`, apiKey: apiKey ? apiKey.origin : 'none' },
  };
}

/** One line for logs and `doctor`: address, namespace, TLS parts by file name; never a secret. */
export function describeTemporal(s: Pick<TemporalSettings, 'address' | 'namespace'> & Partial<Pick<TemporalSettings, 'tls' | 'apiKey'>>): string {
  const src = (p: PemSource | undefined) => (p === undefined ? undefined : 'path' in p ? p.path : `data from ${p.data.origin}`);
  const tls = s.tls
    ? [
        'TLS',
        s.tls.serverCa ? `CA ${src(s.tls.serverCa)}` : 'system CAs',
        ...(s.tls.clientCert ? [`client certificate ${src(s.tls.clientCert)}`] : []),
        ...(s.tls.serverName ? [`server name ${s.tls.serverName}`] : []),
      ].join(', ')
    : 'no TLS';
  return `${s.address}, namespace ${s.namespace} (${tls}${s.apiKey ? `, API key from ${s.apiKey.origin}` : ''})`;
}
