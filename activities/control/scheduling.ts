/**
 * The directory side of a scheduled run (what fc-brokerd did each cycle): decide which VMs of the
 * group are backed up now and create their leaves; after a backup, find the finished iterations
 * beyond sstBackupNumberOfIterations; remove a leaf once its iteration is deleted.
 */
import { Context } from '@temporalio/activity';
import { BACKUP_OBJECT_CLASS, resolveBackupConfiguration, type BackupConfiguration } from '../../core/backup-config.js';
import { ConfigError } from '../../core/global-config.js';
import { value } from '../../core/ldap-entry.js';
import { assertVmName, isLeafOu, leafDn, NamingError, poolBackupConfigDn, vmBackupDn, vmDn } from '../../core/naming.js';
import { FINISHED, newLeafAttributes } from '../../core/provisioning.js';
import { vmBusy } from '../../core/vm-lock.js';
import type { ControlDeps } from './index.js';
import { readVmLockState } from './vm-lock.js';

export interface ScheduledCandidate {
  vm: string;
  leafDn: string;
  iterations: number;
}

export interface PreparedRun {
  ready: ScheduledCandidate[];
  skipped: Array<{ vm: string; reason: string }>;
}

/** The mode a scheduled leaf is created with: not a request, so no watcher acts on it (fc-brokerd's first mode too). */
export const SCHEDULED_LEAF_MODE = 'initialized';

export function createSchedulingActivities(deps: ControlDeps) {
  const { directory, serviceSubtree } = deps;

  async function configurationOf(vm: string, pool: string | undefined): Promise<BackupConfiguration> {
    return resolveBackupConfiguration({
      vm: await directory.get(vmBackupDn(serviceSubtree, vm)),
      pool: pool ? await directory.search(poolBackupConfigDn(serviceSubtree, pool), `(objectClass=${BACKUP_OBJECT_CLASS})`, 'base') : [],
      cloud: await directory.get(deps.cloudWideConfigurationDn),
    }).config;
  }

  /** Why `vm` is not backed up now, or undefined when it is. */
  async function reasonToSkip(vm: string, nodes: string[], ou: string): Promise<string | { iterations: number; exists: boolean }> {
    try {
      assertVmName(vm);
    } catch (e) {
      return (e as NamingError).message;
    }
    const entry = await directory.get(vmDn(serviceSubtree, vm), ['sstNode', 'sstVirtualMachinePool']);
    if (!entry) return 'the VM is no longer in the directory';
    const node = value(entry, 'sstNode');
    if (!node || !nodes.includes(node)) return `the VM is on node ${node ?? '(none)'}, not one of this site's`;
    let config: BackupConfiguration;
    try {
      config = await configurationOf(vm, value(entry, 'sstVirtualMachinePool'));
    } catch (e) {
      if (e instanceof ConfigError) return e.message;
      throw e;
    }
    if (config.excludeFromBackup) return 'sstBackupExcludeFromBackup is TRUE';
    const lock = await readVmLockState(Context.current().client, vm);
    if (vmBusy(lock)) return `the previous ${lock!.holder?.operation ?? 'operation'} of this VM is still running (${lock!.holder?.workflowId ?? 'waiting'})`;
    const existing = await directory.get(leafDn(serviceSubtree, vm, ou), ['sstProvisioningMode']);
    // our own leaf from an earlier attempt of this activity is taken up again; anybody else's is not ours
    if (existing && value(existing, 'sstProvisioningMode') !== SCHEDULED_LEAF_MODE) return `a leaf for ${ou} exists already`;
    return { iterations: config.iterations, exists: !!existing };
  }

  return {
    /** Checks each member again at run time and creates the leaves of those backed up now. */
    async prepareScheduledRun(input: { members: string[]; nodes: string[]; ou: string }): Promise<PreparedRun> {
      const run: PreparedRun = { ready: [], skipped: [] };
      for (const vm of input.members) {
        const verdict = await reasonToSkip(vm, input.nodes, input.ou);
        if (typeof verdict === 'string') {
          run.skipped.push({ vm, reason: verdict });
          continue;
        }
        const container = vmBackupDn(serviceSubtree, vm);
        if (!(await directory.get(container, ['1.1']))) {
          await directory.add(container, { objectClass: ['top', 'organizationalUnit'], ou: 'backup' });
        }
        const dn = leafDn(serviceSubtree, vm, input.ou);
        if (!verdict.exists) await directory.add(dn, newLeafAttributes(input.ou, SCHEDULED_LEAF_MODE));
        run.ready.push({ vm, leafDn: dn, iterations: verdict.iterations });
      }
      return run;
    },

    /**
     * The finished leaves of `vm` beyond the newest `keep`, oldest first (fc-brokerd deleted the
     * oldest finished leaf when there were more than sstBackupNumberOfIterations). Leaves whose ou
     * is no timestamp are left alone.
     */
    async finishedLeavesBeyond(input: { vm: string; keep: number }): Promise<string[]> {
      const leaves = await directory.search(vmBackupDn(serviceSubtree, input.vm), '(objectClass=sstProvisioning)', 'one', ['ou', 'sstProvisioningMode']);
      const finished = leaves
        .filter((l) => value(l, 'sstProvisioningMode') === FINISHED)
        .map((l) => value(l, 'ou') ?? '')
        .filter(isLeafOu)
        .sort()
        .reverse();
      return finished.slice(Math.max(1, input.keep)).reverse().map((ou) => leafDn(serviceSubtree, input.vm, ou));
    },

    /** Removes a leaf whose iteration was deleted (mode `deleted`); any other leaf stays. */
    async removeDeletedLeaf(dn: string): Promise<boolean> {
      const leaf = await directory.get(dn, ['sstProvisioningMode']);
      if (!leaf || value(leaf, 'sstProvisioningMode') !== 'deleted') return false;
      await directory.deleteTree(dn);
      return true;
    },
  };
}
