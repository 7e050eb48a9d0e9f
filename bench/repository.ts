/**
 * A restic repository as backup root (docs/repository.md, issue 12 item 3), on the real stack: a VM
 * with 256 MiB of RAM and a 2 GiB qcow2 disk full of random data (what neither compression nor
 * deduplication can shrink) is backed up into a local repository; then, `--iterations` times, the
 * guest writes 64 MiB of new random data into its disk and the VM is backed up again. Measured: what
 * the repository occupies on disk (`du`) after the first iteration (one full copy), what each later
 * iteration adds, the whole after all of them, against one full copy (the bytes a plain iteration
 * holds: image, RAM state, XML, LDIF, facts); and the export (`restic backup` of the iteration)
 * against `cp --sparse=always` + sync of the same image, caches dropped before each.
 *
 *   node dist/bench/repository.js [--iterations 14]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { poolBackupConfigDn } from '../core/naming.js';
import { freePort } from '../stack/daemon.js';
import { DEMO_SERVICE_SUBTREE } from '../stack/directory.js';
import { ensureLibvirt } from '../stack/libvirt.js';
import { VAR_DIR } from '../stack/paths.js';
import { startTemporalServer } from '../stack/temporal-server.js';
import { addLeaf, startBackup } from '../test/helpers/backup.js';
import { createRepositoryWorld, guestWritesRandom } from '../test/helpers/repository.js';
import { copyOnceMs, dropCaches, fmt, machine, median, table, timed } from './lib.js';

const { values: args } = parseArgs({ options: { iterations: { type: 'string', default: '14' } } });
const iterations = Number(args.iterations);
const MiB = 2 ** 20;
const CHANGE = 64 * MiB;

function du(path: string): number {
  return Number(execFileSync('du', ['-sb', path]).toString().split('\t')[0]);
}

async function main(): Promise<void> {
  const dir = join(VAR_DIR, 'bench', 'repository');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  process.env['KVM_BACKUP_TEST_DIR'] = dir;
  const libvirt = await ensureLibvirt(join(dir, 'logs'));
  const temporal = await startTemporalServer({ port: await freePort(), logFile: join(dir, 'logs', 'temporal.log') });
  process.env['TEMPORAL_ADDRESS'] = temporal.address;
  const rw = await createRepositoryWorld('bench-repo', { transport: 'local', world: { memoryMiB: 256 } });
  const { w } = rw;
  const workers = await w.startWorkers();
  const image = w.disks[0]!.path;
  try {
    await w.directory.modify(poolBackupConfigDn(DEMO_SERVICE_SUBTREE, w.pool), { sstBackupNumberOfIterations: String(iterations + 5) });
    // a 2 GiB disk full of random data, 256 MiB of fresh random bytes at a time
    await w.virsh.destroy(w.vm);
    execFileSync('qemu-img', ['resize', '-q', image, '2G']);
    const chunk = join(dir, 'random.bin');
    for (let mib = 0; mib < 2048; mib += 256) {
      writeFileSync(chunk, randomBytes(256 * MiB));
      execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -s ${chunk} ${mib}M 256M`, image]);
    }
    rmSync(chunk);
    await w.virsh.start(w.vm);
    const allocated = statSync(image).blocks * 512;

    const backup = async () => {
      const leaf = await addLeaf(w, 'initialized');
      execFileSync('sync');
      dropCaches();
      const r = await timed(async () => (await startBackup(w, { leafDn: leaf.dn })).result());
      const snapshot = (await rw.restic.snapshots(rw.repository, [`ou=${leaf.ou}`]))[0]!;
      return { ms: r.ms, exportMs: r.value.times.retain ?? 0, added: r.value.bytes, logical: snapshot.summary?.total_bytes_processed ?? 0, repo: du(rw.repoDir) };
    };

    const first = await backup();
    const fullCopy = first.logical;
    console.error(`iteration 1: ${fmt(first.ms / 1000, 1)} s, export ${fmt(first.exportMs / 1000, 1)} s, repository ${fmt(first.repo / MiB)} MiB, full copy ${fmt(fullCopy / MiB)} MiB`);
    const growth: number[] = [];
    const exportMs: number[] = [first.exportMs];
    const backupMs: number[] = [first.ms];
    let last = first;
    for (let i = 0; i < iterations; i++) {
      // 64 MiB of new random data at a different place each time
      await guestWritesRandom(w, `${(i * 128) % 1984}M`, CHANGE);
      const it = await backup();
      growth.push(it.repo - last.repo);
      exportMs.push(it.exportMs);
      backupMs.push(it.ms);
      console.error(`iteration ${i + 2}: ${fmt(it.ms / 1000, 1)} s, export ${fmt(it.exportMs / 1000, 1)} s, repository +${fmt((it.repo - last.repo) / MiB, 1)} MiB = ${fmt(it.repo / MiB)} MiB`);
      last = it;
    }
    const cpMs: number[] = [];
    for (let i = 0; i < 3; i++) cpMs.push(await copyOnceMs(image, dir));
    const raw = await rw.restic.rawSize(rw.repository);
    const cp = median(cpMs);
    const rate = (bytes: number, ms: number) => fmt(bytes / MiB / (ms / 1000), 0);
    console.log(`Repository backup root (local restic ${rw.settings.binary.includes('.tools') ? '0.19.1' : ''} repository), VM with 256 MiB RAM and a 2 GiB qcow2 disk of random data (${fmt(allocated / MiB)} MiB allocated), 1 + ${iterations} iterations with 64 MiB of new random data written by the guest before each (${machine()}):\n`);
    console.log(
      table(
        ['measure', 'value', 'goal'],
        [
          ['one full copy (what a plain iteration holds: image, RAM state, XML, LDIF, facts), MiB', fmt(fullCopy / MiB), ''],
          ['repository after the first iteration (`du`), MiB', fmt(first.repo / MiB), ''],
          ['added by the second iteration (64 MiB written), MiB', fmt(growth[0]! / MiB, 1), `≤ 128 (goal ≤ ${fmt((1.2 * CHANGE) / MiB, 1)})`],
          ['  as a multiple of the bytes written', fmt(growth[0]! / CHANGE, 2), '≤ 2 (goal ≤ 1.2)'],
          [`added per later iteration, median of ${growth.length}, MiB`, fmt(median(growth) / MiB, 1), ''],
          [`repository after ${iterations + 1} iterations (\`du\`), MiB`, fmt(last.repo / MiB), ''],
          ['  as a multiple of one full copy', fmt(last.repo / fullCopy, 2), '≤ 1.5'],
          ['  `restic stats --mode raw-data` (packed / uncompressed), MiB', `${fmt(raw.bytes / MiB)} / ${fmt(raw.uncompressed / MiB)}`, ''],
          ['export of an iteration (`restic backup`), first (all new), s', `${fmt(first.exportMs / 1000, 1)} (${rate(fullCopy, first.exportMs)} MiB/s)`, ''],
          ['export of an iteration, median of the later ones, s', `${fmt(median(exportMs.slice(1)) / 1000, 1)} (${rate(fullCopy, median(exportMs.slice(1)))} MiB/s read)`, ''],
          ['whole backup (request → finished), median, s', fmt(median(backupMs) / 1000, 1), ''],
          ['`cp --sparse=always` + sync of the image, median of 3, s', `${fmt(cp / 1000, 1)} (${rate(allocated, cp)} MiB/s)`, ''],
          ['export of a later iteration / cp', fmt(median(exportMs.slice(1)) / cp, 2), ''],
        ],
      ),
    );
  } finally {
    await workers.shutdown();
    await rw.close();
    await temporal.stop();
    await libvirt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
