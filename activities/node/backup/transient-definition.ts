/**
 * A transient VM gets no definition from a backup (docs/vm-shapes.md, transient). libvirt 9.0 breaks
 * that for a domain that was undefined while it ran: an external snapshot and a block-commit pivot
 * write its XML to /etc/libvirt/qemu although libvirt keeps calling it transient (`dominfo`:
 * Persistent no). Nothing happens until libvirtd next starts: then it loads the file and the VM is
 * defined behind the operator's back, after a backup interrupted between snapshot and merge even on
 * an overlay that no longer exists. Measured here: `virsh undefine` of a running domain, then
 * `snapshot-create-as --disk-only`, writes the file; a domain started with `virsh create` gets none.
 *
 * So after the snapshot and after the merge, a VM the preflight found transient, and that libvirt
 * still calls transient, loses that file. A VM somebody defined meanwhile keeps its definition.
 */
import { DomainNotFoundError } from '../../../adapters/host/virsh.js';
import type { PreparedBackup } from '../../../core/backup-plan.js';
import { libvirtDefinitionPath } from '../../../core/layout.js';
import type { NodeDeps } from '../deps.js';

/** Returns the removal step; it answers with a warning when it removed a file, else undefined. */
export function createStrayDefinitionRemoval(deps: Pick<NodeDeps, 'virsh' | 'files'>) {
  const { virsh, files } = deps;
  return async function removeStrayDefinition(p: PreparedBackup): Promise<string | undefined> {
    if (p.persistent) return undefined;
    const file = libvirtDefinitionPath(p.plan.vm);
    if (!(await files.exists(file))) return undefined;
    const persistentNow = await virsh.isPersistent(p.plan.vm).catch((e) => {
      if (e instanceof DomainNotFoundError) return false; // stopped: the file is all that is left of it
      throw e;
    });
    if (persistentNow) return undefined;
    await files.remove(file);
    return `removed ${file}: libvirt wrote it for the transient ${p.plan.vm} during the backup and would define the VM at its next start`;
  };
}
