/**
 * The directory side of a scheduled run (what fc-brokerd did each cycle): decide which VMs of the
 * group are backed up now and create their leaves; after a backup, find the finished iterations
 * the VM's retention does not keep (core/retention.ts); remove a leaf once its iteration is deleted.
 */
import { Context } from '@temporalio/activity';
import { readVmLockState } from '../../adapters/temporal/vm-lock-state.js';
import type { BackupConfiguration } from '../../core/backup-config.js';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import { ConfigError, DEFAULT_MAX_CONCURRENT_BACKUPS } from '../../core/global-config.js';
import { assertVmName, leafDn, NamingError } from '../../core/naming.js';
import { DELETED, FINISHED, INITIALIZED } from '../../core/provisioning.js';
import { iterationsBeyond, retentionPolicy, type RetentionPolicy } from '../../core/retention.js';
import { vmBusy } from '../../core/vm-lock.js';
import type { ControlDeps } from './deps.js';

export interface ScheduledCandidate {
  vm: string;
  leafDn: string;
  /** sstBackupNumberOfIterations (keep-last). */
  iterations: number;
  /** The whole policy; absent in candidates of runs started before the calendar rules existed. */
  retention?: RetentionPolicy;
  /** The VM's sstNode at preparation (absent in histories from before the batches). */
  node?: string;
}

export interface PreparedRun {
  ready: ScheduledCandidate[];
  skipped: Array<{ vm: string; reason: string }>;
  /** Backups per node at once ([Backup] MAX_CONCURRENT_BACKUPS of this control worker, 0 = no limit). */
  slots?: number;
}

/** Members checked at once within one call (LDAP reads and a Temporal describe each). */
const PREPARE_CONCURRENCY = 8;

export function createSchedulingActivities({ directory, maxConcurrentBackups }: ControlDeps) {
  /** Why `vm` is not backed up now, or its retention, node and whether our leaf exists already. */
  async function reasonToSkip(vm: string, nodes: string[], ou: string): Promise<string | { retention: RetentionPolicy; exists: boolean; node: string }> {
    try {
      assertVmName(vm);
    } catch (e) {
      return (e as NamingError).message;
    }
    const entry = await directory.vm(vm);
    if (!entry) return 'the VM is no longer in the directory';
    if (!entry.node || !nodes.includes(entry.node)) return `the VM is on node ${entry.node ?? '(none)'}, not one of this site's`;
    let config: BackupConfiguration;
    try {
      config = (await directory.effectiveConfiguration(vm, entry.pool)).config;
    } catch (e) {
      if (e instanceof ConfigError) return e.message;
      throw e;
    }
    if (config.excludeFromBackup) return 'sstBackupExcludeFromBackup is TRUE';
    const lock = await readVmLockState(Context.current().client, vm);
    if (vmBusy(lock)) return `the previous ${lock!.holder?.operation ?? 'operation'} of this VM is still running (${lock!.holder?.workflowId ?? 'waiting'})`;
    const existing = await directory.leaf(leafDn(directory.serviceSubtree, vm, ou));
    // our own leaf from an earlier attempt of this activity is taken up again; anybody else's is not ours
    if (existing && existing.mode !== INITIALIZED) return `a leaf for ${ou} exists already`;
    return { retention: retentionPolicy(config), exists: !!existing, node: entry.node };
  }

  return {
    /**
     * Checks each member again at run time and creates the leaves of those backed up now; the
     * members in their order, a few at a time. A scheduled run calls it once per chunk of its group.
     */
    async prepareScheduledRun(input: { members: string[]; nodes: string[]; ou: string }): Promise<PreparedRun> {
      const verdicts: Array<{ vm: string; skip?: string; candidate?: ScheduledCandidate }> = [];
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < input.members.length; i = next++) {
          const vm = input.members[i]!;
          const verdict = await reasonToSkip(vm, input.nodes, input.ou);
          if (typeof verdict === 'string') {
            verdicts[i] = { vm, skip: verdict };
            continue;
          }
          const dn = verdict.exists ? leafDn(directory.serviceSubtree, vm, input.ou) : await directory.createLeaf(vm, input.ou, INITIALIZED);
          verdicts[i] = { vm, candidate: { vm, leafDn: dn, iterations: verdict.retention.last, retention: verdict.retention, node: verdict.node } };
        }
      };
      await Promise.all(Array.from({ length: Math.min(PREPARE_CONCURRENCY, input.members.length) }, lane));
      const run: PreparedRun = { ready: [], skipped: [], slots: maxConcurrentBackups ?? DEFAULT_MAX_CONCURRENT_BACKUPS };
      for (const v of verdicts) {
        if (v.candidate) run.ready.push(v.candidate);
        else run.skipped.push({ vm: v.vm, reason: v.skip! });
      }
      return run;
    },

    /**
     * The DNs of the finished leaves of `vm` its retention does not keep, oldest first: `retention`
     * when given, else keep-last `keep` (fc-brokerd deleted the oldest finished leaf when there were
     * more than sstBackupNumberOfIterations; runs started before the calendar rules pass only that).
     * Leaves in any other mode are neither counted nor deleted.
     */
    async finishedLeavesBeyond(input: { vm: string; keep: number; retention?: RetentionPolicy }): Promise<string[]> {
      const finished = (await directory.leavesOf(input.vm)).filter((l) => l.mode === FINISHED).map((l) => l.ou);
      return iterationsBeyond(finished, input.retention ?? input.keep).map((ou) => leafDn(directory.serviceSubtree, input.vm, ou));
    },

    /**
     * The retention policy of `vm` from its effective configuration now (VM → pool → cloud-wide).
     * Errors: 23 when the VM is not in the directory, 39 for a name that is no VM name, 32 or 39
     * from the configuration.
     */
    async retentionOf(vm: string): Promise<RetentionPolicy> {
      try {
        const entry = await directory.vm(assertVmName(vm));
        if (!entry) throw failure(Code.CANNOT_FIND_MACHINE, `no VM ${vm} in the directory`);
        return retentionPolicy((await directory.effectiveConfiguration(vm, entry.pool)).config);
      } catch (e) {
        if (e instanceof ConfigError || e instanceof NamingError) throw failure(e.code, e.message);
        throw e;
      }
    },

    /** Removes a leaf whose iteration was deleted (mode `deleted`); any other leaf stays. */
    async removeDeletedLeaf(dn: string): Promise<boolean> {
      const leaf = await directory.leaf(dn);
      if (!leaf || leaf.mode !== DELETED) return false;
      await directory.removeLeaf(dn);
      return true;
    },
  };
}
