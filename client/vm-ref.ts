/**
 * A VM as the operator names it: its UUID (sstVirtualMachine), its libvirt name (the same in stoney
 * cloud, resolved through libvirt's UUID otherwise) or its display name, and the backup to restore.
 */
import { Virsh } from '../adapters/host/virsh.js';
import type { LeafSummary, VmSummary } from '../core/directory-model.js';
import { Code } from '../core/exit-codes.js';
import { isLeafOu } from '../core/naming.js';
import { FINISHED } from '../core/provisioning.js';
import { CliError, type CliContext } from './cli-context.js';

export async function resolveVm(ctx: CliContext, ref: string): Promise<VmSummary> {
  if (!ref || ref.length > 256) throw new CliError(Code.CANNOT_FIND_MACHINE, `"${ref}" is not a VM name or UUID`);
  const direct = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(ref) ? await ctx.directory.vm(ref) : undefined;
  if (direct) return direct;
  // a libvirt name whose domain UUID is the VM's sstVirtualMachine
  const uuid = await new Virsh()
    .exec(['domuuid', ref])
    .then((s) => s.trim())
    .catch(() => '');
  if (uuid) {
    const byUuid = await ctx.directory.vm(uuid);
    if (byUuid) return byUuid;
  }
  const byName = await ctx.directory.vmsByDisplayName(ref);
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) throw new CliError(Code.CANNOT_FIND_MACHINE, `"${ref}" names ${byName.length} VMs; use the UUID`);
  throw new CliError(Code.CANNOT_FIND_MACHINE, `no VM "${ref}" in the directory (by UUID, libvirt name or display name)`);
}

/** The backup to restore or verify: by ou, or the newest finished one. */
export async function chooseBackup(ctx: CliContext, vm: string, ou?: string): Promise<LeafSummary> {
  if (ou !== undefined && !isLeafOu(ou)) throw new CliError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `"${ou}" is not a backup name (YYYYMMDDTHHMMSSZ, UTC)`);
  const leaves = await ctx.directory.leavesOf(vm);
  if (ou !== undefined) {
    const leaf = leaves.find((l) => l.ou === ou);
    if (!leaf) throw new CliError(Code.MISSING_NECESSARY_FILES, `VM ${vm} has no backup ${ou} (it has: ${leaves.map((l) => l.ou).join(', ') || 'none'})`);
    return leaf;
  }
  const finished = leaves.filter((l) => l.mode === FINISHED && (l.returnValue ?? 0) === 0);
  if (finished.length === 0) throw new CliError(Code.MISSING_NECESSARY_FILES, `VM ${vm} has no finished backup`);
  return finished[finished.length - 1]!;
}
