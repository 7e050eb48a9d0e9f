/**
 * Guest pause of the two snapshot methods on the same VM, through the product's own snapshot and
 * merge code (activities/node/backup), measured from QEMU's STOP and RESUME events.
 *
 * The tiny VM has no OS, so its RAM would be zero pages that cost nothing to save. To measure a
 * realistic guest, its RAM is file-backed and shared, and the benchmark fills all but the first
 * 16 MiB (where SeaBIOS lives) with random bytes from the host before each run. The state file goes
 * to a tmpfs RAM disk for both methods (the configuration the original recommends).
 *
 *   node dist/bench/guest-pause.js [--runs 5] [--sizes 512,2048]
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeActivities } from '../activities/node/index.js';
import { Virsh } from '../adapters/host/virsh.js';
import { nodeDeps } from '../workers/node-worker.js';
import { resolveBackupConfiguration } from '../core/backup-config.js';
import { planBackup, type PreparedBackup } from '../core/backup-plan.js';
import type { SnapshotMethod } from '../core/global-config.js';
import { makeEntry } from '../core/ldap-entry.js';
import { leafDn, leafTimestamp, parseValidLeafDn } from '../core/naming.js';
import { ensureLibvirt, LIBVIRT_URI } from '../stack/libvirt.js';
import { VAR_DIR } from '../stack/paths.js';
import { openPath, tinyDomainXml } from '../stack/tiny-vm.js';
import { domainType } from '../stack/libvirt.js';
import { fmt, machine, median, table } from './lib.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, sizes: { type: 'string', default: '512,2048' } } });
const runs = Number(args.runs);
const sizes = args.sizes!.split(',').map(Number);
const virsh = new Virsh(LIBVIRT_URI);
const dir = join(VAR_DIR, 'bench', 'guest-pause');

/** The node's steps as a node worker runs them, with QEMU's downtime limit for the live snapshot. */
function steps(liveMaxDowntimeMs: number) {
  return createNodeActivities(nodeDeps({ environment: 'bench', libvirtUri: LIBVIRT_URI, virtualizationRoot: dir, defaultMethod: 'live', copyRateMiB: 0, liveMaxDowntimeMs }));
}

/** The product's live method, the same with QEMU's default downtime limit, and the original's method. */
const VARIANTS = [
  { label: 'live', method: 'live' as SnapshotMethod, downtimeMs: 20 },
  { label: 'live-300', method: 'live' as SnapshotMethod, downtimeMs: 300 },
  { label: 'classic', method: 'classic' as SnapshotMethod, downtimeMs: 20 },
];

async function defineVm(name: string, memoryMiB: number, disk: string): Promise<void> {
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
  const xml = tinyDomainXml(name, await domainType(), memoryMiB, [{ path: disk, target: 'vda' }]).replace(
    '<vcpu>',
    "<memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>\n  <vcpu>",
  );
  const file = join(dir, `${name}.xml`);
  writeFileSync(file, xml);
  await virsh.define(file);
  await virsh.start(name);
}

/** Random bytes into the guest's RAM file, from 16 MiB to 32 MiB below the end. */
function fillRam(name: string, memoryMiB: number): void {
  const ramDir = readdirSync('/var/lib/libvirt/qemu/ram').find((d) => d.endsWith(`-${name}`));
  if (!ramDir) throw new Error(`no RAM file for ${name}`);
  const fd = openSync(join('/var/lib/libvirt/qemu/ram', ramDir, 'pc.ram'), 'r+');
  const block = randomBytes(16 * 2 ** 20);
  // SeaBIOS keeps its tables at the top of RAM and its code below 1 MiB: leave both alone
  for (let mib = 16; mib < memoryMiB - 32; mib += 16) writeSync(fd, block, 0, block.length, mib * 2 ** 20);
  closeSync(fd);
}

async function main(): Promise<void> {
  const libvirt = await ensureLibvirt(join(dir, 'logs'));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  openPath(dir);
  const ramDisk = join(dir, 'ramdisk');
  mkdirSync(ramDisk);
  const maxMiB = Math.max(...sizes);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(maxMiB * 1.2)}m`, 'tmpfs', ramDisk]);
  const rows: Array<Array<string | number>> = [];
  try {
    for (const memoryMiB of sizes) {
      const name = `kvmbench-pause-${memoryMiB}`;
      const disk = join(dir, 'vm-persistent', 'pool', `${name}.qcow2`);
      mkdirSync(join(dir, 'vm-persistent', 'pool'), { recursive: true });
      await defineVm(name, memoryMiB, disk);
      const pauses: Record<string, number[]> = { live: [], 'live-300': [], classic: [] };
      const walls: Record<string, number[]> = { live: [], 'live-300': [], classic: [] };
      try {
        for (let i = 0; i < runs; i++) {
          for (const [v, { label, method, downtimeMs }] of VARIANTS.entries()) {
            fillRam(name, memoryMiB);
            const ou = leafTimestamp(new Date(Date.UTC(2026, 0, 1, 0, i, v)));
            const plan = planBackup(
              {
                leaf: parseValidLeafDn(leafDn('ou=virtualization,dc=x', name, ou)),
                node: 'bench',
                disks: [{ target: 'vda', path: disk }],
                configuration: resolveBackupConfiguration({
                  cloud: makeEntry('ou=backup', {
                    objectClass: ['sstVirtualizationBackupObjectClass'],
                    sstBackupRootDirectory: `file://${dir}/backup`,
                    sstBackupRetainDirectory: `file://${dir}/retain`,
                    sstBackupRamDiskLocation: ramDisk,
                    sstVirtualizationDiskImageGroup: 'root',
                    sstVirtualizationDiskImageDirectoryGroup: 'root',
                  }),
                }),
              },
              { virtualizationRoot: dir, method },
            );
            const prepared: PreparedBackup = { plan, active: true, runState: 'running', persistent: true, memoryKiB: memoryMiB * 1024, staging: 'ramdisk', untouched: [], firmware: {}, warnings: [] };
            const t = Date.now();
            const snap = await steps(downtimeMs).takeSnapshot(prepared);
            walls[label]!.push(Date.now() - t);
            pauses[label]!.push(snap.pauseMs);
            await steps(downtimeMs).mergeBack(prepared);
            rmSync(prepared.plan.stagingStateFile, { force: true });
            rmSync(join(dir, 'retain'), { recursive: true, force: true });
            console.error(`${memoryMiB} MiB ${label} run ${i + 1}: pause ${snap.pauseMs} ms`);
          }
        }
      } finally {
        await virsh.destroy(name).catch(() => undefined);
        await virsh.undefine(name).catch(() => undefined);
      }
      const live = median(pauses['live']!);
      const classic = median(pauses['classic']!);
      const live300 = median(pauses['live-300']!);
      rows.push([
        `${memoryMiB} MiB`,
        fmt(live),
        fmt(live300),
        fmt(classic),
        `${fmt(classic / Math.max(live, 1), 1)}×`,
        fmt(median(walls['live']!)),
        fmt(median(walls['classic']!)),
        pauses['live']!.join(', '),
        pauses['classic']!.join(', '),
      ]);
    }
  } finally {
    execFileSync('umount', [ramDisk]);
    await libvirt.stop();
  }
  console.log(`Guest pause, ${runs} runs per method and size (${machine()}):\n`);
  console.log(
    table(
      ['guest RAM (random data)', 'live (20 ms limit) median ms', 'live, QEMU default 300 ms limit', 'classic median ms', 'classic / live', 'live wall ms', 'classic wall ms', 'live runs', 'classic runs'],
      rows,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
