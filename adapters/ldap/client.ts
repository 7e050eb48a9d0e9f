/**
 * The one LDAP client of the product, over ldapts, in two ways of holding a connection:
 *
 * - `perCall` (activities, CLI, scheduler): a freshly bound connection per operation, unbound
 *   afterwards. An ldapts Client that is never unbound keeps Node alive, and a short connection
 *   survives slapd restarts without any bookkeeping.
 * - `session` (the watcher's polls, several a second): one long-lived bound connection, because a
 *   bind per poll would put four BIND lines a second into slapd's log. ldapts reconnects on its own
 *   when a socket dies, but anonymously; so the session remembers the socket it bound and treats an
 *   answer that came over another socket as a lost connection, and binds afresh next time.
 *
 * Either way, connection trouble is CANNOT_CONNECT_TO_BACKEND (17), tested by `isDirectoryUnreachable`.
 * Filters and DNs reach this file already escaped (core/dn.ts). The bind password stays in here.
 */
import { Attribute, Change, Client, NoSuchObjectError, ResultCodeError, type Entry } from 'ldapts';
import { parseDn } from '../../core/dn.js';
import { Code } from '../../core/exit-codes.js';
import { codeOf, failure } from '../../core/failures.js';
import { makeEntry, type LdapEntry } from '../../core/ldap-entry.js';
import type { LeafChanges } from '../../core/provisioning.js';
import type { Secret } from '../../core/secret.js';

export interface LdapOptions {
  url: string;
  bindDn: string;
  password: Secret;
  timeoutMs?: number;
}

export type Scope = 'base' | 'one' | 'sub';

export interface SearchRequest {
  scope?: Scope;
  filter?: string;
  attributes?: string[];
  /** Page size for large result sets (the watcher's sweeps). */
  pageSize?: number;
}

function toEntry(e: Entry): LdapEntry {
  const attrs: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === 'dn') continue;
    const list = Array.isArray(v) ? v : [v];
    attrs[k] = list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
  }
  return makeEntry(e.dn, attrs);
}

function isConnectionProblem(e: unknown): boolean {
  if (e instanceof ResultCodeError) return e.code === 51 || e.code === 52 || e.code === 81; // busy, unavailable, server down
  const text = `${(e as { code?: string }).code ?? ''} ${(e as Error).message ?? ''}`;
  return /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ETIMEDOUT|EPIPE|socket|closed|timeout|connect/i.test(text);
}

/** True when `e` says the directory could not be reached (17), as opposed to a refused operation. */
export function isDirectoryUnreachable(e: unknown): boolean {
  return codeOf(e) === Code.CANNOT_CONNECT_TO_BACKEND;
}

export class LdapClient {
  private held: Client | undefined;
  private boundSocket: unknown;

  private constructor(
    private readonly options: LdapOptions,
    private readonly keepConnection: boolean,
  ) {}

  /** A bind per operation (activities, CLI, scheduler). */
  static perCall(options: LdapOptions): LdapClient {
    return new LdapClient(options, false);
  }

  /** One long-lived bound connection (the watcher); `close()` it when done. */
  static session(options: LdapOptions): LdapClient {
    return new LdapClient(options, true);
  }

  private socketOf(client: Client): unknown {
    return (client as unknown as { socket?: unknown }).socket;
  }

  private async bind(): Promise<Client> {
    const client = new Client({ url: this.options.url, timeout: this.options.timeoutMs ?? 15_000, connectTimeout: 5_000 });
    try {
      await client.bind(this.options.bindDn, this.options.password.reveal());
    } catch (e) {
      await client.unbind().catch(() => undefined);
      throw failure(Code.CANNOT_CONNECT_TO_BACKEND, `cannot bind to ${this.options.url} as ${this.options.bindDn}: ${(e as Error).message}`);
    }
    return client;
  }

  /** Runs `fn` on a bound client; connection failures are exit code 17. */
  async withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    let client: Client;
    if (this.keepConnection) {
      const held = this.held;
      if (held && held.isConnected && this.socketOf(held) === this.boundSocket) client = held;
      else {
        await this.close();
        client = await this.bind();
        this.held = client;
        this.boundSocket = this.socketOf(client);
      }
    } else client = await this.bind();
    try {
      const result = await fn(client);
      if (this.keepConnection && this.socketOf(client) !== this.boundSocket) {
        // the operation reconnected on its own, unbound: its answer may lack what only we may see
        await this.close();
        throw failure(Code.CANNOT_CONNECT_TO_BACKEND, `LDAP ${this.options.url}: the connection was re-opened without a bind`);
      }
      return result;
    } catch (e) {
      if (isConnectionProblem(e) && !(e as { type?: string }).type) {
        if (this.keepConnection) await this.close();
        throw failure(Code.CANNOT_CONNECT_TO_BACKEND, `LDAP ${this.options.url}: ${(e as Error).message}`);
      }
      throw e;
    } finally {
      if (!this.keepConnection) await client.unbind().catch(() => undefined);
    }
  }

  /** Entries found; none when the base does not exist. */
  async search(base: string, request: SearchRequest = {}): Promise<LdapEntry[]> {
    return this.withClient(async (c) => {
      try {
        const { searchEntries } = await c.search(base, {
          scope: request.scope ?? 'sub',
          filter: request.filter ?? '(objectClass=*)',
          attributes: request.attributes ?? ['*'],
          ...(request.pageSize ? { paged: { pageSize: request.pageSize } } : {}),
        });
        return searchEntries.map(toEntry);
      } catch (e) {
        if (e instanceof NoSuchObjectError) return [];
        throw e;
      }
    });
  }

  /** The entry at `dn`, or undefined if it does not exist. */
  async get(dn: string, attributes: string[] = ['*']): Promise<LdapEntry | undefined> {
    return (await this.search(dn, { scope: 'base', attributes }))[0];
  }

  /** Every change in one modify, so a reader never sees the mode without its return value. */
  async modify(dn: string, changes: LeafChanges): Promise<void> {
    const list = Object.entries(changes).map(
      ([type, v]) =>
        new Change({
          operation: v === null ? 'delete' : 'replace',
          modification: new Attribute({ type, values: v === null ? [] : Array.isArray(v) ? v : [v] }),
        }),
    );
    if (list.length === 0) return;
    await this.withClient(async (c) => {
      try {
        await c.modify(dn, list);
      } catch (e) {
        // a leaf that is gone stays gone: not worth retrying
        if (e instanceof NoSuchObjectError) throw failure(Code.CANNOT_WORK_ON_UNDEFINED_OBJECT, `no entry ${dn} in the directory`);
        throw e;
      }
    });
  }

  async add(dn: string, attributes: Record<string, string | string[]>): Promise<void> {
    await this.withClient((c) => c.add(dn, attributes));
  }

  /** Deletes `dn` and everything below it (children first); a missing entry is not an error. */
  async deleteTree(dn: string): Promise<void> {
    const entries = await this.search(dn, { attributes: ['1.1'] });
    const depth = (d: string) => parseDn(d).length;
    const deepestFirst = entries.map((e) => e.dn).sort((a, b) => depth(b) - depth(a));
    await this.withClient(async (c) => {
      for (const d of deepestFirst) {
        try {
          await c.del(d);
        } catch (e) {
          if (!(e instanceof NoSuchObjectError)) throw e;
        }
      }
    });
  }

  /** Unbinds a held session connection (nothing to do per call). */
  async close(): Promise<void> {
    const c = this.held;
    this.held = undefined;
    this.boundSocket = undefined;
    await c?.unbind().catch(() => undefined);
  }
}
