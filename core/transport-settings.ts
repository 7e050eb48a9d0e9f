/**
 * How the node reaches its hypervisor and exports files, from the seed's keys ([Service]
 * TRANSPORTAPI, [Gateway] HOST/USER/DSA_FILE plus PORT/KNOWN_HOSTS, [Backup] EXPORT_COMMAND;
 * docs/configuration.md, "Transport"). Pure: checked when the configuration is read, so a bad value
 * stops the worker at start (39) rather than a backup later.
 */
import { ConfigError } from './config-error.js';
import { Code } from './exit-codes.js';

export type TransportApi = 'LocalCLI' | 'CLISSH';
export const TRANSPORT_APIS: readonly TransportApi[] = ['LocalCLI', 'CLISSH'];

export interface GatewaySettings {
  host: string;
  user: string;
  /** The private key file, or `none`: OpenSSH's default identities. */
  dsaFile: string;
  /** [Gateway] PORT, default 22 (not in the seed). */
  port: number;
  /** [Gateway] KNOWN_HOSTS: known_hosts file with the host's key; empty = OpenSSH's default (not in the seed). */
  knownHosts: string;
}

/** The seed's default: the built-in copier (a rename where the retain directory allows). */
export const DEFAULT_EXPORT_COMMAND = 'cp -p';

/** TRANSPORTAPI, case as the seed writes it (`LocalCLI`, `CLISSH`), any case accepted. */
export function parseTransportApi(value: string | undefined): TransportApi {
  const v = value || 'LocalCLI';
  const api = TRANSPORT_APIS.find((a) => a.toLowerCase() === v.toLowerCase());
  if (!api) throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Service] TRANSPORTAPI "${v}" is not one of ${TRANSPORT_APIS.join(', ')}`);
  return api;
}

export function parseGateway(gw: Record<string, string>): GatewaySettings {
  const host = gw['HOST'] || 'localhost';
  // a name, an IPv4 or an IPv6 address; never something ssh would read as an option
  if (!/^[A-Za-z0-9_.:[\]-]+$/.test(host) || host.startsWith('-')) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Gateway] HOST "${host}" is not a host name or IP address`);
  }
  const user = gw['USER'] || 'provisioning';
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(user)) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Gateway] USER "${user}" is not a user name`);
  }
  const port = gw['PORT'] || '22';
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Gateway] PORT "${port}" is not a port number`);
  }
  const dsaFile = gw['DSA_FILE'] || 'none';
  const knownHosts = gw['KNOWN_HOSTS'] ?? '';
  for (const [key, path] of [['DSA_FILE', dsaFile], ['KNOWN_HOSTS', knownHosts]] as const) {
    if (path && path !== 'none' && !path.startsWith('/')) {
      throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Gateway] ${key} "${path}" is not an absolute path`);
    }
  }
  return { host, user: user, dsaFile, port: Number(port), knownHosts };
}

/**
 * EXPORT_COMMAND split into its arguments as a shell would split words, without a shell: blanks
 * separate, '…' and "…" group, a backslash escapes the next character (outside single quotes).
 * Nothing is expanded; the characters a shell would act on (`| ; & < > $ \``, unquoted) are refused
 * with 39, so nobody mistakes it for a shell line.
 */
export function splitCommand(text: string, what = '[Backup] EXPORT_COMMAND'): string[] {
  const args: string[] = [];
  let current: string | undefined;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else current += c;
    } else if (c === '\\' && i + 1 < text.length && (quote === undefined || '"\\$`'.includes(text[i + 1]!))) {
      current = (current ?? '') + text[++i];
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else current += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      current ??= '';
    } else if (/\s/.test(c)) {
      if (current !== undefined) args.push(current);
      current = undefined;
    } else if ('|;&<>$`'.includes(c)) {
      throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${what} "${text}": "${c}" is shell syntax; the command runs without a shell (write it as a program and its arguments)`);
    } else current = (current ?? '') + c;
  }
  if (quote) throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${what} "${text}": unbalanced ${quote}`);
  if (current !== undefined) args.push(current);
  if (args.length === 0) throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${what} is empty`);
  return args;
}

/**
 * The export command's argument array (the file's source and destination are appended per file),
 * or undefined for the default `cp -p`: the built-in copier, which renames where it can.
 */
export function exportCommandArgv(text: string): string[] | undefined {
  const argv = splitCommand(text);
  return argv.join(' ') === DEFAULT_EXPORT_COMMAND ? undefined : argv;
}

/** EXPORT_COMMAND as configured (the default when absent or empty), checked by splitting it (39 when it cannot be). */
export function checkedExportCommand(text: string | undefined): string {
  const value = text?.trim() || DEFAULT_EXPORT_COMMAND;
  splitCommand(value);
  return value;
}
