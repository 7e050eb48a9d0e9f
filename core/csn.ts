/**
 * entryCSN values and the watcher's cookie. A CSN is `YYYYMMDDhhmmss.ffffffZ#count#sid#mod`
 * (OpenLDAP 2.4+; the older `YYYYMMDDhhmmssZ#count#sid#mod` is read too); CSNs of one format
 * sort as strings in the order slapd wrote them. The cookie keeps the original's file format
 * (`rid=001,csn=<CSN>`, DEFAULT_COOKIE `rid=001,csn=` = from the beginning), so a cookie file of
 * prov-backup-kvm can seed this watcher and the other way round. Pure.
 */

const CSN = /\d{14}\.\d{6}Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}/i;
const OLD_CSN = /\d{14}Z#\d{6}#\d{2}#\d{6}/;

/** Before every CSN slapd writes (the original's fallback was 20000101…, which this also precedes). */
export const BEGINNING_CSN = '00000000000000.000000Z#000000#000#000000';

/** The CSN in a cookie or any text, in the current format, or undefined when there is none. */
export function csnOf(text: string): string | undefined {
  const m = CSN.exec(text);
  if (m) return m[0];
  const old = OLD_CSN.exec(text);
  if (!old) return undefined;
  // 20130101120000Z#000001#00#000000 → 20130101120000.000000Z#000001#000#000000
  const [stamp, count, sid, mod] = old[0].split('#') as [string, string, string, string];
  return `${stamp.slice(0, 14)}.000000Z#${count}#0${sid}#${mod}`;
}

export function isCsn(text: string): boolean {
  return CSN.test(text) && csnOf(text) === text;
}

/** The cookie file's text for a position. */
export function formatCookie(csn: string, rid = '001'): string {
  return `rid=${rid},csn=${csn}`;
}

/** The rid of a cookie (kept when the watcher rewrites it), default 001. */
export function cookieRid(cookie: string): string {
  return /(?:^|,)rid=(\d{1,3})(?:,|$)/.exec(cookie)?.[1] ?? '001';
}

/** The position a cookie names: its CSN, or the beginning for the default cookie `rid=001,csn=`. */
export function cookiePosition(cookie: string | undefined): string {
  return (cookie && csnOf(cookie)) || BEGINNING_CSN;
}

/**
 * A CSN `seconds` earlier, as the lower bound of a search that must also return writes slapd
 * committed after a later CSN (CSNs are taken when an operation starts, not when it commits).
 */
export function csnMinusSeconds(csn: string, seconds: number): string {
  if (csn === BEGINNING_CSN) return csn;
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.(\d{6})Z/.exec(csn);
  if (!m) return csn;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s) - seconds * 1000);
  if (t.getUTCFullYear() < 1) return BEGINNING_CSN;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp =
    `${p(t.getUTCFullYear(), 4)}${p(t.getUTCMonth() + 1)}${p(t.getUTCDate())}` +
    `${p(t.getUTCHours())}${p(t.getUTCMinutes())}${p(t.getUTCSeconds())}`;
  return `${stamp}.${m[7]}Z#000000#000#000000`;
}

export function maxCsn(a: string, b: string): string {
  return a >= b ? a : b;
}
