/**
 * Distinguished names and search filters, built and read with proper escaping (RFC 4514 for DNs,
 * RFC 4515 for filters), so a VM name or ou from the directory can never change the meaning of a
 * DN or a filter. Pure (no Node modules): workflows use it too.
 */
export interface Rdn {
  attribute: string;
  value: string;
}

export class DnSyntaxError extends Error {
  constructor(dn: string, detail: string) {
    super(`invalid DN "${dn}": ${detail}`);
    this.name = 'DnSyntaxError';
  }
}

/** Escapes an attribute value for use inside a DN (RFC 4514 §2.4). */
export function escapeDnValue(value: string): string {
  let out = value.replace(/[\\,+"<>;=\0]/g, (c) => (c === '\0' ? '\\00' : `\\${c}`));
  if (out.startsWith(' ') || out.startsWith('#')) out = `\\${out}`;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** Escapes a value for use inside a search filter (RFC 4515 §3). */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\*()\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

// TextEncoder/TextDecoder exist both in Node and in the workflow sandbox (Buffer does not).
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Splits a DN into its RDNs, most specific first. Multi-valued RDNs (`a=1+b=2`) are rejected. */
export function parseDn(dn: string): Rdn[] {
  const rdns: Rdn[] = [];
  let i = 0;
  const n = dn.length;
  while (i < n) {
    while (i < n && dn[i] === ' ') i++;
    const eq = dn.indexOf('=', i);
    if (eq < 0) throw new DnSyntaxError(dn, `no "=" after position ${i}`);
    const attribute = dn.slice(i, eq).trim();
    if (!/^([A-Za-z][A-Za-z0-9-]*|\d+(\.\d+)*)$/.test(attribute)) throw new DnSyntaxError(dn, `bad attribute type "${attribute}"`);
    i = eq + 1;
    const bytes: number[] = [];
    let lastSignificant = 0;
    const pushChar = (s: string, significant: boolean) => {
      for (const b of encoder.encode(s)) bytes.push(b);
      if (significant) lastSignificant = bytes.length;
    };
    while (i < n && dn[i] === ' ') i++;
    for (; i < n; i++) {
      const c = dn[i]!;
      if (c === ',') break;
      if (c === '+') throw new DnSyntaxError(dn, 'multi-valued RDNs are not supported');
      if (c === '\\') {
        const hex = /^[0-9A-Fa-f]{2}/.exec(dn.slice(i + 1, i + 3));
        if (hex) {
          bytes.push(parseInt(hex[0], 16));
          lastSignificant = bytes.length;
          i += 2;
        } else if (i + 1 < n) {
          pushChar(dn[i + 1]!, true);
          i += 1;
        } else {
          throw new DnSyntaxError(dn, 'trailing backslash');
        }
        continue;
      }
      pushChar(c, c !== ' ');
    }
    rdns.push({ attribute, value: decoder.decode(new Uint8Array(bytes.slice(0, lastSignificant))) });
    if (i < n) i++; // skip ','
    if (i === n && dn.endsWith(',')) throw new DnSyntaxError(dn, 'empty RDN at the end');
  }
  return rdns;
}

export function formatRdn(attribute: string, value: string): string {
  return `${attribute}=${escapeDnValue(value)}`;
}

export function formatDn(rdns: Rdn[]): string {
  return rdns.map((r) => formatRdn(r.attribute, r.value)).join(',');
}

/** Canonical form for comparisons: attribute types lower-cased, values re-escaped. */
export function normalizeDn(dn: string): string {
  return parseDn(dn)
    .map((r) => formatRdn(r.attribute.toLowerCase(), r.value))
    .join(',');
}

export function sameDn(a: string, b: string): boolean {
  return normalizeDn(a).toLowerCase() === normalizeDn(b).toLowerCase();
}

export function parentDn(dn: string): string {
  return formatDn(parseDn(dn).slice(1));
}

/** True if `dn` is `base` or below it. */
export function isUnder(dn: string, base: string): boolean {
  const d = parseDn(dn);
  const b = parseDn(base);
  if (b.length > d.length) return false;
  const tail = d.slice(d.length - b.length);
  return tail.every(
    (r, k) => r.attribute.toLowerCase() === b[k]!.attribute.toLowerCase() && r.value.toLowerCase() === b[k]!.value.toLowerCase(),
  );
}
