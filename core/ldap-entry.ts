/**
 * A directory entry as plain data (what activities return and workflows receive): attribute names
 * lower-cased, every value a string. LDAP attribute names are case-insensitive; lower-casing once here
 * keeps every lookup simple.
 */
export interface LdapEntry {
  dn: string;
  attributes: Record<string, string[]>;
}

export function makeEntry(dn: string, attributes: Record<string, string | string[] | undefined>): LdapEntry {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    const list = Array.isArray(value) ? value : [value];
    if (list.length > 0) out[name.toLowerCase()] = list.map(String);
  }
  return { dn, attributes: out };
}

export function values(entry: LdapEntry, name: string): string[] {
  return entry.attributes[name.toLowerCase()] ?? [];
}

export function value(entry: LdapEntry, name: string): string | undefined {
  return values(entry, name)[0];
}

export function hasObjectClass(entry: LdapEntry, objectClass: string): boolean {
  const wanted = objectClass.toLowerCase();
  return values(entry, 'objectClass').some((oc) => oc.toLowerCase() === wanted);
}
