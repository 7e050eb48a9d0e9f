/**
 * `kvm-backup restore <vm> [--backup OU] [--without-state] [--yes]`: the whole restore in one call.
 * The latest finished backup unless --backup names one; the RAM state unless --without-state (or the
 * configuration says so); the question before the disks are replaced unless --yes. Progress shows
 * while the files are copied; the exit code is the restore's.
 */
import { createInterface } from 'node:readline/promises';
import { Code } from '../../core/exit-codes.js';
import type { RestoreOutcome } from '../../workflows/restore.js';
import { CliError, type CliContext } from '../cli-context.js';
import { follow } from '../follow.js';
import { startLeafWorkflow } from '../start-leaf-workflow.js';
import { chooseBackup, resolveVm } from '../vm-ref.js';

export interface RestoreOptions {
  backup?: string;
  withoutState: boolean;
  yes: boolean;
}

async function ask(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export async function restoreCommand(ctx: CliContext, vmArg: string, o: RestoreOptions): Promise<number> {
  if (!o.yes && !process.stdin.isTTY) {
    throw new CliError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, 'a restore replaces the VM\'s disks: confirm with --yes (no terminal to ask on)');
  }
  const vm = await resolveVm(ctx, vmArg);
  const leaf = await chooseBackup(ctx, vm.vm, o.backup);
  // a restore of this backup already running is followed instead of started twice
  const handle = await startLeafWorkflow(ctx, {
    workflow: 'restoreWorkflow',
    operation: 'restore',
    leafDn: leaf.dn,
    args: { leafDn: leaf.dn, confirmed: o.yes, ...(o.withoutState ? { withoutState: true } : {}) },
    summary: `restore of ${vm.vm} from ${leaf.ou}`,
  });
  if (!ctx.json) console.log(`restoring ${vm.vm} from backup ${leaf.ou} (workflow ${handle.workflowId})`);
  let asked = false;
  const outcome = await follow<RestoreOutcome>(handle, 'progress', {
    quiet: ctx.json,
    onProgress: async (p) => {
      if (!p['awaitingConfirmation'] || asked) return;
      asked = true;
      const mode = o.withoutState ? 'without its RAM state (cold boot)' : 'with its RAM state';
      const go = await ask(`\nReplace the disks of ${vm.vm} with backup ${leaf.ou} and restart it ${mode}? [y/N] `);
      await handle.signal('confirmRestore', go);
    },
  });
  if (outcome.cancelled) {
    ctx.print(`restore of ${vm.vm} cancelled; nothing changed`, outcome);
    return 0;
  }
  const r = outcome.result;
  const lines = [
    `restored ${vm.vm} from ${leaf.ou}: ${r?.state} (${r?.reason}), ${r?.how === 'restored' ? 'with its RAM state' : 'started without RAM state'}`,
    `verified: ${outcome.verified === 'sha256' ? 'every file against the sha256 manifest' : 'no manifest (completeness, qemu-img check and state file only)'}`,
    ...outcome.warnings.map((w) => `warning: ${w}`),
  ];
  ctx.print(lines.join('\n'), outcome);
  return 0;
}
