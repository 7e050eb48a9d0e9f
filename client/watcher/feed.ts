/**
 * Follows the directory below SERVICE_SUBTREE by polling entryCSN on one bound connection (why
 * polling and not the syncrepl feed: BENCHMARKS.md, "LDAP watcher"). Every poll searches
 * SEARCH_FILTER with %entryCSN% = the cookie minus a few seconds, because slapd takes a CSN when
 * an operation starts, not when it commits, so a write may appear after a later CSN was seen; what
 * the overlap returns again is skipped by (DN, CSN). Entries go to the handler one at a time in
 * CSN order, and the cookie advances only past entries the handler finished, so a crash or a
 * failure replays them, and the workflow IDs make the replay harmless.
 *
 * Catching up is the same code: after a restart or a lost connection the next poll starts at the
 * cookie. Deletions leave no entry to find; the naming context's contextCSN moving without a
 * changed entry tells the scheduler something went away. Pending requests (state 0) are also swept
 * at start and when the local date changes, for requests dated a later day.
 */
import { isDirectoryUnreachable, type LdapClient } from '../../adapters/ldap/client.js';
import { csnMinusSeconds, maxCsn } from '../../core/csn.js';
import { escapeFilterValue, isUnder } from '../../core/dn.js';
import type { ChangedEntry } from './classify.js';
import { localDate } from './classify.js';
import type { CookieStore } from './cookie-store.js';
import { value, values, type LdapEntry } from '../../core/ldap-entry.js';
import { Transient, type Outcome } from './dispatcher.js';
import { errorText, type Log } from './log.js';

export interface FeedOptions {
  /** The watcher's long-lived LDAP session (adapters/ldap/client.ts). */
  ldap: LdapClient;
  serviceSubtree: string;
  /** [Database] SEARCH_FILTER; `%entryCSN%` is replaced by the lower bound of each poll. */
  searchFilter: string;
  cookies: CookieStore;
  pollIntervalMs: number;
  /** How far behind the cookie each poll starts (seconds). */
  lookbackSeconds: number;
  log: Log;
  handle(entry: ChangedEntry): Promise<Outcome>;
  /** Something outside the leaves changed or was deleted (the scheduler re-reads the directory). */
  onDirectoryChange(): void;
  now?: () => Date;
}

const ATTRIBUTES = ['entryCSN', 'sstProvisioningMode', 'sstProvisioningState', 'sstProvisioningExecutionDate'];
const PAGE_SIZE = 500;
const MAX_BACKOFF_MS = 30_000;

export function toChangedEntry(e: LdapEntry): ChangedEntry {
  const out: ChangedEntry = { dn: e.dn, csn: value(e, 'entryCSN') ?? '' };
  const mode = value(e, 'sstProvisioningMode');
  const state = value(e, 'sstProvisioningState');
  const date = value(e, 'sstProvisioningExecutionDate');
  if (mode !== undefined) out.mode = mode;
  if (state !== undefined) out.state = state;
  if (date !== undefined) out.executionDate = date;
  return out;
}

export class DirectoryFeed {
  private stopped = false;
  private wake: (() => void) | undefined;
  /** DN → CSN of entries handled, for the overlap of consecutive polls. */
  private readonly seen = new Map<string, string>();
  private cookie = '';
  private namingContext: string | undefined | null = null;
  private lastContextCsn: string | undefined;
  private sweptOn: string | undefined;
  private cookieTrouble = false;
  /** Polls completed since start (tests and the benchmark wait on it). */
  polls = 0;

  constructor(private readonly o: FeedOptions) {
    if (!o.searchFilter.includes('%entryCSN%')) {
      throw new Error(`SEARCH_FILTER "${o.searchFilter}" has no %entryCSN%: the watcher could not keep its position`);
    }
  }

  /** Polls until stop(); never throws for directory or Temporal trouble (it backs off and retries). */
  async run(): Promise<void> {
    const { log } = this.o;
    this.cookie = await this.o.cookies.read();
    log.info('following the directory', { base: this.o.serviceSubtree, from: this.cookie, everyMs: this.o.pollIntervalMs });
    let backoffMs = 0;
    let outageSince: number | undefined;
    while (!this.stopped) {
      const began = Date.now();
      try {
        await this.poll();
        if (outageSince !== undefined) log.info('directory reachable again; caught up from the cookie', { afterMs: Date.now() - outageSince });
        outageSince = undefined;
        backoffMs = 0;
      } catch (e) {
        if (!(isDirectoryUnreachable(e) || e instanceof Transient)) throw e;
        if (outageSince === undefined) log.warn('directory or Temporal unreachable, or refusing; retrying with backoff', { error: errorText(e) });
        outageSince ??= Date.now();
        backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(250, backoffMs * 2));
        await this.sleep(backoffMs);
        continue;
      }
      this.polls++;
      await this.sleep(Math.max(0, this.o.pollIntervalMs - (Date.now() - began)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async poll(): Promise<void> {
    const contextCsn = await this.contextCsn();
    const today = localDate(this.o.now?.() ?? new Date());
    if (this.sweptOn !== today) {
      await this.sweep();
      this.sweptOn = today;
    }
    const from = csnMinusSeconds(this.cookie, this.o.lookbackSeconds);
    const filter = this.o.searchFilter.replaceAll('%entryCSN%', escapeFilterValue(from));
    const found = (await this.o.ldap.search(this.o.serviceSubtree, { scope: 'sub', filter, attributes: ATTRIBUTES, pageSize: PAGE_SIZE }))
      .map(toChangedEntry)
      .filter((e) => e.csn !== '' && this.seen.get(e.dn) !== e.csn)
      .sort((a, b) => (a.csn < b.csn ? -1 : a.csn > b.csn ? 1 : 0));
    let position = this.cookie;
    try {
      for (const entry of found) {
        await this.handleOne(entry);
        position = maxCsn(position, entry.csn);
      }
    } finally {
      if (position !== this.cookie) {
        this.cookie = position;
        await this.saveCookie();
      }
    }
    if (contextCsn !== undefined && this.lastContextCsn !== undefined && contextCsn !== this.lastContextCsn && found.length === 0) {
      this.o.onDirectoryChange(); // a deletion: no entry to show for it
    }
    this.lastContextCsn = contextCsn;
    for (const [dn, csn] of this.seen) if (csn < from) this.seen.delete(dn);
  }

  /** A cookie that cannot be written costs a longer replay after a restart, never a request: warn and go on. */
  private async saveCookie(): Promise<void> {
    try {
      await this.o.cookies.write(this.cookie);
      if (this.cookieTrouble) this.o.log.info('the cookie file is written again', { file: this.o.cookies.file });
      this.cookieTrouble = false;
    } catch (e) {
      if (!this.cookieTrouble) this.o.log.error('cannot write the cookie file; a restart will replay more', { file: this.o.cookies.file, error: errorText(e) });
      this.cookieTrouble = true;
    }
  }

  /** One entry; a handler bug is logged and skipped (it must not stop the watcher), passing trouble is rethrown. */
  private async handleOne(entry: ChangedEntry, sweeping = false): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await this.o.handle(entry);
    } catch (e) {
      if (e instanceof Transient || isDirectoryUnreachable(e)) throw e;
      this.o.log.error('could not handle a changed entry; skipped', { dn: entry.dn, error: errorText(e) });
      this.seen.set(entry.dn, entry.csn);
      return;
    }
    if (outcome.kind === 'directory-change' && !sweeping) this.o.onDirectoryChange();
    // a request for a later day stays unseen, so the next day's sweep takes it up
    if (outcome.kind !== 'deferred') this.seen.set(entry.dn, entry.csn);
  }

  /** Every pending request, whatever the cookie says: requests for today that waited, and anything left over. */
  private async sweep(): Promise<void> {
    const pending = await this.o.ldap.search(this.o.serviceSubtree, {
      scope: 'sub',
      filter: '(&(objectClass=sstProvisioning)(sstProvisioningState=0))',
      attributes: ATTRIBUTES,
      pageSize: PAGE_SIZE,
    });
    for (const entry of pending.map(toChangedEntry)) if (this.seen.get(entry.dn) !== entry.csn) await this.handleOne(entry, true);
  }

  /** contextCSN of the naming context holding the service subtree (undefined without syncprov). */
  private async contextCsn(): Promise<string | undefined> {
    if (this.namingContext === null) {
      const root = await this.o.ldap.search('', { scope: 'base', attributes: ['namingContexts'] });
      const contexts = root[0] ? values(root[0], 'namingContexts') : [];
      this.namingContext = contexts.find((c) => isUnder(this.o.serviceSubtree, c));
    }
    if (!this.namingContext) return undefined;
    const [suffix] = await this.o.ldap.search(this.namingContext, { scope: 'base', attributes: ['contextCSN'] });
    // one value per server id in a multi-master directory; any of them moving is a change
    const csns = suffix ? [...values(suffix, 'contextCSN')].sort() : [];
    return csns.length ? csns.join(' ') : undefined;
  }
}
