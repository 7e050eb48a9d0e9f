/**
 * A throwaway OpenSSH server on 127.0.0.1 for tests that need a remote host over SSH (SFTP
 * repositories, docs/repository.md): its own host key and client key pair (ssh-keygen, ed25519, no
 * passphrase), a known_hosts file naming the host key, public-key logins for one user only, and a
 * forced command (internal-sftp: the key can do SFTP and nothing else). Started in the foreground
 * (`sshd -D -e`), stopped by its PID; `cutConnections()` kills the per-connection processes it
 * forked (found as its descendants in /proc) to lose every session at once, as a dying server would.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort, portOpen, startDaemon, type Daemon } from './daemon.js';

export interface SshdOptions {
  /** Holds keys, configuration and log. */
  dir: string;
  /** The only user that may log in (default root). */
  user?: string;
  port?: number;
  /** What the key may do: internal-sftp only (default), or any command. */
  sftpOnly?: boolean;
}

export interface Sshd extends Daemon {
  port: number;
  user: string;
  /** The client's private key, for ssh -i. */
  identityFile: string;
  /** known_hosts with this server's host key for [127.0.0.1]:port. */
  knownHostsFile: string;
  /** Kills every session (the per-connection sshd processes) and the server: connections drop mid-transfer. */
  kill(): Promise<void>;
  /** Starts the server again on the same port with the same keys (after stop or kill). */
  restart(): Promise<Sshd>;
}

const SSHD = '/usr/sbin/sshd';

async function keyPair(file: string, comment: string): Promise<void> {
  if (existsSync(file)) return;
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

/** PIDs of every descendant of `pid` (children first found, grandchildren after), from /proc. */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  for (let level = parents.get(pid) ?? []; level.length; level = level.flatMap((p) => parents.get(p) ?? [])) out.push(...level);
  return out;
}

export async function startSshd(o: SshdOptions): Promise<Sshd> {
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const user = o.user ?? 'root';
  const port = o.port ?? (await freePort());
  const hostKey = join(o.dir, 'ssh_host_ed25519_key');
  const identityFile = join(o.dir, 'id_ed25519');
  await keyPair(hostKey, 'kvm-backup test sshd');
  await keyPair(identityFile, 'kvm-backup test client');
  const authorized = join(o.dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${identityFile}.pub`), { mode: 0o600 });
  const knownHostsFile = join(o.dir, 'known_hosts');
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
  const config = join(o.dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      'PidFile none',
      `AuthorizedKeysFile ${authorized}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      `AllowUsers ${user}`,
      // the test directories are not the user's home: their modes are not sshd's business here
      'StrictModes no',
      'UsePAM no',
      'UseDNS no',
      'Subsystem sftp internal-sftp',
      ...(o.sftpOnly === false ? [] : ['ForceCommand internal-sftp']),
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  // sshd insists on its privilege separation directory
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const daemon = await startDaemon({
    name: 'sshd',
    command: SSHD,
    args: ['-D', '-e', '-f', config],
    logFile: join(o.dir, 'sshd.log'),
    ready: () => portOpen(port),
    dieWithParent: true,
  });
  const kill = async () => {
    for (const pid of descendants(daemon.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ended by itself
      }
    }
    await daemon.stop(2_000);
  };
  return {
    ...daemon,
    port,
    user,
    identityFile,
    knownHostsFile,
    kill,
    stop: async (graceMs?: number) => {
      // sessions first: sshd's listener does not end them
      for (const pid of descendants(daemon.pid)) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // gone
        }
      }
      await daemon.stop(graceMs);
    },
    restart: () => startSshd({ ...o, port }),
  };
}
