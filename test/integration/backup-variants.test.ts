/**
 * Backup variants on the real stack: two disks in different directories with the same file name,
 * paths full of '-' and '.', and the RAM disk missing or too small (the state file then goes to the
 * retain directory, with a warning, and still restores).
 */
import assert from 'node:assert/strict';
import { domainDisks } from '../../core/domain-xml.js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { addLeaf, readLeaf, startBackup, waitForPhase } from '../helpers/backup.js';
import { GuestData } from '../helpers/guest-data.js';
import { createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

async function world(o: Parameters<typeof createWorld>[0], poolConfig: Record<string, string> = {}): Promise<World> {
  const w = await createWorld(o);
  const workers = await w.startWorkers();
  cleanups.push(async () => {
    await workers.shutdown();
    await w.close();
  });
  if (Object.keys(poolConfig).length) {
    await w.directory.modify(`ou=backup,sstVirtualMachinePool=${w.pool},ou=virtual machine pools,${DEMO_SERVICE_SUBTREE}`, poolConfig);
  }
  return w;
}

test('two disks in different directories with the same file name, paths with - and .', async () => {
  const w = await world(
    {
      label: 'two-disks',
      disks: [
        { target: 'vda', dir: 'vm-persistent/pool-a.b-c', file: 'disk.v1.qcow2' },
        { target: 'vdb', dir: 'vm-persistent/other-store.d', file: 'disk.v1.qcow2' },
      ],
      backupIni: { COPY_BANDWIDTH: '32' },
    },
    {},
  );
  const backupRoot = join(w.dir, 'backup-vm.d', 'virt-2.0');
  await w.directory.modify(`ou=backup,sstVirtualMachinePool=${w.pool},ou=virtual machine pools,${DEMO_SERVICE_SUBTREE}`, {
    sstBackupRootDirectory: `file://${backupRoot}`,
  });
  const data = new GuestData(w);
  await data.write('a-before', 0x1a, '0', '2M', 'vda');
  await data.write('b-before', 0x1b, '0', '2M', 'vdb');
  await data.write('b-bulk', 0x2b, '8M', '8M', 'vdb');
  const leaf = await addLeaf(w);
  const handle = await startBackup(w, { leafDn: leaf.dn });
  await waitForPhase(handle, 'copy to retain');
  await data.write('a-during', 0x3a, '2M', '1M', 'vda');
  await data.write('b-during', 0x3b, '2M', '1M', 'vdb');
  await handle.result();

  // the iteration directory follows the first disk's directory; no truncation at '-' or '.'
  const dir = join(backupRoot, 'vm-persistent', 'pool-a.b-c', w.vm, leaf.ou);
  const files = readdirSync(dir);
  assert.ok(files.includes(`vda-disk.v1.qcow2.${leaf.ou}`) && files.includes(`vdb-disk.v1.qcow2.${leaf.ou}`), files.join(' '));
  await data.assertImage(join(dir, `vda-disk.v1.qcow2.${leaf.ou}`), 'vda', ['a-before'], 'backup of vda');
  await data.assertImage(join(dir, `vdb-disk.v1.qcow2.${leaf.ou}`), 'vdb', ['b-before', 'b-bulk'], 'backup of vdb');
  await data.assertImage(w.disks[0]!.path, 'vda', ['a-before', 'a-during'], 'live vda');
  await data.assertImage(w.disks[1]!.path, 'vdb', ['b-before', 'b-bulk', 'b-during'], 'live vdb');
  assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), w.disks.map((d) => d.path));
  assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
});

test('RAM disk missing: warning, state file in the retain directory, backup complete and restorable', async () => {
  const w = await world({ label: 'ram-missing' }, { sstBackupRamDiskLocation: '/nonexistent/ram-disk.d' });
  const leaf = await addLeaf(w);
  const outcome = await (await startBackup(w, { leafDn: leaf.dn })).result();
  assert.ok(outcome.warnings.some((m) => /RAM disk \/nonexistent\/ram-disk.d is missing/.test(m)), outcome.warnings.join('; '));
  const state = join(w.paths.backupRoot, 'vm-persistent', w.pool, w.vm, leaf.ou, `${w.vm}.state.${leaf.ou}`);
  assert.match(execFileSync('virsh', ['-c', 'qemu:///system', 'save-image-dumpxml', state]).toString(), new RegExp(`<name>${w.vm}</name>`));
  assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
});

test('RAM disk too small (1 MiB tmpfs for 64 MiB of RAM): warning, fallback, backup complete', async () => {
  const small = join(`/tmp`, `kvmbt-ram-${process.pid}`);
  mkdirSync(small, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
  cleanups.push(async () => {
    execFileSync('umount', [small]);
  });
  const w = await world({ label: 'ram-small' }, { sstBackupRamDiskLocation: small });
  const leaf = await addLeaf(w);
  const outcome = await (await startBackup(w, { leafDn: leaf.dn })).result();
  assert.ok(outcome.warnings.some((m) => m.includes(`RAM disk ${small} has 1.0 MiB free`)), outcome.warnings.join('; '));
  assert.deepEqual(readdirSync(small), [], 'nothing left on the RAM disk');
  assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
});

test('the VM goes down while on its overlay: writes committed offline, defined on its image again', async () => {
  const w = await world({ label: 'vm-down', backupIni: { COPY_BANDWIDTH: '16' } });
  const data = new GuestData(w);
  await data.write('bulk', 0x20, '8M', '24M');
  await data.write('before', 0xa1, '0', '1M');
  const leaf = await addLeaf(w);
  const handle = await startBackup(w, { leafDn: leaf.dn });
  await waitForPhase(handle, 'copy to retain');
  await data.write('on-overlay', 0xb2, '1M', '1M');
  await w.virsh.destroy(w.vm); // a guest power-off or crash in the middle of the backup
  await handle.result();
  const image = w.disks[0]!.path;
  await data.assertImage(join(w.paths.backupRoot, 'vm-persistent', w.pool, w.vm, leaf.ou, `${w.vm}-vda.disk.qcow2.${leaf.ou}`), 'vda', ['bulk', 'before'], 'backup');
  await data.assertImage(image, 'vda', ['bulk', 'before', 'on-overlay'], 'image after the offline commit');
  assert.deepEqual(domainDisks(await w.virsh.dumpXml(w.vm, { inactive: true })).map((d) => d.source), [image]);
  assert.equal((await w.virsh.state(w.vm)).state, 'shut off', 'a VM that went down is not started behind its back');
  await w.virsh.start(w.vm);
  assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), [image]);
});

test('each byte written once: the export moves files by rename; a retain root on another filesystem is bypassed', async () => {
  // same filesystem: the image is copied once (to retain), the export moves it
  const w = await world({ label: 'once', backupIni: { COPY_BANDWIDTH: '16' } });
  const data = new GuestData(w);
  await data.write('bulk', 0x20, '8M', '16M');
  const first = await (await startBackup(w, { leafDn: (await addLeaf(w)).dn })).result();
  const image = statSync(w.disks[0]!.path).size;
  assert.ok(first.bytes >= image && first.bytes < image + 8 * 2 ** 20, `bytes written ${first.bytes} for a ${image}-byte image: one copy, not two`);

  // retain on a tmpfs of its own: the files wait below the backup root instead, and nothing goes to the tmpfs
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', w.paths.retainRoot]);
  cleanups.push(async () => {
    execFileSync('umount', [w.paths.retainRoot]);
  });
  const leaf = await addLeaf(w);
  const handle = await startBackup(w, { leafDn: leaf.dn });
  await waitForPhase(handle, 'copy to retain');
  const vmDir = join(w.paths.backupRoot, 'vm-persistent', w.pool, w.vm);
  assert.ok(existsSync(join(vmDir, `.${leaf.ou}.partial`)), 'the files wait beside the iteration, below the backup root');
  const outcome = await handle.result();
  assert.ok(outcome.bytes < image + 8 * 2 ** 20, `one copy (${outcome.bytes} bytes)`);
  assert.deepEqual(readdirSync(w.paths.retainRoot), [], 'nothing written to the retain filesystem');
  assert.equal(existsSync(join(vmDir, `.${leaf.ou}.partial`)), false, 'the staging directory removed');
  execFileSync('sha256sum', ['-c', '--quiet', `SHA256SUMS.${leaf.ou}`], { cwd: join(vmDir, leaf.ou) });
  assert.equal((await readLeaf(w, leaf.dn)).mode, 'finished');
});
