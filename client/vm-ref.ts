/**
 * A VM as the operator names it: its UUID (sstVirtualMachine), its libvirt name (the same in stoney
 * cloud, resolved through libvirt's UUID otherwise) or its display name, and its backups (leaves).
 */
import { escapeFilterValue } from '../core/dn.js';
import { Code } from '../core/exit-codes.js';
import { value, type LdapEntry } from '../core/ldap-entry.js';
import { isLeafOu, vmBackupDn, vmDn } from '../core/naming.js';
import { Virsh } from '../activities/node/virsh.js';
import { CliError, type CliContext } from './cli-context.js';

export interface VmRef {
  vm: string;
  entry: LdapEntry;
  node?: string;
  pool?: string;
}

export interface Leaf {
  ou: string;
  dn: string;
  mode?: string;
  state?: string;
  returnValue?: number;
}

export async function resolveVm(ctx: CliContext, ref: string): Promise<VmRef> {
  const subtree = ctx.config.database.serviceSubtree;
  const base = `ou=virtual machines,${subtree}`;
  const found = (entry: LdapEntry): VmRef => ({
    vm: value(entry, 'sstVirtualMachine')!,
    entry,
    ...(value(entry, 'sstNode') ? { node: value(entry, 'sstNode')! } : {}),
    ...(value(entry, 'sstVirtualMachinePool') ? { pool: value(entry, 'sstVirtualMachinePool')! } : {}),
  });
  if (!ref || ref.length > 256) throw new CliError(Code.CANNOT_FIND_MACHINE, `"${ref}" is not a VM name or UUID`);
  const direct = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(ref) ? await ctx.directory.get(vmDn(subtree, ref)) : undefined;
  if (direct) return found(direct);
  // a libvirt name whose domain UUID is the VM's sstVirtualMachine
  const uuid = await new Virsh()
    .exec(['domuuid', ref])
    .then((s) => s.trim())
    .catch(() => '');
  if (uuid) {
    const byUuid = await ctx.directory.get(vmDn(subtree, uuid));
    if (byUuid) return found(byUuid);
  }
  const byName = await ctx.directory.search(base, `(&(objectClass=sstVirtualizationVirtualMachine)(sstDisplayName=${escapeFilterValue(ref)}))`, 'one');
  if (byName.length === 1) return found(byName[0]!);
  if (byName.length > 1) throw new CliError(Code.CANNOT_FIND_MACHINE, `"${ref}" names ${byName.length} VMs; use the UUID`);
  throw new CliError(Code.CANNOT_FIND_MACHINE, `no VM "${ref}" in the directory (by UUID, libvirt name or display name)`);
}

/** The backups of a VM, oldest first. */
export async function leavesOf(ctx: CliContext, vm: string): Promise<Leaf[]> {
  const entries = await ctx.directory.search(vmBackupDn(ctx.config.database.serviceSubtree, vm), '(objectClass=sstProvisioning)', 'one');
  return entries
    .map((e) => ({ e, ou: value(e, 'ou') ?? '' }))
    .filter(({ ou }) => isLeafOu(ou))
    .map(({ e, ou }) => {
      const rv = value(e, 'sstProvisioningReturnValue');
      return {
        ou,
        dn: e.dn,
        ...(value(e, 'sstProvisioningMode') ? { mode: value(e, 'sstProvisioningMode')! } : {}),
        ...(value(e, 'sstProvisioningState') ? { state: value(e, 'sstProvisioningState')! } : {}),
        ...(rv !== undefined ? { returnValue: Number(rv) } : {}),
      };
    })
    .sort((a, b) => a.ou.localeCompare(b.ou));
}

/** The backup to restore or verify: by ou, or the newest finished one. */
export async function chooseBackup(ctx: CliContext, vm: string, ou?: string): Promise<Leaf> {
  if (ou !== undefined && !isLeafOu(ou)) throw new CliError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `"${ou}" is not a backup name (YYYYMMDDTHHMMSSZ, UTC)`);
  const leaves = await leavesOf(ctx, vm);
  if (ou !== undefined) {
    const leaf = leaves.find((l) => l.ou === ou);
    if (!leaf) throw new CliError(Code.MISSING_NECESSARY_FILES, `VM ${vm} has no backup ${ou} (it has: ${leaves.map((l) => l.ou).join(', ') || 'none'})`);
    return leaf;
  }
  const finished = leaves.filter((l) => l.mode === 'finished' && (l.returnValue ?? 0) === 0);
  if (finished.length === 0) throw new CliError(Code.MISSING_NECESSARY_FILES, `VM ${vm} has no finished backup`);
  return finished[finished.length - 1]!;
}

