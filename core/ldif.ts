/** LDIF (RFC 2849) writing, for the backup's export of the VM subtree and its DHCP entry. */
import type { LdapEntry } from './ldap-entry.js';

const SAFE = /^[\x01-\x09\x0B\x0C\x0E-\x1F\x21-\x39\x3B\x3D-\x7F][\x01-\x09\x0B\x0C\x0E-\x7F]*$/;

function line(name: string, value: string): string {
  const plain = value === '' || (SAFE.test(value) && !value.endsWith(' '));
  const text = plain ? `${name}: ${value}` : `${name}:: ${base64(value)}`;
  return fold(text);
}

function base64(value: string): string {
  const bytes = new TextEncoder().encode(value);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Lines longer than 76 characters continue on the next line after one space. */
function fold(text: string): string {
  if (text.length <= 76) return text;
  const parts = [text.slice(0, 76)];
  for (let i = 76; i < text.length; i += 75) parts.push(` ${text.slice(i, i + 75)}`);
  return parts.join('\n');
}

/** Entries in the given order; attribute names as the entry holds them, objectClass first. */
export function toLdif(entries: readonly LdapEntry[], header = 'version: 1'): string {
  const blocks = entries.map((e) => {
    const isOc = (n: string) => n.toLowerCase() === 'objectclass';
    const names = Object.keys(e.attributes).sort((a, b) => (isOc(a) ? -1 : isOc(b) ? 1 : 0));
    const lines = [line('dn', e.dn)];
    for (const name of names) for (const v of e.attributes[name]!) lines.push(line(name, v));
    return lines.join('\n');
  });
  return `${header}\n\n${blocks.join('\n\n')}\n`;
}
