/**
 * `kvm-backup verify <vm> [--backup OU]`: re-checks a stored backup (the latest finished one by
 * default) on the node that holds it: checksums against the manifest, `qemu-img check` of each image,
 * the state file. Exit 0 if it is sound, else the code of the first problem.
 */
import type { verifyWorkflow } from '../../workflows/verify.js';
import type { CliContext } from '../cli-context.js';
import { startLeafWorkflow } from '../start-leaf-workflow.js';
import { chooseBackup, resolveVm } from '../vm-ref.js';

export async function verifyCommand(ctx: CliContext, vmArg: string, o: { backup?: string }): Promise<number> {
  const vm = await resolveVm(ctx, vmArg);
  const leaf = await chooseBackup(ctx, vm.vm, o.backup);
  const handle = await startLeafWorkflow(ctx, {
    workflow: 'verifyWorkflow',
    operation: 'verify',
    leafDn: leaf.dn,
    args: { leafDn: leaf.dn },
    summary: `verify of ${vm.vm} backup ${leaf.ou}`,
  });
  if (!ctx.json) console.log(`verifying backup ${leaf.ou} of ${vm.vm} (workflow ${handle.workflowId})`);
  const r = (await handle.result()) as Awaited<ReturnType<typeof verifyWorkflow>>;
  ctx.print(
    [
      `backup ${leaf.ou} of ${vm.vm} is sound: ${r.files} files, ${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${r.verified === 'sha256' ? 'every file matches the sha256 manifest' : 'no manifest (original daemon): completeness, qemu-img check and the state file only'}`,
      ...r.warnings.map((w) => `  warning: ${w}`),
    ].join('\n'),
    { vm: vm.vm, backup: leaf.ou, ...r },
  );
  return 0;
}
