/**
 * Merge time: the product's merge step (activities/node/backup/merge.ts: the overlay's writes go back
 * into the image, then a pivot) against the original's block pull (the whole image is copied into the
 * overlay, `virsh blockpull --wait`), on a running VM with a fully allocated 2 GiB disk and 64 MiB
 * written into the overlay during the "backup".
 *
 *   node dist/bench/merge.js [--runs 5] [--disk-gib 2] [--written-mib 64]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeActivities } from '../activities/node/index.js';
import { Virsh } from '../adapters/host/virsh.js';
import { resolveBackupConfiguration } from '../core/backup-config.js';
import { planBackup, type PreparedBackup } from '../core/backup-plan.js';
import { makeEntry } from '../core/ldap-entry.js';
import { leafDn, leafTimestamp, parseValidLeafDn } from '../core/naming.js';
import { domainType, ensureLibvirt, LIBVIRT_URI } from '../stack/libvirt.js';
import { VAR_DIR } from '../stack/paths.js';
import { guestWrite, openPath, tinyDomainXml } from '../stack/tiny-vm.js';
import { nodeDeps } from '../workers/node-worker.js';
import { fmt, machine, median, table, timed } from './lib.js';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, 'disk-gib': { type: 'string', default: '2' }, 'written-mib': { type: 'string', default: '64' } },
});
const runs = Number(args.runs);
const writtenMiB = Number(args['written-mib']);
const dir = join(VAR_DIR, 'bench', 'merge');
const virsh = new Virsh(LIBVIRT_URI);
const name = 'kvmbench-merge';
const disk = join(dir, 'vm-persistent', 'pool', 'disk.qcow2');

async function snapshotAndWrite(overlay: string): Promise<void> {
  await virsh.snapshotCreateAs(name, `bench-${Date.now()}`, { diskOnly: true, disks: [{ target: 'vda', overlay }] });
  for (let mib = 0; mib < writtenMiB; mib += 32) await guestWrite(virsh, name, 'vda', 0x77, `${mib}M`, `${Math.min(32, writtenMiB - mib)}M`);
}

function prepared(ou: string): PreparedBackup {
  const plan = planBackup(
    {
      leaf: parseValidLeafDn(leafDn('ou=virtualization,dc=x', name, ou)),
      node: 'bench',
      disks: [{ target: 'vda', path: disk }],
      configuration: resolveBackupConfiguration({
        cloud: makeEntry('ou=backup', { objectClass: ['sstVirtualizationBackupObjectClass'], sstBackupRootDirectory: `file://${dir}/b`, sstBackupRetainDirectory: `file://${dir}/r` }),
      }),
    },
    { virtualizationRoot: dir, method: 'live' },
  );
  return { plan, active: true, runState: 'running', persistent: true, memoryKiB: 0, staging: 'retain', untouched: [], firmware: {}, warnings: [] };
}

async function main(): Promise<void> {
  const libvirt = await ensureLibvirt(join(dir, 'logs'));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'vm-persistent', 'pool'), { recursive: true });
  openPath(join(dir, 'vm-persistent', 'pool'));
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, `${args['disk-gib']}G`]);
  // fully allocated: data in every cluster (qemu-io takes at most 2 GiB - 512 per request)
  for (let mib = 0; mib < Number(args['disk-gib']) * 1024; mib += 512) execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x42 ${mib}M 512M`, disk]);
  const xmlFile = join(dir, `${name}.xml`);
  writeFileSync(xmlFile, tinyDomainXml(name, await domainType(), 64, [{ path: disk, target: 'vda' }]));
  await virsh.define(xmlFile);
  writeFileSync(xmlFile, await virsh.dumpXml(name, { inactive: true })); // with its UUID, for redefining
  await virsh.start(name);
  // the node's merge step as a node worker runs it
  const merge = createNodeActivities(nodeDeps({ environment: 'bench', libvirtUri: LIBVIRT_URI, virtualizationRoot: dir, defaultMethod: 'live', copyRateMiB: 0, liveMaxDowntimeMs: 20 }));
  const commitMs: number[] = [];
  const pullMs: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const p = prepared(leafTimestamp(new Date(Date.UTC(2026, 0, 1, 0, 0, i))));
      await snapshotAndWrite(p.plan.disks[0]!.overlay);
      commitMs.push((await timed(() => merge.mergeBack(p))).ms);

      // the original: the overlay stays, the whole image is pulled into it
      const overlay = join(dir, 'vm-persistent', 'pool', `pull-${i}.qcow2`);
      await snapshotAndWrite(overlay);
      pullMs.push((await timed(async () => virsh.exec(['blockpull', name, 'vda', '--wait']))).ms);
      // back onto the image for the next run (the overlay is now a full copy, and the definition names it)
      await virsh.destroy(name);
      rmSync(overlay, { force: true });
      await virsh.define(xmlFile);
      await virsh.start(name);
      console.error(`run ${i + 1}: commit ${fmt(commitMs.at(-1)!)} ms, pull ${fmt(pullMs.at(-1)!)} ms`);
    }
  } finally {
    await virsh.destroy(name).catch(() => undefined);
    await virsh.undefine(name).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await libvirt.stop();
  }
  console.log(`Merge, ${args['disk-gib']} GiB allocated disk, ${writtenMiB} MiB written during the backup, ${runs} runs (${machine()}):\n`);
  console.log(
    table(
      ['method', 'median ms', 'runs (ms)'],
      [
        ['block commit + pivot (kvm-backup)', fmt(median(commitMs)), commitMs.map((x) => fmt(x)).join(', ')],
        ['block pull (original prov-backup-kvm)', fmt(median(pullMs)), pullMs.map((x) => fmt(x)).join(', ')],
      ],
    ),
  );
  console.log(`\nblock pull / block commit: ${fmt(median(pullMs) / median(commitMs), 1)}×`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
