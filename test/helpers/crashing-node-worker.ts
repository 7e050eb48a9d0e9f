/**
 * A node worker (as `kvm-backup worker --node-only`) that kills itself with SIGKILL at one chosen
 * point of one activity, as a crash would: at the `nth` call of one adapter method (`files.rename`,
 * `files.removeDirectory`, `virsh.exec`, … or `*` for any) made by the first attempt of that
 * activity, before or after the call. Where it died is written to `markFile` first, so the test
 * knows. It can also make one step fail for good (`failIn`) or run long (`delayIn`). Started by
 * test/helpers/node-process.ts:
 *
 *   node crashing-node-worker.js --config FILE --crash '{"activity":"rotateIterations","call":"files.rename","nth":1,"when":"after"}'
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Context } from '@temporalio/activity';
import type { NodeDeps } from '../../activities/node/index.js';
import { loadGlobalConfig } from '../../client/config-file.js';
import { failure } from '../../core/failures.js';
import { configureLogging } from '../../workers/logging.js';
import { startWorkers } from '../../workers/run-workers.js';

export interface CrashSpec {
  /** The activity type in which the worker dies (none: it does not die). */
  activity?: string;
  /** `<adapter>.<method>` counted (files, virsh, images; `copy` for the copier), or `*` for every call. */
  call?: string;
  /** Only calls whose first argument (a path) contains this are counted. */
  argIncludes?: string;
  /** Dies at the nth counted call (default 1). */
  nth?: number;
  /** Before the call runs, or after it returned (default before). */
  when?: 'before' | 'after';
  /** Written (one line: where) just before the kill. */
  markFile?: string;
  /**
   * Also: every call of `call` (default: every adapter call) in this other activity whose first
   * argument (as JSON) contains `argIncludes` fails with this exit code.
   */
  failIn?: { activity: string; call?: string; argIncludes?: string; code: number };
  /** Also: the first adapter call of the first attempt of this activity waits `ms` first (a short step that runs long). */
  delayIn?: { activity: string; ms: number };
}

function activityType(): { type: string; attempt: number } | undefined {
  try {
    const { info } = Context.current();
    return { type: info.activityType, attempt: info.attempt };
  } catch {
    return undefined;
  }
}

function inTarget(spec: CrashSpec): boolean {
  const a = activityType();
  return spec.activity !== undefined && a?.type === spec.activity && a.attempt === 1;
}

/** The deps with every adapter call counted, and the process killed at the chosen one. */
export function crashingDeps(deps: NodeDeps, spec: CrashSpec): NodeDeps {
  let count = 0;
  let delayed = false;
  const die = (where: string) => {
    if (spec.markFile) writeFileSync(spec.markFile, `${where}\n`);
    process.kill(process.pid, 'SIGKILL');
  };
  const counted = (name: string, args: unknown[]) =>
    inTarget(spec) && (spec.call === undefined || spec.call === '*' || spec.call === name) && (!spec.argIncludes || String(args[0]).includes(spec.argIncludes)) && ++count === (spec.nth ?? 1);
  const wrapFn =
    (name: string, fn: (...a: unknown[]) => unknown, self: unknown) =>
    async (...args: unknown[]) => {
      const d = spec.delayIn;
      const a = activityType();
      if (d && !delayed && a?.type === d.activity && a.attempt === 1) {
        delayed = true;
        await new Promise((resolve) => setTimeout(resolve, d.ms));
      }
      const f = spec.failIn;
      if (f && a?.type === f.activity && (f.call ?? name) === name && (!f.argIncludes || JSON.stringify(args[0]).includes(f.argIncludes))) throw failure(f.code, `injected failure of ${name} in ${f.activity}`);
      if (!counted(name, args)) return fn.apply(self, args);
      const where = `${spec.activity}: ${spec.when ?? 'before'} ${name}(${String(args[0])}) #${count}`;
      if (spec.when !== 'after') die(where);
      const result = await fn.apply(self, args);
      die(where);
      return result;
    };
  const wrap = <T extends object>(adapter: string, target: T): T =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const value = Reflect.get(t, prop, receiver) as unknown;
        return typeof value === 'function' && typeof prop === 'string' ? wrapFn(`${adapter}.${prop}`, value as (...a: unknown[]) => unknown, t) : value;
      },
    });
  return {
    ...deps,
    files: wrap('files', deps.files),
    virsh: wrap('virsh', deps.virsh),
    images: wrap('images', deps.images),
    copy: wrapFn('copy', deps.copy as (...a: unknown[]) => unknown, undefined) as NodeDeps['copy'],
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, crash: { type: 'string' } } });
  const spec = JSON.parse(values.crash!) as CrashSpec;
  const config = loadGlobalConfig(values.config);
  configureLogging(config);
  const running = await startWorkers(config, { node: true, control: false }, { wrapNodeDeps: (d) => crashingDeps(d, spec) });
  const stop = () => void running.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`workers running for node ${config.environment} (node${spec.activity ? `, dies in ${spec.activity}` : ''})`);
  await running.done;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
