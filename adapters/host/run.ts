/**
 * Runs one external command with an argument array (never a shell line), for the node adapters.
 * Failures become CommandError with the command, exit code and stderr, so adapters can map them to
 * the product's exit codes. A cancelled activity passes its AbortSignal; the child is killed.
 */
import { execa } from 'execa';

export interface RunOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Text written to the child's stdin. */
  input?: string;
  /** Run at idle I/O priority (ionice -c 3), for big copies that must not starve the guests. */
  idleIo?: boolean;
  env?: Record<string, string>;
  /** Called with each chunk the child writes to stdout while it runs (progress of long commands). */
  onStdout?: (text: string) => void;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export type Run = (file: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly stdout: string,
  ) {
    const detail = (stderr || stdout).trim().split('\n').slice(-3).join(' | ');
    super(`${command} failed${exitCode === undefined ? '' : ` (exit ${exitCode})`}: ${detail || 'no output'}`);
    this.name = 'CommandError';
  }
}

/**
 * Every child gets SIGKILL when the worker dies (prctl PDEATHSIG through util-linux `setpriv`): a
 * killed worker leaves no virsh or copier behind to race the retry of its activity. libvirt
 * operations themselves run inside libvirtd and complete on their own; the retry finds their result.
 */
export function guarded(file: string, args: readonly string[], idleIo = false): [string, string[]] {
  const inner = idleIo ? ['ionice', '-c', '3', file, ...args] : [file, ...args];
  return ['setpriv', ['--pdeathsig', 'KILL', '--', ...inner]];
}

export const run: Run = async (file, args, options = {}) => {
  const [cmd, argv] = guarded(file, args, options.idleIo);
  try {
    const child = execa(cmd, argv, {
      cancelSignal: options.signal,
      timeout: options.timeoutMs,
      input: options.input,
      env: options.env,
      forceKillAfterDelay: 5_000,
      stripFinalNewline: true,
    });
    if (options.onStdout) child.stdout?.on('data', (chunk: Buffer) => options.onStdout!(chunk.toString()));
    const result = await child;
    return { stdout: result.stdout, stderr: result.stderr };
  } catch (e) {
    // execa rejects with its own error on cancellation; the activity must see the abort reason
    if (options.signal?.aborted) throw options.signal.reason;
    const err = e as { exitCode?: number; stderr?: string; stdout?: string; shortMessage?: string; message: string };
    throw new CommandError(
      `${file} ${args.slice(0, 3).join(' ')}${args.length > 3 ? ' …' : ''}`,
      err.exitCode,
      String(err.stderr ?? err.shortMessage ?? err.message),
      String(err.stdout ?? ''),
    );
  }
};
