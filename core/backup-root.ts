/**
 * What a backup root URI (sstBackupRootDirectory at VM, pool or cloud level) names: the original
 * layout of iteration directories (`file://`), or a deduplicating, compressed, encrypted restic
 * repository, on this node (`restic:///path`) or on another host over SFTP
 * (`restic+sftp://user@host:port/path`). docs/repository.md says why and how; every step chooses
 * the plain layout or the repository from this one answer. Any other scheme keeps the code the
 * original gave it (39 for a backup, 35 for a restore). Pure.
 */
import { Code } from './exit-codes.js';
import { fileUriToPath, NamingError, normalizePath } from './naming.js';

/** A restic repository a backup root names; no secret in it (the password is a file of the node's INI). */
export interface ResticRepository {
  /** The URI as configured, for messages and `list`. */
  uri: string;
  transport: 'local' | 'sftp';
  /** Absolute path of the repository, on this node (local) or on the SFTP server. */
  path: string;
  /** SFTP only: the SSH login; absent = the node worker's own user name. */
  user?: string;
  /** SFTP only: host name or IP address (IPv6 without brackets). */
  host?: string;
  /** SFTP only: the SSH port (22 when the URI names none). */
  port?: number;
}

export type BackupRoot = { kind: 'plain'; path: string } | { kind: 'repository'; repository: ResticRepository };

export const RESTIC_SCHEMES = ['restic', 'restic+sftp'] as const;

/** A host name, an IPv4 address or a bracketed IPv6 address: nothing ssh could read as an option or a command. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|\[[0-9A-Fa-f:.]+\])$/;
/** POSIX-ish login names. */
const USER = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/**
 * The path of a repository URI, percent-decoded once: absolute, no `..`, and nothing restic's
 * `sftp.command` splitter (or a terminal) could misread: no control characters, quotes or backslashes.
 */
function repositoryPath(uri: string, encoded: string, what: string, code: number): string {
  if (!encoded.startsWith('/')) throw new NamingError(code, `${what} "${uri}" must name an absolute path`);
  let path: string;
  try {
    path = decodeURIComponent(encoded);
  } catch {
    throw new NamingError(code, `${what} "${uri}" has a bad %-escape (a literal % is written %25)`);
  }
  if (encoded.split('/').includes('..') || path.split('/').includes('..')) throw new NamingError(code, `${what} "${uri}" contains ".."`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f"'\\]/.test(path)) throw new NamingError(code, `${what} "${uri}": the repository path may not hold quotes, backslashes or control characters`);
  const normal = normalizePath(path);
  if (normal === '/') throw new NamingError(code, `${what} "${uri}": the repository cannot be the root directory`);
  return normal;
}

/**
 * The backup root a URI names. `file://` → the plain layout (core/naming.ts fileUriToPath);
 * `restic:///abs/path` (host empty or localhost) → a local repository;
 * `restic+sftp://[user@]host[:port]/abs/path` → a repository on an SFTP server (the path is absolute
 * there). Errors (NamingError with `code`, 39 for a backup, 35 for a restore): another scheme, a
 * relative path, `..`, a bad escape, a host, user or port that is not one.
 */
export function parseBackupRoot(uri: string, what = 'sstBackupRootDirectory', code: number = Code.UNSUPPORTED_CONFIGURATION_PARAMETER): BackupRoot {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/]*)(.*)$/s.exec(uri.trim());
  const scheme = m?.[1]?.toLowerCase();
  if (!m || (scheme !== 'restic' && scheme !== 'restic+sftp')) return { kind: 'plain', path: fileUriToPath(uri, what, code) };
  const authority = m[2]!;
  const path = repositoryPath(uri, m[3]!, what, code);
  if (scheme === 'restic') {
    if (authority !== '' && authority.toLowerCase() !== 'localhost') {
      throw new NamingError(code, `${what} "${uri}": a local repository is restic:///path (use restic+sftp://user@host/path for another host)`);
    }
    return { kind: 'repository', repository: { uri: uri.trim(), transport: 'local', path } };
  }
  const at = authority.lastIndexOf('@');
  const user = at >= 0 ? authority.slice(0, at) : undefined;
  const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(hostPort);
  const host = hp?.[1] ?? '';
  const port = hp?.[2] === undefined ? 22 : Number(hp[2]);
  if (!hp || !HOST.test(host)) throw new NamingError(code, `${what} "${uri}": "${host}" is not a host name or IP address`);
  if (user !== undefined && !USER.test(user)) throw new NamingError(code, `${what} "${uri}": "${user}" is not a user name`);
  if (port < 1 || port > 65535) throw new NamingError(code, `${what} "${uri}": ${port} is not a port`);
  return {
    kind: 'repository',
    repository: {
      uri: uri.trim(),
      transport: 'sftp',
      path,
      ...(user !== undefined ? { user } : {}),
      host: host.startsWith('[') ? host.slice(1, -1) : host,
      port,
    },
  };
}

/** True when the URI names a restic repository (the scheme alone; parseBackupRoot checks the rest). */
export function isRepositoryUri(uri: string): boolean {
  return /^restic(\+sftp)?:\/\//i.test(uri.trim());
}
