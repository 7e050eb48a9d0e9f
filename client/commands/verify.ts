/**
 * `kvm-backup verify <vm> [--backup OU]`: re-checks a stored backup (the latest finished one by
 * default) on the node that holds it: checksums against the manifest, `qemu-img check` of each image,
 * the state file. Exit 0 if it is sound, else the code of the first problem.
 */
import { parseValidLeafDn, workflowIdForLeaf } from '../../core/naming.js';
import { SA } from '../../core/search-attributes.js';
import type { verifyWorkflow } from '../../workflows/verify.js';
import type { CliContext } from '../cli-context.js';
import { chooseBackup, resolveVm } from '../vm-ref.js';

export async function verifyCommand(ctx: CliContext, vmArg: string, o: { backup?: string }): Promise<number> {
  const vm = await resolveVm(ctx, vmArg);
  const leaf = await chooseBackup(ctx, vm.vm, o.backup);
  const client = await ctx.temporal();
  const handle = await client.workflow.start<typeof verifyWorkflow>('verifyWorkflow', {
    taskQueue: ctx.config.temporal.controlTaskQueue,
    workflowId: workflowIdForLeaf(parseValidLeafDn(leaf.dn), 'verify'),
    args: [{ leafDn: leaf.dn }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [
      { key: SA.vm, value: vm.vm },
      { key: SA.operation, value: 'verify' },
      { key: SA.leaf, value: leaf.dn },
    ],
    staticSummary: `verify of ${vm.vm} backup ${leaf.ou} (kvm-backup CLI)`,
  });
  if (!ctx.json) console.log(`verifying backup ${leaf.ou} of ${vm.vm} (workflow ${handle.workflowId})`);
  const r = await handle.result();
  ctx.print(
    [
      `backup ${leaf.ou} of ${vm.vm} is sound: ${r.files} files, ${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${r.verified === 'sha256' ? 'every file matches the sha256 manifest' : 'no manifest (original daemon): completeness, qemu-img check and the state file only'}`,
      ...r.warnings.map((w) => `  warning: ${w}`),
    ].join('\n'),
    { vm: vm.vm, backup: leaf.ou, ...r },
  );
  return 0;
}
