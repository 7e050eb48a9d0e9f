/**
 * A directory entry as plain data (what activities return and workflows receive): attribute names
 * as the server spells them (so an LDIF export reads like the directory), every value a string.
 * LDAP attribute names are case-insensitive, and so are the lookups here.
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
    if (list.length > 0) out[name] = list.map(String);
  }
  return { dn, attributes: out };
}

export function values(entry: LdapEntry, name: string): string[] {
  const exact = entry.attributes[name];
  if (exact) return exact;
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(entry.attributes)) if (k.toLowerCase() === wanted) return v;
  return [];
}

export function value(entry: LdapEntry, name: string): string | undefined {
  return values(entry, name)[0];
}

export function hasObjectClass(entry: LdapEntry, objectClass: string): boolean {
  const wanted = objectClass.toLowerCase();
  return values(entry, 'objectClass').some((oc) => oc.toLowerCase() === wanted);
}
