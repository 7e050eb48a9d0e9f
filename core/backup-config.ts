/**
 * The backup configuration of one VM, as the seed defines it: the VM's own `ou=backup` entry if it
 * carries sstVirtualizationBackupObjectClass, else its pool's, else the cloud-wide entry. The first
 * entry found applies as a whole (no per-attribute inheritance, as in the original); attributes it
 * lacks take the seed's defaults. The result says which level applied and, per value, whether it
 * came from the entry or from the default.
 */
import { ConfigError, SNAPSHOT_METHODS, type SnapshotMethod } from './global-config.js';
import { Code } from './exit-codes.js';
import { hasObjectClass, value, values, type LdapEntry } from './ldap-entry.js';

export const BACKUP_OBJECT_CLASS = 'sstVirtualizationBackupObjectClass';
export const CRON_OBJECT_CLASS = 'sstCronObjectClass';

export type ConfigLevel = 'vm' | 'pool' | 'cloud';

export interface CronSchedule {
  minute: string;
  hour: string;
  day: string;
  month: string;
  dayOfWeek: string;
  active: boolean;
  command?: string;
}

export interface BackupConfiguration {
  /** sstBackupNumberOfIterations: keep-last, at least 1 (core/retention.ts). */
  iterations: number;
  /** Our extensions (core/retention.ts): the newest iteration of each of the last N days / ISO weeks / months; 0 = off. */
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
  rootDirectory: string;
  retainDirectory: string;
  /** Where the RAM state is written first; undefined when the entry sets none and defaults are off. */
  ramDiskLocation: string;
  restoreWithoutState: boolean;
  excludeFromBackup: boolean;
  forceStart: boolean;
  /** MiB/s for the block commit; 0 = unlimited. */
  bandwidthMerge: number;
  imageFormat: string;
  imageOwner: string;
  imageGroup: string;
  imagePermission: number;
  directoryOwner: string;
  directoryGroup: string;
  directoryPermission: number;
  /** "0: UUID" values in order, as the seed describes. */
  sequenceStop: string[];
  sequenceStart: string[];
  /** Our extension (sstBackupSnapshotMethod); undefined = the node's default. */
  snapshotMethod?: SnapshotMethod;
  cron?: CronSchedule;
}

export interface ResolvedBackupConfiguration {
  level: ConfigLevel;
  dn: string;
  config: BackupConfiguration;
  /** Per key of BackupConfiguration: 'entry' if the entry set it, 'default' if the seed's default applied. */
  origin: Record<string, 'entry' | 'default'>;
}

/** The seed's defaults (docs/configuration.md). */
export const SEED_DEFAULTS: Omit<BackupConfiguration, 'cron' | 'snapshotMethod'> = {
  iterations: 1,
  keepDaily: 0,
  keepWeekly: 0,
  keepMonthly: 0,
  rootDirectory: 'file:///var/backup/virtualization',
  retainDirectory: 'file:///var/virtualization/retain',
  ramDiskLocation: '/mnt/ramdisk',
  restoreWithoutState: false,
  excludeFromBackup: false,
  forceStart: false,
  bandwidthMerge: 0,
  imageFormat: 'qcow2',
  imageOwner: 'root',
  imageGroup: 'vm-storage',
  imagePermission: 0o660,
  directoryOwner: 'root',
  directoryGroup: 'vm-storage',
  directoryPermission: 0o770,
  sequenceStop: [],
  sequenceStart: [],
};

/** LDAP attribute of each configuration key. */
export const ATTRIBUTE_OF = {
  iterations: 'sstBackupNumberOfIterations',
  keepDaily: 'sstBackupKeepDaily',
  keepWeekly: 'sstBackupKeepWeekly',
  keepMonthly: 'sstBackupKeepMonthly',
  rootDirectory: 'sstBackupRootDirectory',
  retainDirectory: 'sstBackupRetainDirectory',
  ramDiskLocation: 'sstBackupRamDiskLocation',
  restoreWithoutState: 'sstRestoreVMWithoutState',
  excludeFromBackup: 'sstBackupExcludeFromBackup',
  forceStart: 'sstVirtualizationVirtualMachineForceStart',
  bandwidthMerge: 'sstVirtualizationBandwidthMerge',
  imageFormat: 'sstVirtualizationDiskImageFormat',
  imageOwner: 'sstVirtualizationDiskImageOwner',
  imageGroup: 'sstVirtualizationDiskImageGroup',
  imagePermission: 'sstVirtualizationDiskImagePermission',
  directoryOwner: 'sstVirtualizationDiskImageDirectoryOwner',
  directoryGroup: 'sstVirtualizationDiskImageDirectoryGroup',
  directoryPermission: 'sstVirtualizationDiskImageDirectoryPermission',
  sequenceStop: 'sstVirtualizationVirtualMachineSequenceStop',
  sequenceStart: 'sstVirtualizationVirtualMachineSequenceStart',
  snapshotMethod: 'sstBackupSnapshotMethod',
} as const satisfies Record<keyof Omit<BackupConfiguration, 'cron'>, string>;

function bad(entry: LdapEntry, attribute: string, raw: string, expected: string): never {
  throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${attribute}: "${raw}" in ${entry.dn} is not ${expected}`);
}

function parseBoolean(entry: LdapEntry, attribute: string, raw: string): boolean {
  if (/^true$/i.test(raw)) return true;
  if (/^false$/i.test(raw)) return false;
  return bad(entry, attribute, raw, 'TRUE or FALSE');
}

function parseCount(entry: LdapEntry, attribute: string, raw: string, min: number): number {
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < min) return bad(entry, attribute, raw, `an integer ≥ ${min}`);
  return Number(raw);
}

function parseMode(entry: LdapEntry, attribute: string, raw: string): number {
  if (!/^0?[0-7]{3}$/.test(raw)) return bad(entry, attribute, raw, 'an octal permission such as 660');
  return parseInt(raw, 8);
}

function parseName(entry: LdapEntry, attribute: string, raw: string): string {
  // owners and groups go to chown as one argument; still refuse anything that is not a plain name or id
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/.test(raw)) return bad(entry, attribute, raw, 'a user or group name');
  return raw;
}

function parseCron(entry: LdapEntry): CronSchedule | undefined {
  if (!hasObjectClass(entry, CRON_OBJECT_CLASS)) return undefined;
  const field = (a: string) => value(entry, a) ?? '';
  const active = value(entry, 'sstCronActive');
  const command = value(entry, 'sstCronCommand');
  return {
    minute: field('sstCronMinute'),
    hour: field('sstCronHour'),
    day: field('sstCronDay'),
    month: field('sstCronMonth'),
    dayOfWeek: field('sstCronDayOfWeek'),
    active: active === undefined ? false : parseBoolean(entry, 'sstCronActive', active),
    ...(command ? { command } : {}),
  };
}

/** Reads one configuration entry, filling what it lacks with the seed's defaults. */
export function parseBackupConfiguration(entry: LdapEntry): { config: BackupConfiguration; origin: Record<string, 'entry' | 'default'> } {
  const origin: Record<string, 'entry' | 'default'> = {};
  const raw = (key: keyof typeof ATTRIBUTE_OF): string | undefined => {
    const v = value(entry, ATTRIBUTE_OF[key]);
    origin[key] = v === undefined || v === '' ? 'default' : 'entry';
    return v === '' ? undefined : v;
  };
  const d = SEED_DEFAULTS;
  const a = ATTRIBUTE_OF;
  const orDefault = <T>(key: keyof typeof ATTRIBUTE_OF, parse: (attr: string, v: string) => T, fallback: T): T => {
    const v = raw(key);
    return v === undefined ? fallback : parse(a[key], v);
  };
  const list = (key: 'sequenceStop' | 'sequenceStart'): string[] => {
    const v = values(entry, a[key]);
    origin[key] = v.length ? 'entry' : 'default';
    return v;
  };
  const method = raw('snapshotMethod');
  if (method !== undefined && !SNAPSHOT_METHODS.includes(method as SnapshotMethod)) {
    bad(entry, a.snapshotMethod, method, SNAPSHOT_METHODS.join(' or '));
  }
  const config: BackupConfiguration = {
    iterations: orDefault('iterations', (at, v) => parseCount(entry, at, v, 1), d.iterations),
    keepDaily: orDefault('keepDaily', (at, v) => parseCount(entry, at, v, 0), d.keepDaily),
    keepWeekly: orDefault('keepWeekly', (at, v) => parseCount(entry, at, v, 0), d.keepWeekly),
    keepMonthly: orDefault('keepMonthly', (at, v) => parseCount(entry, at, v, 0), d.keepMonthly),
    rootDirectory: orDefault('rootDirectory', (_a, v) => v, d.rootDirectory),
    retainDirectory: orDefault('retainDirectory', (_a, v) => v, d.retainDirectory),
    ramDiskLocation: orDefault('ramDiskLocation', (_a, v) => v, d.ramDiskLocation),
    restoreWithoutState: orDefault('restoreWithoutState', (at, v) => parseBoolean(entry, at, v), d.restoreWithoutState),
    excludeFromBackup: orDefault('excludeFromBackup', (at, v) => parseBoolean(entry, at, v), d.excludeFromBackup),
    forceStart: orDefault('forceStart', (at, v) => parseBoolean(entry, at, v), d.forceStart),
    bandwidthMerge: orDefault('bandwidthMerge', (at, v) => parseCount(entry, at, v, 0), d.bandwidthMerge),
    imageFormat: orDefault('imageFormat', (at, v) => (/^(qcow2|raw)$/.test(v) ? v : bad(entry, at, v, 'qcow2 or raw')), d.imageFormat),
    imageOwner: orDefault('imageOwner', (at, v) => parseName(entry, at, v), d.imageOwner),
    imageGroup: orDefault('imageGroup', (at, v) => parseName(entry, at, v), d.imageGroup),
    imagePermission: orDefault('imagePermission', (at, v) => parseMode(entry, at, v), d.imagePermission),
    directoryOwner: orDefault('directoryOwner', (at, v) => parseName(entry, at, v), d.directoryOwner),
    directoryGroup: orDefault('directoryGroup', (at, v) => parseName(entry, at, v), d.directoryGroup),
    directoryPermission: orDefault('directoryPermission', (at, v) => parseMode(entry, at, v), d.directoryPermission),
    sequenceStop: list('sequenceStop'),
    sequenceStart: list('sequenceStart'),
  };
  if (method !== undefined) config.snapshotMethod = method as SnapshotMethod;
  const cron = parseCron(entry);
  if (cron) config.cron = cron;
  return { config, origin };
}

/**
 * VM → pool → cloud-wide: the first entry that exists and carries the backup object class applies.
 * `pool` may hold several hits of the pool search; more than one is ambiguous (32), as in the original.
 */
export function resolveBackupConfiguration(levels: {
  vm?: LdapEntry | undefined;
  pool?: LdapEntry[] | undefined;
  cloud?: LdapEntry | undefined;
}): ResolvedBackupConfiguration {
  const isConfig = (e: LdapEntry | undefined): e is LdapEntry => !!e && hasObjectClass(e, BACKUP_OBJECT_CLASS);
  const pools = (levels.pool ?? []).filter(isConfig);
  if (pools.length > 1) {
    throw new ConfigError(Code.CANNOT_FIND_CONFIGURATION_ENTRY, `more than one pool backup configuration: ${pools.map((p) => p.dn).join('; ')}`);
  }
  const candidates: Array<[ConfigLevel, LdapEntry | undefined]> = [
    ['vm', levels.vm],
    ['pool', pools[0]],
    ['cloud', levels.cloud],
  ];
  for (const [level, entry] of candidates) {
    if (isConfig(entry)) {
      const { config, origin } = parseBackupConfiguration(entry);
      return { level, dn: entry.dn, config, origin };
    }
  }
  throw new ConfigError(
    Code.CANNOT_FIND_CONFIGURATION_ENTRY,
    'no backup configuration applies: the VM, its pool and the cloud-wide entry carry no ' + BACKUP_OBJECT_CLASS,
  );
}
