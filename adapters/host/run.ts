/**
 * Runs one external command with an argument array (never a shell line), for the node adapters.
 * Failures become CommandError with the command, exit code and stderr, so adapters can map them to
 * the product's exit codes. A cancelled activity passes its AbortSignal; the child is killed.
 *
 * Where the command runs is the transport's business ([Service] TRANSPORTAPI, docs/configuration.md):
 * a `Command` turns the argument array into the local process to start. LocalCLI starts it here
 * (`guarded`); CLISSH starts `ssh … -- <quoted argv>` (ssh.ts). Everything else is the same.
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
  /** Called with each chunk the child writes to stderr while it runs (dd's status=progress). */
  onStderr?: (text: string) => void;
  /** stdout as bytes (RunResult.bytes), untouched: no decoding, no final newline stripped. */
  binary?: boolean;
  /** Keep stdout exactly as written (the final newline too): file contents read with `cat`. */
  exact?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** stdout as bytes, with `binary`. */
  bytes?: Buffer;
}

export type Run = (file: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

/**
 * The local process that carries out `file args…`: [program, argv]. `idleIo` asks for idle I/O
 * priority where the command runs.
 */
export type Command = (file: string, args: readonly string[], idleIo?: boolean) => [string, string[]];

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
  return ['setpriv', ['--pdeathsig', 'KILL', '--', ...idleArgv(file, args, idleIo)]];
}

/** `file args…`, behind `ionice -c 3` when `idleIo`. */
export function idleArgv(file: string, args: readonly string[], idleIo: boolean): string[] {
  return idleIo ? ['ionice', '-c', '3', file, ...args] : [file, ...args];
}

/**
 * A Run over a transport. `translate` may turn a failed command into the transport's own error
 * (ssh.ts: a connection that was refused or lost); by default a CommandError.
 */
export function runner(command: Command, translate?: (e: CommandError) => Error): Run {
  return async (file, args, options = {}) => {
    const [cmd, argv] = command(file, args, options.idleIo);
    try {
      const child = execa(cmd, argv, {
        cancelSignal: options.signal,
        timeout: options.timeoutMs,
        input: options.input,
        env: options.env,
        forceKillAfterDelay: 5_000,
        stripFinalNewline: !options.binary && !options.exact,
        ...(options.binary ? { encoding: 'buffer' as const } : {}),
      });
      if (options.onStdout) child.stdout?.on('data', (chunk: Buffer) => options.onStdout!(chunk.toString()));
      if (options.onStderr) child.stderr?.on('data', (chunk: Buffer) => options.onStderr!(chunk.toString()));
      const result = await child;
      if (options.binary) {
        const bytes = Buffer.from(result.stdout as unknown as Uint8Array);
        return { stdout: '', stderr: Buffer.from(result.stderr as unknown as Uint8Array).toString(), bytes };
      }
      return { stdout: String(result.stdout), stderr: String(result.stderr) };
    } catch (e) {
      // execa rejects with its own error on cancellation; the activity must see the abort reason
      if (options.signal?.aborted) throw options.signal.reason;
      const err = e as { exitCode?: number; stderr?: unknown; stdout?: unknown; shortMessage?: string; message: string };
      const text = (v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString() : v === undefined ? undefined : String(v));
      const failed = new CommandError(
        `${file} ${args.slice(0, 3).join(' ')}${args.length > 3 ? ' …' : ''}`,
        err.exitCode,
        text(err.stderr) ?? err.shortMessage ?? err.message,
        text(err.stdout) ?? '',
      );
      throw translate ? translate(failed) : failed;
    }
  };
}

/** LocalCLI: the command runs on this machine. */
export const run: Run = runner(guarded);
