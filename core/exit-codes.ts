/**
 * The product's public error vocabulary: the exit codes of the original prov-backup-kvm
 * (the original's, docs/exit-codes.md), numbers and names unchanged so vm-manager and operators keep
 * reading them. 14 is a gap in the original and stays one.
 *
 * `retryable` says whether trying the same step again, unchanged, can succeed (I/O hiccups,
 * libvirt busy, LDAP down). Codes that need an operator (bad configuration, inconsistent
 * directory, corrupt backup) are not retryable: Temporal fails the step at once.
 */
export interface ExitCode {
  readonly code: number;
  readonly name: string;
  readonly retryable: boolean;
  /** One line: what went wrong, in an operator's words. */
  readonly reason: string;
}

const table = [
  [0, 'SUCCESS_CODE', false, 'The step succeeded.'],
  [1, 'UNDEFINED_ERROR', true, 'An error no other code describes; the message says more.'],
  [2, 'MISSING_PARAMETER_IN_CONFIG_FILE', false, 'A required key is missing from the configuration file.'],
  [3, 'CONFIGURED_RAM_DISK_IS_NOT_VALUD', false, 'The configured RAM disk is not a usable directory.'],
  [4, 'NOT_ENOUGH_SPACE_ON_RAM_DISK', false, 'The RAM disk has no room for the VM memory plus 5 %.'],
  [5, 'CANNOT_SAVE_MACHINE_STATE', true, 'libvirt could not save the RAM state or take the snapshot.'],
  [6, 'CANNOT_WRITE_TO_BACKUP_LOCATION', true, 'The backup location is not writable.'],
  [7, 'CANNOT_COPY_FILE_TO_BACKUP_LOCATION', true, 'Copying a file to the backup location failed.'],
  [8, 'CANNOT_COPY_IMAGE_TO_BACKUP_LOCATION', true, 'Copying a disk image to the backup location failed.'],
  [9, 'CANNOT_COPY_XML_TO_BACKUP_LOCATION', true, 'Copying the domain XML to the backup location failed.'],
  [10, 'CANNOT_COPY_BACKEND_FILE_TO_BACKUP_LOCATION', true, 'Copying the LDIF export to the backup location failed.'],
  [11, 'CANNOT_MERGE_DISK_IMAGES', true, 'The block commit of an overlay into its image failed.'],
  [12, 'CANNOT_REMOVE_OLD_DISK_IMAGE', true, 'An overlay or old image could not be removed.'],
  [13, 'CANNOT_REMOVE_FILE', true, 'A file could not be removed.'],
  [15, 'CANNOT_CREATE_EMPTY_DISK_IMAGE', true, 'A new (overlay) disk image could not be created.'],
  [16, 'CANNOT_RENAME_DISK_IMAGE', true, 'A disk image could not be renamed or moved.'],
  [17, 'CANNOT_CONNECT_TO_BACKEND', true, 'The LDAP directory could not be reached or bound.'],
  [18, 'WRONG_STATE_INFORMATION', false, 'The leaf asks for a mode this product does not know, or one not allowed now.'],
  [19, 'CANNOT_SET_DISK_IMAGE_OWNERSHIP', false, 'chown of a created file failed (unknown owner or group?).'],
  [20, 'CANNOT_SET_DISK_IMAGE_PERMISSION', false, 'chmod of a created file failed (bad permission value?).'],
  [21, 'CANNOT_RESTORE_MACHINE', true, 'The VM could not be resumed or restored from its state file.'],
  [22, 'CANNOT_LOCK_MACHINE', true, 'The leaf could not be locked (the …ing mode could not be written), or the VM is busy.'],
  [23, 'CANNOT_FIND_MACHINE', false, 'The VM is not defined in libvirt on its node, or not in LDAP.'],
  [24, 'CANNOT_COPY_STATE_FILE_TO_RETAIN', true, 'The state file could not be moved from the RAM disk to the retain directory.'],
  [25, 'RETAIN_ROOT_DIRECTORY_DOES_NOT_EXIST', false, 'The retain root directory does not exist.'],
  [26, 'BACKUP_ROOT_DIRECTORY_DOES_NOT_EXIST', false, 'The backup root directory does not exist.'],
  [27, 'CANNOT_CREATE_DIRECTORY', true, 'A directory could not be created.'],
  [28, 'CANNOT_SAVE_XML', true, 'The domain XML could not be written.'],
  [29, 'CANNOT_SAVE_BACKEND_ENTRY', true, 'The LDIF export of the VM subtree could not be written.'],
  [30, 'CANNOT_SET_DIRECTORY_OWNERSHIP', false, 'chown of a created directory failed (unknown owner or group?).'],
  [31, 'CANNOT_SET_DIRECTORY_PERMISSION', false, 'chmod of a created directory failed (bad permission value?).'],
  [32, 'CANNOT_FIND_CONFIGURATION_ENTRY', false, 'No backup configuration applies (VM, pool and cloud-wide all missing or ambiguous).'],
  [33, 'BACKEND_XML_UNCONSISTENCY', false, 'The disks in LDAP differ from the disks in the domain XML.'],
  [34, 'CANNOT_CREATE_TARBALL', true, 'An archive could not be created.'],
  [35, 'UNSUPPORTED_FILE_TRANSFER_PROTOCOL', false, 'A backup or retain URI uses a protocol other than file://.'],
  [36, 'UNKNOWN_BACKEND_TYPE', false, 'The configured backend is not LDAP.'],
  [37, 'MISSING_NECESSARY_FILES', false, 'A file the restore needs is missing from the backup.'],
  [38, 'CORRUPT_DISK_IMAGE_FOUND', false, 'A disk image of the backup is corrupt (qemu-img check) or fails its checksum.'],
  [39, 'UNSUPPORTED_CONFIGURATION_PARAMETER', false, 'A configuration value is invalid (not a file:// URI, escapes its directory, …).'],
  [40, 'CANNOT_MOVE_DISK_IMAGE_TO_ORIGINAL_LOCATION', true, 'A restored image could not be put back at its path.'],
  [41, 'CANNOT_DEFINE_MACHINE', true, 'libvirt refused to define the VM from its XML.'],
  [42, 'CANNOT_START_MACHINE', true, 'libvirt could not start the VM.'],
  [43, 'CANNOT_WORK_ON_UNDEFINED_OBJECT', false, 'An operation was asked for an object that does not exist.'],
  [44, 'CANNOT_READ_STATE_FILE', false, 'The state file of the backup cannot be read.'],
  [45, 'CANNOT_READ_XML_FILE', false, 'The domain XML of the backup cannot be read.'],
  [46, 'NOT_ALL_FILES_DELETED_FROM_RETAIN_LOCATION', true, 'Files were left in the retain directory.'],
  [47, 'NOT_ENOUGH_DISK_SPACE', false, 'Not enough free space on the retain or backup filesystem.'],
  [48, 'NO_DISK_SPACE_INFORMATION', true, 'The size of an image or the free space of a filesystem could not be read.'],
] as const;

type Row = (typeof table)[number];
export type ExitCodeName = Row[1];

export const EXIT_CODES: readonly ExitCode[] = table.map(([code, name, retryable, reason]) => ({
  code,
  name,
  retryable,
  reason,
}));

const byNumber = new Map(EXIT_CODES.map((c) => [c.code, c]));
const byName = new Map(EXIT_CODES.map((c) => [c.name, c]));

/** Named constants, e.g. `Code.CANNOT_MERGE_DISK_IMAGES === 11`. */
export const Code = Object.fromEntries(table.map(([code, name]) => [name, code])) as {
  readonly [K in ExitCodeName]: Extract<Row, readonly [number, K, ...unknown[]]>[0];
};

export function exitCode(code: number): ExitCode | undefined {
  return byNumber.get(code);
}

export function exitCodeByName(name: string): ExitCode | undefined {
  return byName.get(name);
}

/** Names of the codes Temporal must not retry (for RetryPolicy.nonRetryableErrorTypes). */
export const NON_RETRYABLE_NAMES: readonly string[] = EXIT_CODES.filter((c) => !c.retryable && c.code !== 0).map(
  (c) => c.name,
);
