/**
 * `kvm-backup doctor`: checks this node the way a backup will use it, one line per check: libvirt
 * and KVM, the directory and its configuration, Temporal and the workers, the backup, retain and RAM
 * disk directories with their free space, and the tools the copies need. Exit 0 when nothing failed,
 * else the exit code of the first failure.
 */
import { constants } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import { execa } from 'execa';
import { BACKUP_OBJECT_CLASS, type BackupConfiguration } from '../../core/backup-config.js';
import { Code } from '../../core/exit-codes.js';
import { codeOf, messageOf } from '../../core/failures.js';
import { fileUriToPath, nodeTaskQueue, ramDiskPath } from '../../core/naming.js';
import { SEARCH_ATTRIBUTE_TYPES } from '../../core/search-attributes.js';
import { describeTemporal } from '../../core/temporal-settings.js';
import { TemporalConnectionError } from '../../adapters/temporal/connection.js';
import { Restic, ResticError } from '../../adapters/host/restic.js';
import { isRepositoryUri, parseBackupRoot } from '../../core/backup-root.js';
import { PRODUCT_TAG, RESTIC_PROBLEM_TEXT, RESTIC_VERSION, resticProblemCode } from '../../core/restic.js';
import type { CliContext } from '../cli-context.js';

export interface Check {
  check: string;
  result: 'ok' | 'warn' | 'fail';
  detail: string;
  code?: number;
}

const GiB = 2 ** 30;

async function freeSpace(path: string): Promise<string> {
  const s = await statfs(path);
  const free = s.bavail * s.bsize;
  const total = s.blocks * s.bsize;
  return `${(free / GiB).toFixed(1)} GiB free of ${(total / GiB).toFixed(1)} GiB`;
}

async function directoryCheck(name: string, path: string, missingCode: number): Promise<Check> {
  try {
    if (!(await stat(path)).isDirectory()) return { check: name, result: 'fail', detail: `${path} is not a directory`, code: missingCode };
    await access(path, constants.W_OK);
    return { check: name, result: 'ok', detail: `${path}: ${await freeSpace(path)}` };
  } catch (e) {
    return { check: name, result: 'fail', detail: `${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (e as Error).message}`, code: missingCode };
  }
}

/** A restic repository as backup root: the pinned restic, and the repository opening with this node's password (docs/repository.md). */
async function repositoryCheck(ctx: CliContext, uri: string): Promise<Check> {
  const root = parseBackupRoot(uri);
  if (root.kind !== 'repository') throw new Error(`${uri} is not a repository URI`);
  const restic = new Restic(ctx.config.backup.restic);
  let version: string;
  try {
    version = await restic.version();
  } catch (e) {
    return { check: 'backup root', result: 'fail', detail: `restic (${ctx.config.backup.restic.binary}) does not run: ${messageOf(e)}; scripts/install-restic.sh builds ${RESTIC_VERSION}`, code: Code.UNDEFINED_ERROR };
  }
  try {
    const snapshots = await restic.snapshots(root.repository, [PRODUCT_TAG]);
    const pinned = version.includes(` ${RESTIC_VERSION} `) ? '' : ` (the product is tested with ${RESTIC_VERSION})`;
    return { check: 'backup root', result: pinned ? 'warn' : 'ok', detail: `${uri}: repository opens, ${snapshots.length} snapshots of kvm-backup; ${version.split(' compiled')[0]}${pinned}` };
  } catch (e) {
    if (e instanceof ResticError) return { check: 'backup root', result: 'fail', detail: `${uri}: ${RESTIC_PROBLEM_TEXT[e.problem]}: ${e.message}`, code: resticProblemCode(e.problem, Code.BACKUP_ROOT_DIRECTORY_DOES_NOT_EXIST) };
    return { check: 'backup root', result: 'fail', detail: `${uri}: ${messageOf(e)}`, code: codeOf(e) };
  }
}

export async function runChecks(ctx: CliContext): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  const config = ctx.config;

  try {
    const out = (await execa('virsh', ['-c', 'qemu:///system', 'version'], { timeout: 30_000 })).stdout;
    add({ check: 'libvirt', result: 'ok', detail: /Running hypervisor:\s*(.*)/.exec(out)?.[1] ?? 'answers' });
    const kvm = await execa('virsh', ['-c', 'qemu:///system', 'domcapabilities', '--virttype', 'kvm'], { reject: false, timeout: 30_000 });
    add(kvm.exitCode === 0 ? { check: 'kvm', result: 'ok', detail: '/dev/kvm usable' } : { check: 'kvm', result: 'warn', detail: 'KVM not usable: VMs run under TCG, slowly' });
  } catch (e) {
    add({ check: 'libvirt', result: 'fail', detail: `qemu:///system does not answer (libvirtd and virtlogd running?): ${messageOf(e)}`, code: Code.UNDEFINED_ERROR });
  }

  for (const tool of ['qemu-img', 'setpriv', 'ionice']) {
    const r = await execa(tool, ['--version'], { reject: false });
    add(r.exitCode === 0 || r.exitCode === 1 ? { check: tool, result: 'ok', detail: String(r.stdout || r.stderr).split('\n')[0]! } : { check: tool, result: 'fail', detail: `${tool} is missing`, code: Code.UNDEFINED_ERROR });
  }

  let cloud: BackupConfiguration | undefined;
  try {
    const { found } = await ctx.directory.ping();
    if (!found) add({ check: 'ldap', result: 'fail', detail: `${config.database.url}: no entry ${config.database.serviceSubtree} (SERVICE_SUBTREE)`, code: Code.CANNOT_FIND_CONFIGURATION_ENTRY });
    else add({ check: 'ldap', result: 'ok', detail: `${config.database.url} as ${config.database.bindDn}` });
    const resolved = await ctx.directory.cloudWideConfiguration();
    if (!resolved) {
      add({ check: 'cloud-wide configuration', result: 'fail', detail: `no ${config.database.cloudWideConfigurationDn} (${config.database.cloudWideConfigurationKey})`, code: Code.CANNOT_FIND_CONFIGURATION_ENTRY });
    } else {
      cloud = resolved.config;
      add({ check: 'cloud-wide configuration', result: 'ok', detail: `${config.database.cloudWideConfigurationDn} (${BACKUP_OBJECT_CLASS})` });
    }
  } catch (e) {
    add({ check: 'ldap', result: 'fail', detail: messageOf(e), code: codeOf(e) === Code.UNDEFINED_ERROR ? Code.CANNOT_CONNECT_TO_BACKEND : codeOf(e) });
  }

  try {
    const client = await ctx.temporal();
    await client.connection.workflowService.getSystemInfo({});
    add({ check: 'temporal', result: 'ok', detail: describeTemporal(config.temporal) });
    try {
      const attrs = await client.connection.operatorService.listSearchAttributes({ namespace: config.temporal.namespace });
      const missing = Object.entries(SEARCH_ATTRIBUTE_TYPES).filter(([n]) => !(n in (attrs.customAttributes ?? {})));
      add(
        missing.length
          ? { check: 'search attributes', result: 'warn', detail: `missing ${missing.map(([n, t]) => `${n} (${t})`).join(', ')} (a worker registers them when it starts, where the namespace allows it)` }
          : { check: 'search attributes', result: 'ok', detail: 'registered' },
      );
    } catch (e) {
      add({ check: 'search attributes', result: 'warn', detail: `cannot list them (${messageOf(e)}); the product needs ${Object.entries(SEARCH_ATTRIBUTE_TYPES).map(([n, t]) => `${n} (${t})`).join(', ')}` });
    }
    for (const [name, queue, type] of [
      ['node worker', nodeTaskQueue(config.environment), 2],
      ['control worker', config.temporal.controlTaskQueue, 1],
    ] as const) {
      const tq = await client.connection.workflowService.describeTaskQueue({ namespace: config.temporal.namespace, taskQueue: { name: queue }, taskQueueType: type });
      const pollers = tq.pollers?.length ?? 0;
      add(pollers ? { check: name, result: 'ok', detail: `${pollers} poller(s) on ${queue}` } : { check: name, result: 'warn', detail: `nobody polls ${queue}: start \`kvm-backup worker\`` });
    }
  } catch (e) {
    add({ check: 'temporal', result: 'fail', detail: e instanceof TemporalConnectionError ? e.message : `${describeTemporal(config.temporal)}: ${messageOf(e)}`, code: Code.UNDEFINED_ERROR });
  }

  add(await directoryCheck('virtualization root', config.backup.virtualizationRoot, Code.UNSUPPORTED_CONFIGURATION_PARAMETER));
  if (cloud) {
    for (const [name, uri, code] of [
      ['backup root', cloud.rootDirectory, Code.BACKUP_ROOT_DIRECTORY_DOES_NOT_EXIST],
      ['retain root', cloud.retainDirectory, Code.RETAIN_ROOT_DIRECTORY_DOES_NOT_EXIST],
    ] as const) {
      try {
        if (name === 'backup root' && isRepositoryUri(uri)) add(await repositoryCheck(ctx, uri));
        else add(await directoryCheck(name, fileUriToPath(uri, name), code));
      } catch (e) {
        add({ check: name, result: 'fail', detail: messageOf(e), code: codeOf(e) });
      }
    }
    try {
      const ram = ramDiskPath(cloud.ramDiskLocation);
      const c = await directoryCheck('ram disk', ram, Code.CONFIGURED_RAM_DISK_IS_NOT_VALUD);
      // the state file then goes to the retain directory: a slower pause, not a failure
      add(c.result === 'ok' ? c : { ...c, result: 'warn', detail: `${c.detail}; state files go to the retain directory instead` });
    } catch (e) {
      add({ check: 'ram disk', result: 'warn', detail: messageOf(e) });
    }
  }
  return checks;
}

export async function doctorCommand(ctx: CliContext): Promise<number> {
  const checks = await runChecks(ctx);
  const human = checks.map((c) => `${c.result.toUpperCase().padEnd(4)} ${c.check}: ${c.detail}`).join('\n');
  ctx.print(human, checks);
  return checks.find((c) => c.result === 'fail')?.code ?? 0;
}
