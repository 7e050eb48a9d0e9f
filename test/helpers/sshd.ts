/**
 * A real OpenSSH server on 127.0.0.1 for the tests that need a remote host over SSH (Debian's
 * openssh-server), one harness for both: the CLISSH gateway (`access: 'commands'`: a forced command
 * that writes every command it is asked to run into a log before running it, the proof that a
 * command went through SSH) and an SFTP repository server (`access: 'sftp'`: internal-sftp and
 * nothing else, docs/repository.md). A generated host key and its known_hosts line, generated client
 * keys (ed25519 and RSA authorized; an ECDSA key that is not), public-key logins for one user only.
 * `sshd -D -e` logs to its log file (LogLevel VERBOSE: each accepted or refused key). Started and
 * stopped by PID (stack/daemon.ts), dying with the test process; `kill()` drops every session at once,
 * as a dying server would, and `restart()` brings the server back on its port with the same keys.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, portOpen, startDaemon, type Daemon } from '../../stack/daemon.js';

export interface SshdOptions {
  /** What an authorized key may do: run any command through the logging forced command, or SFTP only. */
  access: 'commands' | 'sftp';
  /** The only user that may log in (default root). */
  user?: string;
  /** Default: a free port. */
  port?: number;
}

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  pid: number;
  user: string;
  /** Authorized private keys by type, and one the server does not know. */
  keys: { ed25519: string; rsa: string; unauthorized: string };
  /** known_hosts with this server's host key for [127.0.0.1]:port. */
  knownHosts: string;
  /** Commands run through the forced command, one per line (the remote shell line as ssh sent it); `commands` only. */
  commands(): string[];
  /** sshd's own log. */
  log(): string;
  /**
   * PIDs of the sshd processes of each connection (the listener's child and its session process)
   * with a process below them whose command line contains `needle`.
   */
  connectionsRunning(needle: string): number[];
  /**
   * From now on, each `dd` keeps its connection open `seconds` after it ended, in a process named
   * `hold-after-dd` (a window to cut the connection in while the worker waits for the copy); 0: off.
   */
  holdAfterDd(seconds: number): void;
  /** Kills every session (the per-connection sshd processes) and the server: connections drop mid-transfer. */
  kill(): Promise<void>;
  /** Starts the server again on the same port with the same keys (after stop or kill). */
  restart(): Promise<Sshd>;
  stop(): Promise<void>;
}

const WRAPPER = `#!/bin/sh
# forced command: log, then run what the client asked for (as sshd would without a forced command)
printf '%s\\n' "$SSH_ORIGINAL_COMMAND" >> "$(dirname "$0")/commands.log"
case "$SSH_ORIGINAL_COMMAND" in
  *" dd 'if="*|*" dd if="*)
    if [ -f "$(dirname "$0")/hold-after-dd" ]; then
      /bin/sh -c "$SSH_ORIGINAL_COMMAND"
      status=$?
      # a process that names itself while it holds the connection (no exec: sh stays for the ':')
      /bin/sh -c 'sleep "$1"; :' hold-after-dd "$(cat "$(dirname "$0")/hold-after-dd")"
      exit $status
    fi ;;
esac
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
`;

/** A key pair (no passphrase), made once: a restarted server keeps its keys. Returns the public key line. */
function keygen(path: string, type: string, extra: string[] = []): string {
  if (!existsSync(path)) execFileSync('ssh-keygen', ['-q', '-t', type, ...extra, '-N', '', '-C', `kvm-backup-test-${type}`, '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** PIDs of every descendant of `pid`, from /proc. */
function descendants(pid: number): number[] {
  const all: Array<[number, number]> = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      all.push([Number(e), ppidOf(Number(e))]);
    } catch {
      // ended while we looked
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of all) if (parent === p) (out.push(child), walk(child));
  };
  walk(pid);
  return out;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export async function startSshd(dir: string, o: SshdOptions): Promise<Sshd> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // privilege separation directory Debian's sshd expects (the package's service would create it)
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const user = o.user ?? 'root';
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const hostPub = keygen(hostKey, 'ed25519');
  const keys = { ed25519: join(dir, 'id_ed25519'), rsa: join(dir, 'id_rsa'), unauthorized: join(dir, 'id_ecdsa') };
  const authorizedKeys = [keygen(keys.ed25519, 'ed25519'), keygen(keys.rsa, 'rsa', ['-b', '3072'])];
  keygen(keys.unauthorized, 'ecdsa');
  const wrapper = join(dir, 'forced-command.sh');
  writeFileSync(wrapper, WRAPPER);
  chmodSync(wrapper, 0o755);
  if (!existsSync(join(dir, 'commands.log'))) writeFileSync(join(dir, 'commands.log'), '');
  const authorized = join(dir, 'authorized_keys');
  const options = o.access === 'commands' ? `command="${wrapper}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ` : '';
  writeFileSync(authorized, authorizedKeys.map((k) => `${options}${k}\n`).join(''), { mode: 0o600 });
  const port = o.port ?? (await freePort());
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`);
  const home = join(dir, 'home');
  mkdirSync(home, { recursive: true });
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1`,
      `Port ${port}`,
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      `AllowUsers ${user}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'UseDNS no',
      'StrictModes no',
      'LogLevel VERBOSE',
      // one connection per command: a backup opens many, some at once
      'MaxStartups 100:30:200',
      // The forced command runs through the user's login shell, and Debian's bash reads ~/.bashrc for
      // a command over ssh: this build machine's /root/.bashrc starts pyenv (~80 ms per command, and a
      // backup runs ~200). A hypervisor's gateway shell starts clean; the sessions here get a HOME of
      // their own. The key exchange: curve25519 only (OpenSSH 9.2's default, sntrup761x25519, costs
      // ~70 ms more per connection on this machine); the clients keep their defaults and negotiate it.
      `SetEnv HOME=${home}`,
      'KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org',
      'Subsystem sftp internal-sftp',
      ...(o.access === 'sftp' ? ['ForceCommand internal-sftp'] : []),
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const logFile = join(dir, 'sshd.log');
  const daemon: Daemon = await startDaemon({
    name: 'sshd',
    command: '/usr/sbin/sshd',
    args: ['-D', '-e', '-f', config],
    logFile,
    ready: () => portOpen(port),
    dieWithParent: true,
  });
  return {
    host: '127.0.0.1',
    port,
    pid: daemon.pid,
    user,
    keys,
    knownHosts,
    commands: () => readFileSync(join(dir, 'commands.log'), 'utf8').split('\n').filter(Boolean),
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    connectionsRunning: (needle) =>
      descendants(daemon.pid)
        .filter((pid) => {
          try {
            return ppidOf(pid) === daemon.pid && descendants(pid).some((d) => cmdline(d).includes(needle));
          } catch {
            return false;
          }
        })
        // the connection's monitor and its session process (which holds the socket after login)
        .flatMap((pid) => [pid, ...descendants(pid).filter((d) => cmdline(d).startsWith('sshd'))]),
    holdAfterDd: (seconds) => (seconds > 0 ? writeFileSync(join(dir, 'hold-after-dd'), String(seconds)) : rmSync(join(dir, 'hold-after-dd'), { force: true })),
    kill: async () => {
      signalAll(descendants(daemon.pid), 'SIGKILL');
      await daemon.stop(2_000);
    },
    restart: () => startSshd(dir, { ...o, port }),
    stop: async () => {
      signalAll(descendants(daemon.pid), 'SIGTERM');
      await daemon.stop();
    },
  };
}
