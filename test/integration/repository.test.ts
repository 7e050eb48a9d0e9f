/**
 * A restic repository as backup root (docs/repository.md), on the real stack: the tiny VM backed up
 * into a local repository and into one on an sshd this test starts on 127.0.0.1, each iteration one
 * snapshot tagged with VM, ou and node holding the plain layout's files and manifest; `list` shows
 * the snapshots, `verify` runs restic check and the manifest; restores bring back exactly the
 * backup-time bytes with and without RAM state, in one go and in the vm-manager's steps (unretain is a
 * restic restore into retain); rotation forgets and prunes by the retention rules.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { poolBackupConfigDn } from '../../core/naming.js';
import type { RestoreStep } from '../../core/restore-plan.js';
import { tagValue } from '../../core/restic.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { backupNow, readLeaf, startRestore } from '../helpers/backup.js';
import { cli } from '../helpers/cli.js';
import { GuestData } from '../helpers/guest-data.js';
import { createRepositoryWorld, guestWritesRandom, type RepositoryWorld } from '../helpers/repository.js';

const MiB = 2 ** 20;
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

async function world(label: string, transport: 'local' | 'sftp'): Promise<RepositoryWorld> {
  const rw = await createRepositoryWorld(label, { transport });
  const workers = await rw.w.startWorkers();
  cleanups.push(async () => {
    await workers.shutdown();
    await rw.close();
  });
  return rw;
}

async function snapshotOus(rw: RepositoryWorld): Promise<string[]> {
  return (await rw.restic.snapshots(rw.repository, [`vm=${rw.w.vm}`])).map((s) => tagValue(s.tags, 'ou')!).sort();
}

for (const transport of ['local', 'sftp'] as const) {
  test(`${transport} repository: backup, list, verify, restore with and without state, vm-manager steps, rotation`, async () => {
    const rw = await world(`repo-${transport}`, transport);
    const { w } = rw;
    const data = new GuestData(w);
    const image = w.disks[0]!.path;

    // ---- two backups: each one snapshot, the plain layout's files at its root
    await data.write('first', 0xa1, '0', '2M');
    await guestWritesRandom(w, '16M', 32 * MiB);
    const one = await backupNow(w);
    await data.write('second', 0xb2, '4M', '1M');
    await guestWritesRandom(w, '56M', MiB);
    const two = await backupNow(w);
    for (const leaf of [one, two]) assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
    assert.deepEqual(await snapshotOus(rw), [one.ou, two.ou]);
    const [snap] = await rw.restic.snapshots(rw.repository, [`ou=${two.ou}`]);
    assert.ok(snap);
    assert.deepEqual([...snap.tags!].sort(), ['kvm-backup', `node=${w.node}`, `ou=${two.ou}`, `vm=${w.vm}`]);
    assert.equal(snap.hostname, w.node);
    assert.equal(snap.time.slice(0, 19).replace(/[-:]/g, ''), two.ou.slice(0, 15));
    const names = (await rw.restic.list(rw.repository, snap.id)).map((p) => p.slice(1)).sort();
    const disk = `${w.vm}-vda.disk.qcow2`;
    assert.deepEqual(names, [`${disk}.${two.ou}`, `${w.vm}.backup.json.${two.ou}`, `${w.vm}.ldif.${two.ou}`, `${w.vm}.state.${two.ou}`, `${w.vm}.xml.${two.ou}`, `SHA256SUMS.${two.ou}`].sort());
    // nothing in the plain backup root, nothing left in retain
    assert.equal(existsSync(w.paths.backupRoot), false, 'no plain iteration directories');
    assert.deepEqual(existsSync(w.paths.retainRoot) ? readdirSync(w.paths.retainRoot).filter((f) => !f.startsWith('.')) : [], []);
    if (transport === 'local') assert.ok(existsSync(join(rw.repoDir, 'config')));

    // ---- list: the snapshots, with what each added
    const list = await cli(w, ['list', w.vm, '--json']);
    assert.equal(list.exitCode, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as Array<{ backup: string; snapshot?: string; manifest?: boolean; addedBytes?: number; bytes?: number; verified?: string }>;
    assert.deepEqual(rows.map((r) => r.backup), [one.ou, two.ou]);
    for (const r of rows) {
      assert.match(r.snapshot ?? '', /^[0-9a-f]{8}$/);
      assert.equal(r.manifest, true);
      assert.ok((r.bytes ?? 0) > 0 && (r.addedBytes ?? -1) >= 0);
    }
    // deduplicated: the first stored its 32 MiB of random data (what compression cannot shrink); the
    // second adds its own 1 MiB, the changed qcow2 metadata and RAM state and the two content-defined
    // chunks (about 1 MiB on average, at most 8) around the changes, not the 32 MiB again
    const [added1, added2] = [rows[0]!.addedBytes!, rows[1]!.addedBytes!];
    assert.ok(added1 >= 32 * MiB, `first added ${added1} bytes: it holds 32 MiB of random data`);
    assert.ok(added2 >= MiB && added2 < added1 / 2, `second added ${added2} bytes for 1 MiB of new random data (first: ${added1})`);

    // ---- verify: restic check of the snapshot's data, then every file against the manifest
    const verify = await cli(w, ['verify', w.vm, '--backup', two.ou]);
    assert.equal(verify.exitCode, 0, verify.stderr + verify.stdout);
    assert.match(verify.stdout, /every file matches the sha256 manifest/);
    const listed2 = JSON.parse((await cli(w, ['list', w.vm, '--json'])).stdout) as typeof rows;
    assert.match(listed2.find((r) => r.backup === two.ou)!.verified ?? '', /^ok /);

    // ---- restore with RAM state, in one go: exactly the first iteration's bytes
    await data.write('later', 0xc3, '8M', '1M');
    const r1 = await (await startRestore(w, { leafDn: one.dn, confirmed: true })).result();
    assert.equal(r1.result?.how, 'restored');
    assert.equal(r1.verified, 'sha256');
    assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'restored' });
    await data.assertImage(image, 'vda', ['first'], 'restored from the first snapshot');

    // ---- restore without state, the vm-manager's steps: unretain is a restic restore into retain
    const modes: string[] = [];
    for (const step of ['unretainSmallFiles', 'unretainLargeFiles', 'restore'] as RestoreStep[]) {
      await w.directory.modify(two.dn, { sstProvisioningMode: step, sstProvisioningState: '0' });
      await (await startRestore(w, { leafDn: two.dn, steps: [step], withoutState: true })).result();
      const l = await readLeaf(w, two.dn);
      assert.equal(l.returnValue, '0');
      modes.push(l.mode!);
      if (step === 'unretainSmallFiles') {
        const retain = join(w.paths.retainRoot, 'vm-persistent', w.pool, w.vm, two.ou);
        assert.deepEqual(readdirSync(retain).sort(), [`${w.vm}.backup.json.${two.ou}`, `${w.vm}.ldif.${two.ou}`, `${w.vm}.xml.${two.ou}`, `SHA256SUMS.${two.ou}`].sort());
      }
    }
    assert.deepEqual(modes, ['unretainedSmallFiles', 'unretainedLargeFiles', 'restored']);
    assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'booted' });
    await data.assertImage(image, 'vda', ['first', 'second'], 'restored from the second snapshot without state');

    // ---- rotation: keep-last 1 → the older snapshots forgotten and pruned, their leaves removed
    await w.directory.modify(poolBackupConfigDn(DEMO_SERVICE_SUBTREE, w.pool), { sstBackupNumberOfIterations: '1' });
    const three = await backupNow(w);
    assert.deepEqual(await snapshotOus(rw), [three.ou]);
    const leaves = (await w.directory.search(`ou=backup,sstVirtualMachine=${w.vm},ou=virtual machines,${DEMO_SERVICE_SUBTREE}`, { scope: 'one' })).map((e) => e.dn);
    // the finished leaf of a rotated iteration goes with it; the second's stays (mode restored: not the rotation's to remove)
    assert.equal(leaves.some((dn) => dn.includes(one.ou)), false, `the leaf of ${one.ou} is removed: ${leaves.join(' ')}`);
    assert.equal(leaves.some((dn) => dn.includes(three.ou)), true);
    const check = await cli(w, ['repository', 'check', rw.uri]);
    assert.equal(check.exitCode, 0, check.stderr + check.stdout);
  });
}
