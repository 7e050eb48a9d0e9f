/**
 * Restore, end to end through Temporal on the real stack (slapd, libvirt, a running VM with 512 MiB
 * of RAM and a 2 GiB disk holding 1.5 GiB of data): the time from the restore request to the VM
 * running again, and the throughput of unretaining the large files against `cp --sparse=always` (and a
 * sync) of the same files, caches dropped before each run.
 *
 *   node dist/bench/restore.js [--runs 3]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { backupDirOf, backupNow, startRestore } from '../test/helpers/backup.js';
import { startBenchStack } from './vm-stack.js';
import { dropCaches, fmt, machine, median, table, timed } from './lib.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Number(args.runs);

async function main(): Promise<void> {
  const stack = await startBenchStack('restore', 512);
  const w = stack.world;
  const dir = stack.dir;
  const requestToRunning: number[] = [];
  const productMiBs: number[] = [];
  const cpMiBs: number[] = [];
  try {
    // 2 GiB disk, 1.5 GiB of data (the VM is stopped for the offline write, then started again)
    await w.virsh.destroy(w.vm);
    execFileSync('qemu-img', ['resize', '-q', w.disks[0]!.path, '2G']);
    for (let mib = 0; mib < 1536; mib += 512) execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a ${mib}M 512M`, w.disks[0]!.path]);
    await w.virsh.start(w.vm);
    const leaf = await backupNow(w);
    const backupDir = backupDirOf(w, leaf.ou);
    const large = readdirSync(backupDir).filter((f) => /\.(state|qcow2)\./.test(f));
    const bytes = large.reduce((sum, f) => sum + statSync(join(backupDir, f)).size, 0);
    for (let i = 0; i < runs; i++) {
      // the baseline: the same files copied as a script would
      const target = join(dir, 'cp-target');
      rmSync(target, { recursive: true, force: true });
      mkdirSync(target);
      execFileSync('sync');
      dropCaches();
      const cp = await timed(async () => {
        for (const f of large) execFileSync('cp', ['--sparse=always', join(backupDir, f), join(target, f)]);
        execFileSync('sync', ['-f', target]);
      });
      cpMiBs.push(bytes / 2 ** 20 / (cp.ms / 1000));
      rmSync(target, { recursive: true, force: true });

      execFileSync('sync');
      dropCaches();
      const { ms, value: outcome } = await timed(async () => (await startRestore(w, { leafDn: leaf.dn, confirmed: true })).result());
      if ((await w.virsh.state(w.vm)).state !== 'running') throw new Error('the VM is not running after the restore');
      requestToRunning.push(ms);
      productMiBs.push(outcome.bytes / 2 ** 20 / (outcome.copyMs / 1000));
      console.error(`run ${i + 1}: request → running ${fmt(ms)} ms, unretain ${fmt(productMiBs.at(-1)!)} MiB/s, cp ${fmt(cpMiBs.at(-1)!)} MiB/s`);
    }
    console.log(`Restore of a VM with 512 MiB RAM and a 2 GiB disk (1.5 GiB data), ${fmt(bytes / 2 ** 20)} MiB of state + image, ${runs} runs (${machine()}):\n`);
    console.log(
      table(
        ['measure', 'median', 'runs'],
        [
          ['request → VM running (restored from RAM state), s', fmt(median(requestToRunning) / 1000, 2), requestToRunning.map((x) => fmt(x / 1000, 2)).join(', ')],
          ['unretain large files (copy + sha256), MiB/s', fmt(median(productMiBs)), productMiBs.map((x) => fmt(x)).join(', ')],
          ['cp --sparse=always + sync of the same files, MiB/s', fmt(median(cpMiBs)), cpMiBs.map((x) => fmt(x)).join(', ')],
        ],
      ),
    );
    console.log(`\nunretain / cp: ${fmt(median(productMiBs) / median(cpMiBs), 2)}×`);
  } finally {
    await stack.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
