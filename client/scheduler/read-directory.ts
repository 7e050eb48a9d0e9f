/**
 * One read of what the schedules depend on, in four searches whatever the size of the fleet: the
 * VM entries, every VM-level and pool-level `ou=backup` configuration, and the cloud-wide entry.
 */
import type { Directory } from '../../activities/control/directory.js';
import { BACKUP_OBJECT_CLASS } from '../../core/backup-config.js';
import { normalizeDn, parentDn, parseDn } from '../../core/dn.js';
import { value, type LdapEntry } from '../../core/ldap-entry.js';
import type { DirectorySnapshot, VmRecord } from './desired.js';

const CONFIGS = `(&(ou=backup)(objectClass=${BACKUP_OBJECT_CLASS}))`;

/** DNs compared as slapd compares them: types and values case-insensitively, escaping normalised. */
function key(dn: string): string {
  try {
    return normalizeDn(dn).toLowerCase();
  } catch {
    return dn.toLowerCase();
  }
}

function rdnValue(dn: string): string | undefined {
  try {
    return parseDn(dn)[0]?.value;
  } catch {
    return undefined;
  }
}

export async function readDirectory(directory: Directory, serviceSubtree: string, cloudWideConfigurationDn: string): Promise<DirectorySnapshot> {
  const vmsBase = `ou=virtual machines,${serviceSubtree}`;
  const poolsBase = `ou=virtual machine pools,${serviceSubtree}`;
  const [vmEntries, vmConfigs, poolConfigs, cloud] = await Promise.all([
    directory.search(vmsBase, '(objectClass=sstVirtualizationVirtualMachine)', 'one', ['sstVirtualMachine', 'sstNode', 'sstVirtualMachinePool']),
    directory.search(vmsBase, CONFIGS, 'sub'),
    directory.search(poolsBase, CONFIGS, 'sub'),
    directory.get(cloudWideConfigurationDn),
  ]);
  const vmConfigByVmDn = new Map<string, LdapEntry>();
  for (const c of vmConfigs) vmConfigByVmDn.set(key(parentDn(c.dn)), c);
  const pools = new Map<string, LdapEntry[]>();
  for (const c of poolConfigs) {
    const pool = rdnValue(parentDn(c.dn));
    if (pool !== undefined) pools.set(pool, [...(pools.get(pool) ?? []), c]);
  }
  const vms: VmRecord[] = [];
  for (const e of vmEntries) {
    const vm = rdnValue(e.dn);
    if (vm === undefined) continue;
    const node = value(e, 'sstNode');
    const pool = value(e, 'sstVirtualMachinePool');
    const vmConfig = vmConfigByVmDn.get(key(e.dn));
    vms.push({ vm, ...(node ? { node } : {}), ...(pool ? { pool } : {}), ...(vmConfig ? { vmConfig } : {}) });
  }
  return { vms, poolConfigs: pools, ...(cloud ? { cloud } : {}) };
}
