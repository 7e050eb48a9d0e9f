/**
 * Export throughput: the product's copier (activities/node/copy.ts, as the export phase runs it:
 * sparse, idle I/O class, data synced) against `cp --sparse=always` and `qemu-img convert -O qcow2`
 * of the same image, each followed by a sync of the copy, caches dropped before every run, runs
 * interleaved. For honesty it also shows the copy to retain, which hashes while it copies (the one
 * sha256 pass of a backup), and the script doing the same work (cp, sync, sha256sum).
 *
 *   node dist/bench/export-throughput.js [--runs 5] [--size-gib 2] [--data-gib 1.5]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { copyFile } from '../adapters/host/copy.js';
import { VAR_DIR } from '../stack/paths.js';
import { dropCaches, fmt, machine, median, table, timed } from './lib.js';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, 'size-gib': { type: 'string', default: '2' }, 'data-gib': { type: 'string', default: '1.5' } },
});
const runs = Number(args.runs);
const dir = join(VAR_DIR, 'bench', 'export');

const sh = (cmd: string, argv: string[]) => execFileSync(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'] });

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const src = join(dir, 'image.qcow2');
  const dst = join(dir, 'copy.qcow2');
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', src, `${args['size-gib']}G`]);
  // data in the first part, the rest never written (qcow2 leaves it unallocated)
  const dataMiB = Math.round(Number(args['data-gib']) * 1024);
  for (let mib = 0; mib < dataMiB; mib += 256) {
    sh('qemu-io', ['-f', 'qcow2', '-c', `write -P ${0x10 + ((mib / 256) % 200)} ${mib}M ${Math.min(256, dataMiB - mib)}M`, src]);
  }
  const mib = statSync(src).size / 2 ** 20;

  const methods: Record<string, () => Promise<unknown>> = {
    'kvm-backup export (copier)': () => copyFile({ src, dst }),
    'cp --sparse=always + sync': async () => {
      sh('cp', ['--sparse=always', src, dst]);
      sh('sync', [dst]);
    },
    'qemu-img convert -O qcow2 + sync': async () => {
      sh('qemu-img', ['convert', '-O', 'qcow2', src, dst]);
      sh('sync', [dst]);
    },
    'kvm-backup copy to retain (copier + sha256)': () => copyFile({ src, dst, sha256: true }),
    'cp + sync + sha256sum (same work)': async () => {
      sh('cp', ['--sparse=always', src, dst]);
      sh('sync', [dst]);
      sh('sha256sum', [dst]);
    },
  };
  const ms: Record<string, number[]> = Object.fromEntries(Object.keys(methods).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, run] of Object.entries(methods)) {
      rmSync(dst, { force: true });
      sh('sync', []);
      dropCaches();
      ms[name]!.push((await timed(run)).ms);
      console.error(`run ${i + 1} ${name}: ${fmt(ms[name]!.at(-1)!)} ms`);
    }
  }
  rmSync(dir, { recursive: true, force: true });

  const rate = (name: string) => mib / (median(ms[name]!) / 1000);
  const fastest = Math.max(rate('cp --sparse=always + sync'), rate('qemu-img convert -O qcow2 + sync'));
  console.log(`Export throughput, ${fmt(mib)} MiB qcow2 (${args['size-gib']} GiB virtual, ${args['data-gib']} GiB data), ${runs} runs, caches dropped (${machine()}):\n`);
  console.log(
    table(
      ['method', 'median s', 'MiB/s', 'vs faster baseline', 'runs (s)'],
      Object.keys(methods).map((name) => [
        name,
        fmt(median(ms[name]!) / 1000, 2),
        fmt(rate(name)),
        `${fmt(rate(name) / fastest, 2)}×`,
        ms[name]!.map((x) => fmt(x / 1000, 2)).join(', '),
      ]),
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
