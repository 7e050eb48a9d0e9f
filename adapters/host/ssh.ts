/**
 * CLISSH ([Service] TRANSPORTAPI, docs/configuration.md): every command of the node runs on the
 * hypervisor behind `[Gateway] HOST` as `USER`, authenticated with the key in `DSA_FILE` (any key
 * type OpenSSH reads), through the OpenSSH client.
 *
 * Why the OpenSSH client and not an SSH library: it reads every key type and the operator's
 * known_hosts as OpenSSH does (host keys checked strictly, never accepted blindly), needs nothing
 * compiled, and each command stays one child process of the worker: the command runner's argument
 * arrays, `setpriv --pdeathsig` (a killed worker takes its ssh clients with it), cancellation by
 * killing the child, all as for LocalCLI. One connection per command (no ControlMaster): a lost
 * connection ends exactly the command that ran over it, and on the hypervisor the command itself
 * runs under `setpriv --pdeathsig KILL` too, so when its sshd session ends (the worker died, the
 * network broke) no copy goes on writing behind a retry's back.
 *
 * ssh joins its arguments into one line for the remote user's shell, so the argument array is quoted
 * here for a POSIX shell (shellQuote: each argument single-quoted), never assembled from LDAP data:
 * `exec 'setpriv' '--pdeathsig' 'KILL' '--' 'virsh' … '<path from LDAP>'`. The gateway user's login
 * shell must be a POSIX shell (sh, bash, dash).
 */
import { CommandError, guarded, idleArgv, runner, type Command, type Run } from './run.js';
import { TransportError } from './transport-error.js';
import { classifySshFailure } from '../../core/gateway.js';

export interface SshGateway {
  /** [Gateway] HOST: a host name or IP address. */
  host: string;
  /** [Gateway] PORT, default 22. */
  port: number;
  /** [Gateway] USER. */
  user: string;
  /** [Gateway] DSA_FILE: the private key; undefined (`none`) = OpenSSH's default identities. */
  identityFile?: string;
  /** [Gateway] KNOWN_HOSTS: the known_hosts file with the host's key; undefined = OpenSSH's default. */
  knownHostsFile?: string;
  /** Seconds to wait for the connection (ConnectTimeout), default 10. */
  connectTimeoutS?: number;
}

/** Characters that need no quoting in a POSIX shell word (no globbing, expansion, assignment or tilde). */
const PLAIN = /^[A-Za-z0-9_/.,:@%+-]+$/;

/**
 * One argument as a word of a POSIX shell: as it is when it has only plain characters, else in
 * single quotes, each `'` written as `'\''` (nothing is special inside single quotes).
 */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('an argument cannot contain a NUL byte');
  if (PLAIN.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The remote shell line for an argument array: `exec` and every argument quoted. */
export function remoteLine(argv: readonly string[]): string {
  return ['exec', ...argv.map(shellQuote)].join(' ');
}

/** `user@host:port`, how messages name the gateway. */
export function gatewayName(g: SshGateway): string {
  return `${g.user}@${g.host}:${g.port}`;
}

/** An ssh_config value in double quotes when it has blanks (ssh splits option values at them). */
function configValue(value: string): string {
  return /[\s"]/.test(value) ? `"${value.replaceAll('"', '')}"` : value;
}

/** ssh's options: no prompts, strict host keys, keep-alives that notice a dead peer within 30 s. */
export function sshOptions(g: SshGateway): string[] {
  const o = (kv: string) => ['-o', kv];
  return [
    ...(g.identityFile ? ['-i', g.identityFile, ...o('IdentitiesOnly=yes')] : []),
    '-p', String(g.port),
    '-l', g.user,
    ...o('BatchMode=yes'),
    ...o('StrictHostKeyChecking=yes'),
    ...(g.knownHostsFile ? o(`UserKnownHostsFile=${configValue(g.knownHostsFile)}`) : []),
    ...o(`ConnectTimeout=${g.connectTimeoutS ?? 10}`),
    ...o('ServerAliveInterval=10'),
    ...o('ServerAliveCountMax=3'),
    ...o('ControlMaster=no'),
    ...o('ControlPath=none'),
    ...o('ForwardAgent=no'),
    ...o('ForwardX11=no'),
    ...o('LogLevel=ERROR'),
    '-T',
    '-e', 'none',
  ];
}

/**
 * The local process for `file args…` on the hypervisor: `ssh … HOST -- exec setpriv --pdeathsig
 * KILL -- [ionice -c 3] file args…`, itself guarded here like any child of the worker.
 */
export function sshCommand(g: SshGateway): Command {
  if (g.host.startsWith('-')) throw new Error(`[Gateway] HOST "${g.host}" is not a host name`);
  return (file, args, idleIo = false) => {
    const remote = ['setpriv', '--pdeathsig', 'KILL', '--', ...idleArgv(file, args, idleIo)];
    return guarded('ssh', [...sshOptions(g), g.host, '--', remoteLine(remote)]);
  };
}

/** ssh's own failure (exit 255 with ssh's words) as a TransportError; a remote command's failure stays a CommandError. */
export function sshTranslate(g: SshGateway): (e: CommandError) => Error {
  return (e) => {
    if (e.exitCode !== 255 && e.exitCode !== undefined) return e;
    const problem = classifySshFailure(e.stderr);
    if (!problem) return e;
    const detail = e.stderr.trim().split('\n').slice(-2).join(' | ');
    return new TransportError(problem, gatewayName(g), detail);
  };
}

/** The command runner of CLISSH. */
export function sshRun(g: SshGateway): Run {
  return runner(sshCommand(g), sshTranslate(g));
}
