/**
 * Many VMs in the stoney cloud directory, as a site of several hypervisors holds them: per VM its
 * entry (sstNode, pool), `ou=devices` with one qcow2 disk, `ou=backup`, and its DHCP host entry.
 * As LDIF for slapadd (benchmarks load thousands at slapd's start) or added over LDAP (tests).
 */
import type { LdapClient } from '../../adapters/ldap/client.js';
import { vmBackupDn, vmDn } from '../../core/naming.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';

export interface FleetVm {
  vm: string;
  node: string;
  pool: string;
}

/** `count` VMs named `<prefix>-<i>`, dealt over `nodes` in turn, all in `pool`. */
export function fleetVms(prefix: string, count: number, nodes: readonly string[], pool: string): FleetVm[] {
  return Array.from({ length: count }, (_, i) => ({ vm: `${prefix}-${String(i).padStart(5, '0')}`, node: nodes[i % nodes.length]!, pool }));
}

function entries(v: FleetVm, i: number): Array<{ dn: string; attributes: Record<string, string | string[]> }> {
  const dn = vmDn(DEMO_SERVICE_SUBTREE, v.vm);
  const mac = `52:54:01:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  return [
    {
      dn,
      attributes: {
        objectClass: ['top', 'sstVirtualizationVirtualMachine'],
        sstVirtualMachine: v.vm,
        sstNode: v.node,
        sstVirtualMachinePool: v.pool,
        sstVirtualMachineType: 'persistent',
        sstDisplayName: `fleet VM ${i}`,
      },
    },
    { dn: `ou=devices,${dn}`, attributes: { objectClass: ['top', 'organizationalUnit'], ou: 'devices' } },
    {
      dn: `sstDisk=vda,ou=devices,${dn}`,
      attributes: {
        objectClass: ['top', 'sstVirtualizationVirtualMachineDisk'],
        sstDisk: 'vda',
        sstDevice: 'disk',
        sstType: 'file',
        sstTargetBus: 'virtio',
        sstDriverName: 'qemu',
        sstDriverType: 'qcow2',
        sstSourceFile: `/var/virtualization/vm-persistent/${v.pool}/${v.vm}-vda.disk.qcow2`,
      },
    },
    { dn: vmBackupDn(DEMO_SERVICE_SUBTREE, v.vm), attributes: { objectClass: ['top', 'organizationalUnit'], ou: 'backup' } },
    {
      dn: `cn=${v.vm},cn=config-01,ou=dhcp,ou=networks,${DEMO_SERVICE_SUBTREE}`,
      attributes: { objectClass: ['top', 'dhcpHost'], cn: v.vm, dhcpHWAddress: `ethernet ${mac}`, dhcpStatements: `fixed-address 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
    },
  ];
}

/** The fleet's entries as LDIF (parents first), to append to the demo directory's seed. */
export function fleetLdif(vms: readonly FleetVm[]): string {
  const out: string[] = [];
  vms.forEach((v, i) => {
    for (const e of entries(v, i + 1)) {
      out.push(`dn: ${e.dn}`);
      for (const [k, val] of Object.entries(e.attributes)) for (const x of Array.isArray(val) ? val : [val]) out.push(`${k}: ${x}`);
      out.push('');
    }
  });
  return `${out.join('\n')}\n`;
}

/** Adds the fleet's entries to a running directory, a few VMs at a time. */
export async function addFleetVms(directory: LdapClient, vms: readonly FleetVm[]): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < vms.length; i = next++) for (const e of entries(vms[i]!, i + 1)) await directory.add(e.dn, e.attributes);
  };
  await Promise.all(Array.from({ length: 4 }, lane));
}
