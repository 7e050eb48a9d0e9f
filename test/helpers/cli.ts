/** Runs the real `kvm-backup` CLI (dist/client/cli.js) as an operator would, against a test world. */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { World } from './world.js';

const CLI = fileURLToPath(new URL('../../client/cli.js', import.meta.url));

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function cli(world: World | undefined, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  const r = await execa(process.execPath, [CLI, ...args, ...(world ? ['--config', world.configFile] : [])], {
    reject: false,
    timeout: options.timeoutMs ?? 120_000,
    ...(options.input !== undefined ? { input: options.input } : {}),
    env: { ...process.env, KVM_BACKUP_SDK_LOG_LEVEL: 'ERROR' },
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
