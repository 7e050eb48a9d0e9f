/**
 * Verify one stored backup where it lies (`kvm-backup verify`): checksums against the manifest,
 * `qemu-img check` of each image, the state file. Changes nothing, so it needs no VM lock and
 * writes nothing to the leaf; the result (or the code of the first problem) is the workflow's.
 */
import { upsertSearchAttributes } from '@temporalio/workflow';
import type { VerifyRecord } from '../activities/node/restore/index.js';
import { codeOf, failure, messageOf } from '../core/failures.js';
import { SA } from '../core/search-attributes.js';
import { directory } from './leaf-protocol.js';
import { nodeProxies } from './node-proxies.js';

export interface VerifyRequest {
  leafDn: string;
}

export async function verifyWorkflow({ leafDn }: VerifyRequest): Promise<VerifyRecord & { backupDir: string }> {
  upsertSearchAttributes([{ key: SA.operation, value: 'verify' }, { key: SA.leaf, value: leafDn }, { key: SA.phase, value: 'verify' }]);
  const ctx = await directory.loadBackupContext(leafDn);
  upsertSearchAttributes([{ key: SA.vm, value: ctx.leaf.vm }, { key: SA.node, value: ctx.node }]);
  // a damaged backup stays damaged: the codes that say so are not retried (core/failures.ts)
  const node = nodeProxies(ctx.node, { attempts: 3 });
  try {
    const plan = await node.quick(`find backup ${ctx.leaf.ou} of ${ctx.leaf.vm}`).locateBackup(ctx);
    const result = await node.long(`hash every file of ${plan.backupDir}, qemu-img check, state file`).verifyBackup(plan);
    upsertSearchAttributes([{ key: SA.phase, value: 'done' }, { key: SA.exitCode, value: 0 }]);
    return { ...result, backupDir: plan.backupDir };
  } catch (e) {
    // the code of the problem, for `status` and the UI; the failure itself keeps it too
    upsertSearchAttributes([{ key: SA.phase, value: 'failed' }, { key: SA.exitCode, value: codeOf(e) }]);
    throw failure(codeOf(e), messageOf(e), { leafDn });
  }
}
