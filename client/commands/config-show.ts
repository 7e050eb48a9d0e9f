/**
 * `kvm-backup config show <vm>`: the backup configuration that applies to a VM (VM → pool →
 * cloud-wide, as a whole entry), each value with where it came from, and this node's own settings.
 */
import { ATTRIBUTE_OF } from '../../core/backup-config.js';
import { codeOf, messageOf } from '../../core/failures.js';
import { ConfigError } from '../../core/global-config.js';
import { CliError, type CliContext } from '../cli-context.js';
import { resolveVm } from '../vm-ref.js';

function show(v: unknown, key: string): string {
  if (typeof v === 'number' && /Permission$/.test(key)) return v.toString(8);
  if (Array.isArray(v)) return v.length ? v.join(', ') : '(none)';
  if (v && typeof v === 'object') return JSON.stringify(v);
  return String(v ?? '(unset)');
}

export async function configShowCommand(ctx: CliContext, vmArg: string): Promise<number> {
  const vm = await resolveVm(ctx, vmArg);
  const [resolved, disks] = await Promise.all([ctx.directory.effectiveConfiguration(vm.vm, vm.pool), ctx.directory.disks(vm.vm)]).catch((e) => {
    throw new CliError(e instanceof ConfigError ? e.code : codeOf(e), messageOf(e));
  });
  const { level, dn, config, origin } = resolved;
  const rows: Array<{ key: string; attribute: string; value: string; source: string }> = (Object.keys(ATTRIBUTE_OF) as Array<keyof typeof ATTRIBUTE_OF>).map((key) => ({
    key,
    attribute: ATTRIBUTE_OF[key],
    value: show(config[key], ATTRIBUTE_OF[key]),
    source: origin[key] === 'entry' ? `${level} (${dn})` : 'seed default',
  }));
  if (config.cron) rows.push({ key: 'cron', attribute: 'sstCron*', value: show(config.cron, ''), source: `${level} (${dn})` });
  const node = {
    environment: ctx.config.environment,
    virtualizationRoot: ctx.config.backup.virtualizationRoot,
    defaultSnapshotMethod: ctx.config.backup.snapshotMethod,
    copyBandwidthMiB: ctx.config.backup.copyBandwidthMiB,
    liveMaxDowntimeMs: ctx.config.backup.liveMaxDowntimeMs,
    maxConcurrentBackups: ctx.config.backup.maxConcurrentBackups,
  };
  const human = [
    `VM ${vm.vm} on node ${vm.node ?? '(none)'}${vm.pool ? `, pool ${vm.pool}` : ''}: the ${level} configuration applies (${dn})`,
    `disks: ${disks.map((d) => `${d.target}=${d.path}`).join(', ')}`,
    '',
    ['KEY', 'ATTRIBUTE', 'VALUE', 'FROM'].join('\t'),
    ...rows.map((r) => [r.key, r.attribute, r.value, r.source].join('\t')),
    '',
    `this host ([Global] ENVIRONMENT ${node.environment}): VIRTUALIZATION_ROOT ${node.virtualizationRoot}, SNAPSHOT_METHOD ${node.defaultSnapshotMethod}, COPY_BANDWIDTH ${node.copyBandwidthMiB} MiB/s, LIVE_MAX_DOWNTIME_MS ${node.liveMaxDowntimeMs}, MAX_CONCURRENT_BACKUPS ${node.maxConcurrentBackups || 'no limit'}`,
  ].join('\n');
  ctx.print(human, { vm: vm.vm, node: vm.node, pool: vm.pool, level, dn, disks, values: rows, host: node });
  return 0;
}
