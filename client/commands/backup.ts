/**
 * `kvm-backup backup <vm> [--method live|classic]`: a backup now. The leaf is created as the control
 * instance creates it (`initialized`, which the watcher leaves alone), then the backup workflow runs
 * all phases for it and the command follows its progress to the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Code } from '../../core/exit-codes.js';
import { SNAPSHOT_METHODS, type SnapshotMethod } from '../../core/global-config.js';
import { leafTimestamp } from '../../core/naming.js';
import { INITIALIZED } from '../../core/provisioning.js';
import type { BackupOutcome } from '../../workflows/backup.js';
import { CliError, type CliContext } from '../cli-context.js';
import { follow } from '../follow.js';
import { startLeafWorkflow } from '../start-leaf-workflow.js';
import { resolveVm } from '../vm-ref.js';

export async function backupCommand(ctx: CliContext, vmArg: string, o: { method?: string; follow: boolean }): Promise<number> {
  if (o.method !== undefined && !SNAPSHOT_METHODS.includes(o.method as SnapshotMethod)) {
    throw new CliError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `--method must be one of ${SNAPSHOT_METHODS.join(', ')}`);
  }
  const vm = await resolveVm(ctx, vmArg);
  const taken = new Set((await ctx.directory.leavesOf(vm.vm)).map((l) => l.ou));
  let ou = leafTimestamp(new Date());
  while (taken.has(ou)) {
    await sleep(1_000); // one leaf per second and VM: the ou is the time
    ou = leafTimestamp(new Date());
  }
  const dn = await ctx.directory.createLeaf(vm.vm, ou, INITIALIZED);

  const handle = await startLeafWorkflow(ctx, {
    workflow: 'backupWorkflow',
    operation: 'backup',
    leafDn: dn,
    args: { leafDn: dn, ...(o.method ? { snapshotMethod: o.method } : {}) },
    summary: `backup of ${vm.vm} (${ou})`,
  });
  if (!o.follow) {
    ctx.print(`backup ${ou} of ${vm.vm} started (workflow ${handle.workflowId})`, { vm: vm.vm, ou, leafDn: dn, workflowId: handle.workflowId });
    return 0;
  }
  if (!ctx.json) console.log(`backing up ${vm.vm} as ${ou} (workflow ${handle.workflowId})`);
  const outcome = await follow<BackupOutcome>(handle, 'progress', { quiet: ctx.json });
  const t = outcome.times;
  const s = (ms?: number) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(3)} s`);
  ctx.print(
    [
      `backup ${ou} of ${vm.vm} finished: ${outcome.method} snapshot, guest paused ${outcome.pauseMs ?? 0} ms`,
      `  snapshot ${s(t.snapshot)}, merge ${s(t.merge)}, export ${s(t.retain)}; ${(outcome.bytes / 2 ** 20).toFixed(1)} MiB copied`,
      ...(outcome.rotated.length ? [`  rotated out: ${outcome.rotated.join(', ')}`] : []),
      ...outcome.warnings.map((w) => `  warning: ${w}`),
    ].join('\n'),
    outcome,
  );
  return 0;
}
