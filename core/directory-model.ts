/**
 * The stoney cloud directory as the product sees it (docs/ldap-protocol.md, docs/configuration.md):
 * VMs with their node, pool and disks, the backup configuration at VM, pool or cloud level, and the
 * backup leaves below each VM. One interface, implemented over LDAP by adapters/ldap/stoney-directory.ts
 * and used by the watcher, the scheduler, the CLI and the control activities. Pure types.
 */
import type { ResolvedBackupConfiguration } from './backup-config.js';
import type { BackupContext, LdapDisk } from './backup-plan.js';
import type { LdapEntry } from './ldap-entry.js';
import type { LeafChanges } from './provisioning.js';

/** A VM as the scheduler reads it in bulk. */
export interface VmRecord {
  vm: string;
  node?: string;
  pool?: string;
  /** The VM's own `ou=backup` entry, if it has one (a configuration only with the backup object class). */
  vmConfig?: LdapEntry;
  /** The VM entry's createTimestamp (LDAP GeneralizedTime), if the server keeps it. */
  createTimestamp?: string;
}

/** Everything the schedules depend on, read at once. */
export interface DirectorySnapshot {
  vms: VmRecord[];
  /** Pool name → its `ou=backup` configuration entries (more than one is ambiguous, 32). */
  poolConfigs: Map<string, LdapEntry[]>;
  cloud?: LdapEntry;
}

/** A backup leaf of a VM: its ou (the backup's UTC time) and where the protocol stands. */
export interface LeafSummary {
  ou: string;
  dn: string;
  mode?: string;
  state?: string;
  returnValue?: number;
}

/** A VM entry: its name (sstVirtualMachine), node and pool. */
export interface VmSummary {
  vm: string;
  dn: string;
  node?: string;
  pool?: string;
  displayName?: string;
}

export interface StoneyDirectoryModel {
  /** [Database] SERVICE_SUBTREE: the VMs, pools and leaves lie below it. */
  readonly serviceSubtree: string;
  /** The service subtree exists (for probes and `doctor`). */
  ping(): Promise<{ serviceSubtree: string; found: boolean }>;
  /** The VM entry by its name, or undefined. */
  vm(vm: string): Promise<VmSummary | undefined>;
  /** VMs whose sstDisplayName is `name`. */
  vmsByDisplayName(name: string): Promise<VmSummary[]>;
  /** Every VM of the service subtree. */
  vms(): Promise<VmSummary[]>;
  /** The configuration that applies to the VM (VM → pool → cloud-wide) and its level. Errors: ConfigError 32/39. */
  effectiveConfiguration(vm: string, pool: string | undefined): Promise<ResolvedBackupConfiguration>;
  /** The cloud-wide configuration entry alone, undefined when it does not exist (`doctor`). Errors: ConfigError 32/39. */
  cloudWideConfiguration(): Promise<ResolvedBackupConfiguration | undefined>;
  /** The VM's disks (sstDevice=disk) in directory order. Errors: failure 39 for a disk that is not a clean file path. */
  disks(vm: string): Promise<LdapDisk[]>;
  /** What a leaf asks for: VM, node, pool, disks, effective configuration. Errors: failures 23, 32, 39. */
  loadBackupContext(leafDn: string): Promise<BackupContext>;
  /** The VM's backup leaves (ou a UTC timestamp), oldest first. */
  leavesOf(vm: string): Promise<LeafSummary[]>;
  /** One leaf, or undefined. */
  leaf(dn: string): Promise<LeafSummary | undefined>;
  /** Creates the leaf `ou` of `vm` in `mode` (and the VM's `ou=backup` if missing); returns its DN. */
  createLeaf(vm: string, ou: string, mode: string): Promise<string>;
  /** Writes a protocol answer: every change in one modify. */
  answerLeaf(dn: string, changes: LeafChanges): Promise<void>;
  /** Removes a leaf (and anything below it); a missing one is fine. */
  removeLeaf(dn: string): Promise<void>;
  /** The VM's subtree and its DHCP entry as LDIF, with warnings. */
  exportLdif(vm: string): Promise<{ ldif: string; warnings: string[] }>;
  /** The scheduler's bulk read, in four searches whatever the size of the fleet. */
  schedulingSnapshot(): Promise<DirectorySnapshot>;
  /**
   * Every backup leaf of every VM (ou, mode, state, return value, and the VM from the DN), in one
   * paged subtree search whatever the size of the fleet (core/backup-freshness.ts).
   */
  backupLeaves(): Promise<Array<LeafSummary & { vm: string }>>;
}
