/**
 * The directory side of a backup: what a leaf asks for (VM, node, disks, effective configuration),
 * the leaf's answers (mode and return value in one modify), the LDIF export of the VM subtree with
 * its DHCP entry, and the removal of rotated leaves.
 */
import { BACKUP_OBJECT_CLASS, resolveBackupConfiguration } from '../../core/backup-config.js';
import type { BackupContext, LdapDisk } from '../../core/backup-plan.js';
import { escapeFilterValue, parseDn } from '../../core/dn.js';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import { ConfigError } from '../../core/global-config.js';
import { value, type LdapEntry } from '../../core/ldap-entry.js';
import { toLdif } from '../../core/ldif.js';
import {
  dhcpConfigDn, leafDn as makeLeafDn, NamingError, nodeTaskQueue, parseValidLeafDn, poolBackupConfigDn, vmBackupDn, vmDn, type LeafRef,
} from '../../core/naming.js';
import type { LeafChanges } from '../../core/provisioning.js';
import type { ControlDeps } from './index.js';

function asFailure(e: unknown): never {
  if (e instanceof ConfigError || e instanceof NamingError) throw failure(e.code, e.message);
  throw e;
}

export function createBackupLeafActivities(deps: ControlDeps) {
  const { directory, serviceSubtree } = deps;

  async function disksOf(vm: string): Promise<LdapDisk[]> {
    const entries = await directory.search(
      `ou=devices,${vmDn(serviceSubtree, vm)}`,
      '(&(objectClass=sstVirtualizationVirtualMachineDisk)(sstDevice=disk))',
      'one',
    );
    return entries.map((e: LdapEntry) => {
      const target = value(e, 'sstDisk') ?? '';
      const type = (value(e, 'sstType') ?? 'file').toLowerCase();
      const file = (value(e, 'sstSourceFile') ?? '').trim();
      if (type !== 'file' || !file) {
        throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${e.dn}: only file disks (sstType=file with sstSourceFile) can be backed up, not ${type}`);
      }
      if (!file.startsWith('/') || file.split('/').includes('..')) {
        throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${e.dn}: sstSourceFile "${file}" is not a clean absolute path`);
      }
      if (!/^[a-z]{2,3}[a-z]{1,2}$/.test(target)) throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${e.dn}: sstDisk "${target}" is not a target such as vda`);
      return { target, path: file };
    });
  }

  return {
    async loadBackupContext(leafDn: string): Promise<BackupContext> {
      let leaf: LeafRef;
      try {
        leaf = parseValidLeafDn(leafDn);
      } catch (e) {
        return asFailure(e);
      }
      const vmEntry = await directory.get(vmDn(serviceSubtree, leaf.vm));
      if (!vmEntry) throw failure(Code.CANNOT_FIND_MACHINE, `no VM ${leaf.vm} in the directory (${vmDn(serviceSubtree, leaf.vm)})`);
      const node = value(vmEntry, 'sstNode');
      if (!node) throw failure(Code.CANNOT_FIND_MACHINE, `VM ${leaf.vm} has no sstNode: no node to run its backup on`);
      try {
        nodeTaskQueue(node);
      } catch (e) {
        return asFailure(e);
      }
      const pool = value(vmEntry, 'sstVirtualMachinePool');
      try {
        const configuration = resolveBackupConfiguration({
          vm: await directory.get(vmBackupDn(serviceSubtree, leaf.vm)),
          pool: pool ? await directory.search(poolBackupConfigDn(serviceSubtree, pool), `(objectClass=${BACKUP_OBJECT_CLASS})`, 'base') : [],
          cloud: await directory.get(deps.cloudWideConfigurationDn),
        });
        return { leaf, node, ...(pool ? { pool } : {}), disks: await disksOf(leaf.vm), configuration };
      } catch (e) {
        return asFailure(e);
      }
    },

    async updateLeaf(dn: string, changes: LeafChanges): Promise<void> {
      await directory.modify(dn, changes);
    },

    /** The VM's subtree (VM entry, devices, backup leaves) and its DHCP host entry, as LDIF. */
    async exportLdif(vm: string): Promise<{ ldif: string; warnings: string[] }> {
      const warnings: string[] = [];
      const subtree = await directory.search(vmDn(serviceSubtree, vm), '(objectClass=*)', 'sub', ['*']);
      const depth = (dn: string) => parseDn(dn).length;
      subtree.sort((a, b) => depth(a.dn) - depth(b.dn));
      const dhcp = await directory.search(dhcpConfigDn(serviceSubtree), `(cn=${escapeFilterValue(vm)})`, 'sub', ['*']);
      if (dhcp.length !== 1) warnings.push(`expected one DHCP entry for ${vm}, found ${dhcp.length}; the LDIF has ${dhcp.length === 0 ? 'none' : 'all of them'}`);
      return { ldif: toLdif([...subtree, ...dhcp]), warnings };
    },

    /** Removes the leaves of rotated iterations (only finished ones, as the broker did). */
    async deleteLeaves(vm: string, ous: string[]): Promise<string[]> {
      const removed: string[] = [];
      for (const ou of ous) {
        const dn = makeLeafDn(serviceSubtree, vm, ou);
        const entry = await directory.get(dn);
        if (entry && value(entry, 'sstProvisioningMode') === 'finished') {
          await directory.deleteTree(dn);
          removed.push(dn);
        }
      }
      return removed;
    },
  };
}
