/**
 * The directory side of a backup or restore: what a leaf asks for (VM, node, disks, effective
 * configuration), the leaf's answers (mode and return value in one modify), the LDIF export of the
 * VM subtree with its DHCP entry, and the removal of rotated leaves (docs/ldap-protocol.md).
 */
import type { BackupContext } from '../../core/backup-plan.js';
import { leafDn } from '../../core/naming.js';
import { FINISHED, type LeafChanges } from '../../core/provisioning.js';
import type { ControlDeps } from './deps.js';

export function createBackupLeafActivities({ directory }: ControlDeps) {
  return {
    loadBackupContext: (dn: string): Promise<BackupContext> => directory.loadBackupContext(dn),

    /**
     * Writes a leaf's answer (mode, return value, stamp in one modify) and returns the changes written:
     * a local activity's input is not kept in the history (its result is), so the answer is readable
     * there also when a backup holding its node slot writes it as a local activity.
     */
    async updateLeaf(dn: string, changes: LeafChanges): Promise<LeafChanges> {
      await directory.answerLeaf(dn, changes);
      return changes;
    },

    exportLdif: (vm: string) => directory.exportLdif(vm),

    /** Removes the leaves of rotated iterations (only finished ones, as the broker did). */
    async deleteLeaves(vm: string, ous: string[]): Promise<string[]> {
      const removed: string[] = [];
      const leaves = await directory.leavesOf(vm);
      for (const ou of ous) {
        const leaf = leaves.find((l) => l.ou === ou);
        if (leaf?.mode === FINISHED) {
          await directory.removeLeaf(leaf.dn);
          removed.push(leafDn(directory.serviceSubtree, vm, ou));
        }
      }
      return removed;
    },
  };
}
