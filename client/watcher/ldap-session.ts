/**
 * One long-lived, bound LDAP connection for the watcher's polls (a bind per poll would put four
 * BIND lines a second into slapd's log). ldapts reconnects on its own when a socket dies, but
 * anonymously; so the session remembers the socket it bound and throws `SessionLost` when an
 * operation ran on another one, and the caller starts over with a fresh, bound session. Filters
 * and DNs reach this file already escaped.
 */
import { Client, NoSuchObjectError, type Entry, type SearchOptions } from 'ldapts';
import type { Secret } from '../../core/secret.js';

export class SessionLost extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SessionLost';
  }
}

export interface SessionOptions {
  url: string;
  bindDn: string;
  password: Secret;
  timeoutMs?: number;
}

export class LdapSession {
  private client: Client | undefined;
  private boundSocket: unknown;

  constructor(private readonly options: SessionOptions) {}

  private socketOf(client: Client): unknown {
    return (client as unknown as { socket?: unknown }).socket;
  }

  private async bound(): Promise<Client> {
    if (this.client && this.client.isConnected && this.socketOf(this.client) === this.boundSocket) return this.client;
    await this.close();
    const client = new Client({ url: this.options.url, timeout: this.options.timeoutMs ?? 10_000, connectTimeout: 5_000 });
    try {
      await client.bind(this.options.bindDn, this.options.password.reveal());
    } catch (e) {
      await client.unbind().catch(() => undefined);
      throw new SessionLost(`cannot bind to ${this.options.url} as ${this.options.bindDn}: ${(e as Error).message}`);
    }
    this.client = client;
    this.boundSocket = this.socketOf(client);
    return client;
  }

  /** Entries found (none when the base does not exist); SessionLost on any connection trouble. */
  async search(base: string, options: SearchOptions): Promise<Entry[]> {
    const client = await this.bound();
    let entries: Entry[];
    try {
      entries = (await client.search(base, options)).searchEntries;
    } catch (e) {
      if (e instanceof NoSuchObjectError) return [];
      await this.close();
      throw new SessionLost(`search below ${base}: ${(e as Error).message}`);
    }
    if (this.socketOf(client) !== this.boundSocket) {
      // the search reconnected on its own, unbound: its answer may be missing what only we may see
      await this.close();
      throw new SessionLost('the connection was re-opened without a bind');
    }
    return entries;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    this.boundSocket = undefined;
    await c?.unbind().catch(() => undefined);
  }
}
