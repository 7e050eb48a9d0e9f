/** Small helpers shared by the benchmarks: medians, timing, page-cache drops, markdown tables. */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg, totalmem } from 'node:os';

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value };
}

/** Cold caches for each copy run, so throughput is the disk's, not the page cache's. */
export function dropCaches(): void {
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/**
 * The physical cost of one copy, the baseline of the end-to-end benchmarks: `cp --sparse=always` of
 * `image` into `dir` and `sync` of the copy, caches dropped first; the copy is removed. Milliseconds.
 */
export async function copyOnceMs(image: string, dir: string): Promise<number> {
  const target = join(dir, 'cp-target.qcow2');
  rmSync(target, { force: true });
  execFileSync('sync');
  dropCaches();
  const { ms } = await timed(async () => {
    execFileSync('cp', ['--sparse=always', image, target]);
    execFileSync('sync', ['-f', target]);
  });
  rmSync(target, { force: true });
  return ms;
}

export function machine(): string {
  return `${cpus().length} vCPU ${cpus()[0]?.model.trim() ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${new Date().toISOString().slice(0, 10)}`;
}

export function table(header: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export const fmt = (n: number, digits = 0) => n.toFixed(digits);

/** CPU time (user + system, ms) a process has used so far, from /proc (10 ms steps: USER_HZ 100). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** The load average over one minute, for the notes of a result. */
export function load(): string {
  return loadavg()[0]!.toFixed(1);
}
