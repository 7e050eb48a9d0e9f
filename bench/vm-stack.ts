/**
 * The real stack the VM benchmarks run on: libvirtd (reused if one runs), a Temporal dev server of
 * their own, and a test world (slapd, a tiny VM, workers) below var/bench/<name>; everything stopped
 * and removed by `stop()`.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../stack/daemon.js';
import { ensureLibvirt } from '../stack/libvirt.js';
import { VAR_DIR } from '../stack/paths.js';
import { startTemporalServer } from '../stack/temporal-server.js';
import { createWorld, type World } from '../test/helpers/world.js';

export interface BenchStack {
  dir: string;
  world: World;
  stop(): Promise<void>;
}

export async function startBenchStack(name: string, memoryMiB: number): Promise<BenchStack> {
  const dir = join(VAR_DIR, 'bench', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  process.env['KVM_BACKUP_TEST_DIR'] = dir;
  const libvirt = await ensureLibvirt(join(dir, 'logs'));
  const temporal = await startTemporalServer({ port: await freePort(), logFile: join(dir, 'logs', 'temporal.log') });
  process.env['TEMPORAL_ADDRESS'] = temporal.address;
  const world = await createWorld({ label: `bench-${name}`, memoryMiB });
  const workers = await world.startWorkers();
  return {
    dir,
    world,
    stop: async () => {
      await workers.shutdown();
      await world.close();
      await temporal.stop();
      await libvirt.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
