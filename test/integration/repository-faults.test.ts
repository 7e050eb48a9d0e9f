/**
 * Faults of a restic repository as backup root (docs/repository.md, docs/exit-codes.md): a wrong
 * password in the password file (39), a missing repository (26), a lock held by another restic
 * process (22; once that process is dead its lock is stale and removed), a full repository
 * filesystem (a small tmpfs, 47) and the SFTP server killed mid-upload (7). Each is injected between
 * the merge and the export of a step-by-step backup (the vm-manager's `retain` request), each must end
 * with its code on the leaf, leave the VM running on its own images and the older iterations
 * restorable, and the `retain` request repeated after the fault is gone must complete.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { Code } from '../../core/exit-codes.js';
import { codeOf } from '../../core/failures.js';
import type { BackupStep } from '../../core/provisioning.js';
import { tagValue } from '../../core/restic.js';
import { addLeaf, backupNow, readLeaf, startBackup, startRestore } from '../helpers/backup.js';
import { cli } from '../helpers/cli.js';
import { GuestData } from '../helpers/guest-data.js';
import { testDir } from '../helpers/names.js';
import { createRepositoryWorld, guestWritesRandom, type RepositoryWorld } from '../helpers/repository.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch((e) => console.error('cleanup:', e));
});

async function world(label: string, o: Parameters<typeof createRepositoryWorld>[1]): Promise<RepositoryWorld> {
  const rw = await createRepositoryWorld(label, o);
  const workers = await rw.w.startWorkers();
  cleanups.push(async () => {
    await workers.shutdown();
    await rw.close();
  });
  return rw;
}

async function step(rw: RepositoryWorld, leafDn: string, s: BackupStep, attempts?: number): Promise<unknown> {
  const handle = await startBackup(rw.w, { leafDn, steps: [s], ...(attempts ? { attempts } : {}) });
  return handle.result().then(() => undefined, (e: unknown) => e);
}

/** The VM runs, every disk on its own image (no overlay of a backup left). */
async function assertOnOwnImages(rw: RepositoryWorld, what: string): Promise<void> {
  const { w } = rw;
  assert.equal((await w.virsh.state(w.vm)).state, 'running', `${what}: the VM runs`);
  const blk = await w.virsh.exec(['domblklist', w.vm, '--details']);
  for (const d of w.disks) assert.ok(blk.includes(d.path), `${what}: ${d.target} on ${d.path}: ${blk}`);
  assert.doesNotMatch(blk, /overlay-/, `${what}: no overlay`);
}

async function snapshotOus(rw: RepositoryWorld): Promise<string[]> {
  return (await rw.restic.snapshots(rw.repository, [`vm=${rw.w.vm}`])).map((s) => tagValue(s.tags, 'ou')!).sort();
}

/**
 * snapshot and merge (the VM back on its images), then `inject`, then `retain` with one attempt: it
 * must fail with `code`; then `repair` and `retain` again: it must complete with a new snapshot.
 */
interface Fault {
  /** Before the snapshot (new data in the guest, say). */
  before?: () => Promise<void> | void;
  inject: () => Promise<void> | void;
  /** While the export runs (given its result, unresolved). */
  during?: () => Promise<void>;
  repair: () => Promise<void> | void;
}

async function exportFault(rw: RepositoryWorld, name: string, code: number, f: Fault): Promise<void> {
  const { w } = rw;
  const { inject, repair, during } = f;
  await f.before?.();
  const leaf = await addLeaf(w, 'snapshot');
  for (const s of ['snapshot', 'merge'] as BackupStep[]) assert.equal(await step(rw, leaf.dn, s), undefined, `${name}: ${s}`);
  const before = await snapshotOus(rw).catch(() => undefined);
  await inject();
  const failed = step(rw, leaf.dn, 'retain', 1);
  await during?.();
  const error = await failed;
  assert.ok(error instanceof WorkflowFailedError, `${name}: the export must fail, got ${String(error)}`);
  assert.equal(codeOf(error), code, `${name}: ${(error.cause as Error)?.message}`);
  const l = await readLeaf(w, leaf.dn);
  assert.equal(l.mode, 'retaining', name);
  assert.equal(l.returnValue, String(code), name);
  await assertOnOwnImages(rw, name);
  await repair();
  // the older iterations are all still there, and the repository is sound
  if (before) assert.deepEqual(await snapshotOus(rw), before, `${name}: older iterations intact`);
  assert.equal(await step(rw, leaf.dn, 'retain'), undefined, `${name}: the retried export completes`);
  assert.equal((await readLeaf(w, leaf.dn)).mode, 'retained', name);
  assert.ok((await snapshotOus(rw)).includes(leaf.ou), `${name}: the retry's snapshot`);
  await assertOnOwnImages(rw, `${name}, after the retry`);
}

test('local repository: wrong password 39, missing repository 26, lock of a live process 22, full filesystem 47; retries complete, older iterations restorable', async () => {
  // the repository on a small tmpfs of its own, so it can be filled
  const repoDir = join(testDir('repo-full'), 'repository');
  mkdirSync(repoDir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', repoDir]);
  cleanups.push(() => void execFileSync('umount', [repoDir]));
  const rw = await world('repo-faults', { transport: 'local', repoDir });
  const { w } = rw;
  const data = new GuestData(w);
  await data.write('first', 0xa1, '0', '2M');
  const first = await backupNow(w);

  // a wrong password in the file
  const password = readFileSync(rw.passwordFile, 'utf8');
  await exportFault(rw, 'wrong password', Code.UNSUPPORTED_CONFIGURATION_PARAMETER, {
    inject: () => writeFileSync(rw.passwordFile, 'not the password\n'),
    repair: () => writeFileSync(rw.passwordFile, password),
  });

  // the repository gone (an unmounted disk, say): not created again by the backup. Its files are
  // moved aside within the tmpfs (a rename cannot leave it)
  const away = join(repoDir, '.away');
  mkdirSync(away);
  const moveAll = (from: string, to: string) => {
    for (const f of readdirSync(from)) if (f !== '.away') renameSync(join(from, f), join(to, f));
  };
  await exportFault(rw, 'missing repository', Code.BACKUP_ROOT_DIRECTORY_DOES_NOT_EXIST, { inject: () => moveAll(repoDir, away), repair: () => moveAll(away, repoDir) });
  rmSync(away, { recursive: true });

  // another restic process holds the exclusive lock (`key passwd` waits on its stdin with it)
  let holder: ReturnType<typeof spawn> | undefined;
  await exportFault(rw, 'locked', Code.CANNOT_LOCK_MACHINE, {
    inject: async () => {
      holder = spawn(rw.settings.binary, ['--repo', repoDir, '--password-file', rw.passwordFile, 'key', 'passwd'], { stdio: ['pipe', 'ignore', 'ignore'] });
      for (let i = 0; readdirSync(join(repoDir, 'locks')).length === 0; i++) {
        assert.ok(i < 200, 'the lock holder never locked');
        await sleep(50);
      }
    },
    // dead, its lock is stale: the retry's `restic unlock` removes it
    repair: async () => {
      holder!.kill('SIGKILL');
      await new Promise((r) => holder!.once('exit', r));
      assert.equal(readdirSync(join(repoDir, 'locks')).length, 1, 'the stale lock is still there before the retry');
    },
  });

  // the repository filesystem full: 4 MiB of new random data in the guest cannot be stored
  let filler = '';
  await exportFault(rw, 'full filesystem', Code.NOT_ENOUGH_DISK_SPACE, {
    before: () => guestWritesRandom(w, '16M', 4 * 2 ** 20),
    inject: () => {
      const free = Number(execFileSync('df', ['--output=avail', '-B1', repoDir]).toString().split('\n')[1]);
      filler = join(repoDir, 'filler');
      execFileSync('fallocate', ['-l', String(Math.max(0, free - 256 * 1024)), filler]);
    },
    repair: () => rmSync(filler),
  });

  // every older iteration restorable: the first, with its RAM state, exactly its bytes
  await data.write('later', 0xc3, '8M', '1M');
  const restored = await (await startRestore(w, { leafDn: first.dn, confirmed: true })).result();
  assert.equal(restored.result?.how, 'restored');
  await data.assertImage(w.disks[0]!.path, 'vda', ['first'], 'the first iteration after all faults');
  const check = await cli(w, ['repository', 'check', rw.uri]);
  assert.equal(check.exitCode, 0, check.stderr + check.stdout);
});

test('SFTP repository: the server killed mid-upload ends with 7, the VM on its images; the retry against the restarted server completes', async () => {
  // 1 MiB/s to the repository, so the upload of 8 MiB of new random data takes seconds
  const rw = await world('repo-cut', { transport: 'sftp', backupIni: { RESTIC_LIMIT_KIB: '1024' } });
  const { w } = rw;
  const first = await backupNow(w);
  let sshd = rw.sshd!;
  await exportFault(rw, 'connection lost', Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, {
    before: () => guestWritesRandom(w, '16M', 8 * 2 ** 20),
    inject: () => undefined,
    during: async () => {
      // the export is uploading: cut every session and stop the server
      const started = Date.now();
      for (;;) {
        const uploading = listsResticChild(sshd.pid);
        if (uploading && Date.now() - started > 2_000) break;
        assert.ok(Date.now() - started < 60_000, 'the export never reached the SFTP server');
        await sleep(200);
      }
      await sshd.kill();
    },
    repair: async () => {
      sshd = await sshd.restart();
      cleanups.push(() => sshd.stop());
    },
  });
  // the first iteration is still whole
  const verify = await cli(w, ['verify', w.vm, '--backup', first.ou]);
  assert.equal(verify.exitCode, 0, verify.stderr + verify.stdout);
});

/** True while the sshd has a session (a forked child serving restic's SFTP connection). */
function listsResticChild(pid: number): boolean {
  return readdirSync('/proc').some((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
    } catch {
      return false;
    }
  });
}
