/**
 * The stoney cloud directory through ldapts: one bound connection per call, unbound afterwards
 * (an ldapts Client never unbound keeps Node alive, and a short connection survives slapd restarts).
 * Connection trouble becomes CANNOT_CONNECT_TO_BACKEND (17); filters and DNs reach this file already
 * escaped (core/dn.ts).
 */
import { Attribute, Change, Client, NoSuchObjectError, ResultCodeError, type Entry } from 'ldapts';
import { parseDn } from '../../core/dn.js';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import { makeEntry, type LdapEntry } from '../../core/ldap-entry.js';
import type { Secret } from '../../core/secret.js';

export interface DirectoryOptions {
  url: string;
  bindDn: string;
  password: Secret;
  timeoutMs?: number;
}

export type Scope = 'base' | 'one' | 'sub';

/** Attribute changes for one modify: a value list replaces, null deletes the attribute. */
export type Changes = Record<string, string | string[] | null>;

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

export class Directory {
  constructor(private readonly options: DirectoryOptions) {}

  /** Runs `fn` on a freshly bound client; connection failures are exit code 17. */
  async withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({ url: this.options.url, timeout: this.options.timeoutMs ?? 15_000, connectTimeout: 5_000 });
    try {
      try {
        await client.bind(this.options.bindDn, this.options.password.reveal());
      } catch (e) {
        throw failure(Code.CANNOT_CONNECT_TO_BACKEND, `cannot bind to ${this.options.url} as ${this.options.bindDn}: ${(e as Error).message}`);
      }
      return await fn(client);
    } catch (e) {
      if (isConnectionProblem(e) && !(e as { type?: string }).type) {
        throw failure(Code.CANNOT_CONNECT_TO_BACKEND, `LDAP ${this.options.url}: ${(e as Error).message}`);
      }
      throw e;
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  async search(base: string, filter: string, scope: Scope = 'sub', attributes: string[] = ['*']): Promise<LdapEntry[]> {
    return this.withClient(async (c) => {
      try {
        const { searchEntries } = await c.search(base, { scope, filter, attributes });
        return searchEntries.map(toEntry);
      } catch (e) {
        if (e instanceof NoSuchObjectError) return [];
        throw e;
      }
    });
  }

  /** The entry at `dn`, or undefined if it does not exist. */
  async get(dn: string, attributes: string[] = ['*']): Promise<LdapEntry | undefined> {
    return (await this.search(dn, '(objectClass=*)', 'base', attributes))[0];
  }

  /** Every change in one modify, so a reader never sees the mode without its return value. */
  async modify(dn: string, changes: Changes): Promise<void> {
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
    const entries = await this.search(dn, '(objectClass=*)', 'sub', ['1.1']);
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
}
