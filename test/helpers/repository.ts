/**
 * Test worlds whose backup root is a restic repository (docs/repository.md): the pool's
 * sstBackupRootDirectory names a local repository or one on an sshd the test starts on 127.0.0.1
 * (test/helpers/sshd.ts, SFTP only), the INI names restic (.tools/restic), the password file and the SSH key; the
 * repository is created with `kvm-backup repository init` as an operator would.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Restic } from '../../adapters/host/restic.js';
import { parseBackupRoot, type ResticRepository } from '../../core/backup-root.js';
import { poolBackupConfigDn } from '../../core/naming.js';
import type { ResticSettings } from '../../core/restic.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { PROJECT_ROOT } from '../../stack/paths.js';
import { guestWriteFile } from '../../stack/tiny-vm.js';
import { cli } from './cli.js';
import { testDir } from './names.js';
import { startSshd, type Sshd } from './sshd.js';
import { createWorld, type World, type WorldOptions } from './world.js';

export const RESTIC_BINARY = join(PROJECT_ROOT, '.tools', 'restic', 'bin', 'restic');

export interface RepositoryWorld {
  w: World;
  uri: string;
  repository: ResticRepository;
  /** restic with the world's settings, for the test's own looks into the repository. */
  restic: Restic;
  settings: ResticSettings;
  passwordFile: string;
  /** The repository's directory on this machine (local, or the SFTP server's path). */
  repoDir: string;
  sshd?: Sshd;
  /** Points the pool's backup root at another URI (a missing repository, say). */
  setRoot(uri: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The [Backup] keys that name restic (.tools/restic), a new random password file and a cache below
 * `dir`, and the SSH key and known_hosts of `sshd` for an SFTP repository.
 */
export function resticIni(dir: string, sshd?: Sshd): { passwordFile: string; ini: Record<string, string> } {
  mkdirSync(dir, { recursive: true });
  const passwordFile = join(dir, 'restic.password');
  writeFileSync(passwordFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  const ini: Record<string, string> = {
    RESTIC_BINARY,
    RESTIC_PASSWORD_FILE: passwordFile,
    RESTIC_CACHE_DIR: join(dir, 'cache'),
    ...(sshd ? { RESTIC_SSH_IDENTITY_FILE: sshd.keys.ed25519, RESTIC_SSH_KNOWN_HOSTS: sshd.knownHosts } : {}),
  };
  return { passwordFile, ini };
}

/**
 * Creates the repository at `uri` with `kvm-backup repository init`, as an operator would, and makes it
 * the backup root of the world's pool. The world's INI must hold resticIni's keys.
 */
export async function useRepository(w: World, uri: string): Promise<{ repository: ResticRepository; restic: Restic; setRoot: (u: string) => Promise<void> }> {
  const init = await cli(w, ['repository', 'init', uri]);
  assert.equal(init.exitCode, 0, init.stderr);
  const setRoot = (u: string) => w.directory.modify(poolBackupConfigDn(DEMO_SERVICE_SUBTREE, w.pool), { sstBackupRootDirectory: u });
  await setRoot(uri);
  const root = parseBackupRoot(uri);
  assert.equal(root.kind, 'repository');
  return { repository: (root as { repository: ResticRepository }).repository, restic: new Restic(w.config.backup.restic), setRoot };
}

export async function createRepositoryWorld(
  label: string,
  o: { transport: 'local' | 'sftp'; repoDir?: string; world?: Partial<WorldOptions>; backupIni?: Record<string, string> },
): Promise<RepositoryWorld> {
  const dir = testDir(`${label}-repo`);
  const sshd = o.transport === 'sftp' ? await startSshd(join(dir, 'sshd'), { access: 'sftp' }) : undefined;
  const { passwordFile, ini } = resticIni(dir, sshd);
  const repoDir = o.repoDir ?? join(dir, 'repository');
  let w: World;
  try {
    w = await createWorld({ label, ...o.world, backupIni: { ...o.world?.backupIni, ...ini, ...o.backupIni } });
  } catch (e) {
    await sshd?.stop();
    throw e;
  }
  const uri = sshd ? `restic+sftp://${sshd.user}@127.0.0.1:${sshd.port}${repoDir}` : `restic://${repoDir}`;
  const { repository, restic, setRoot } = await useRepository(w, uri);
  return {
    w,
    uri,
    repository,
    restic,
    settings: w.config.backup.restic,
    passwordFile,
    repoDir,
    ...(sshd ? { sshd } : {}),
    setRoot,
    close: async () => {
      await w.close();
      await sshd?.stop();
    },
  };
}

/** `bytes` of random data (incompressible, never seen before) written by the guest at `offset`. */
export async function guestWritesRandom(w: World, offset: string, bytes: number, target = 'vda'): Promise<void> {
  const dir = join(w.dir, 'random');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const file = join(dir, `r-${randomBytes(4).toString('hex')}`);
  writeFileSync(file, randomBytes(bytes), { mode: 0o644 });
  await guestWriteFile(w.virsh, w.vm, target, file, offset, String(bytes));
}
