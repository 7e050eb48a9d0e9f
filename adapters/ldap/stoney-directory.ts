/**
 * The stoney cloud directory over LDAP (core/directory-model.ts): every DN, filter and attribute the
 * product reads or writes is spelled here, once. The watcher uses it over a long-lived session, the
 * rest with a bind per call (adapters/ldap/client.ts).
 */
import { BACKUP_OBJECT_CLASS, resolveBackupConfiguration, type ResolvedBackupConfiguration } from '../../core/backup-config.js';
import type { BackupContext, LdapDisk } from '../../core/backup-plan.js';
import type { DirectorySnapshot, LeafSummary, StoneyDirectoryModel, VmRecord, VmSummary } from '../../core/directory-model.js';
import { escapeFilterValue, normalizeDn, parentDn, parseDn } from '../../core/dn.js';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import { ConfigError, type GlobalConfig } from '../../core/global-config.js';
import { value, type LdapEntry } from '../../core/ldap-entry.js';
import { toLdif } from '../../core/ldif.js';
import {
  dhcpConfigDn, isLeafOu, leafDn, NamingError, nodeTaskQueue, parseLeafDn, parseValidLeafDn, poolBackupConfigDn, vmBackupDn, vmDn, type LeafRef,
} from '../../core/naming.js';
import { newLeafAttributes, type LeafChanges } from '../../core/provisioning.js';
import { LdapClient } from './client.js';

export interface StoneyDirectoryOptions {
  /** [Database] SERVICE_SUBTREE, e.g. ou=virtualization,ou=services,dc=stoney-cloud,dc=org. */
  serviceSubtree: string;
  /** DN of the cloud-wide backup configuration ([Database] STONEY_CLOUD_WIDE_CONFIGURATION). */
  cloudWideConfigurationDn: string;
}

const VM_CLASS = 'sstVirtualizationVirtualMachine';
const VM_ATTRIBUTES = ['sstVirtualMachine', 'sstNode', 'sstVirtualMachinePool', 'sstDisplayName'];
const CONFIGS = `(&(ou=backup)(objectClass=${BACKUP_OBJECT_CLASS}))`;
const LEAF_ATTRIBUTES = ['ou', 'sstProvisioningMode', 'sstProvisioningState', 'sstProvisioningReturnValue'];
/** Page size of the bulk reads: keeps each response small; it does not lift the server's size limit (docs/observability.md). */
const PAGE = 500;

function asFailure(e: unknown): never {
  if (e instanceof ConfigError || e instanceof NamingError) throw failure(e.code, e.message);
  throw e;
}

/** DNs compared as slapd compares them: types and values case-insensitively, escaping normalised. */
function dnKey(dn: string): string {
  try {
    return normalizeDn(dn).toLowerCase();
  } catch {
    return dn.toLowerCase();
  }
}

function rdnValue(dn: string): string | undefined {
  try {
    return parseDn(dn)[0]?.value;
  } catch {
    return undefined;
  }
}

function vmSummary(e: LdapEntry): VmSummary | undefined {
  const vm = value(e, 'sstVirtualMachine') ?? rdnValue(e.dn);
  if (!vm) return undefined;
  const node = value(e, 'sstNode')?.trim();
  const pool = value(e, 'sstVirtualMachinePool');
  const displayName = value(e, 'sstDisplayName');
  return { vm, dn: e.dn, ...(node ? { node } : {}), ...(pool ? { pool } : {}), ...(displayName ? { displayName } : {}) };
}

function leafSummary(e: LdapEntry): LeafSummary {
  const rv = value(e, 'sstProvisioningReturnValue');
  const mode = value(e, 'sstProvisioningMode');
  const state = value(e, 'sstProvisioningState');
  return {
    ou: value(e, 'ou') ?? rdnValue(e.dn) ?? '',
    dn: e.dn,
    ...(mode ? { mode } : {}),
    ...(state ? { state } : {}),
    ...(rv !== undefined && rv !== '' ? { returnValue: Number(rv) } : {}),
  };
}

export class StoneyDirectory implements StoneyDirectoryModel {
  constructor(
    readonly ldap: LdapClient,
    private readonly o: StoneyDirectoryOptions,
  ) {}

  /** The site's directory from the INI's [Database]: a bind per call, or one long-lived session (the watcher). */
  static fromConfig(db: GlobalConfig['database'], connection: 'perCall' | 'session' = 'perCall'): StoneyDirectory {
    const options = { url: db.url, bindDn: db.bindDn, password: db.password };
    const ldap = connection === 'session' ? LdapClient.session(options) : LdapClient.perCall(options);
    return new StoneyDirectory(ldap, { serviceSubtree: db.serviceSubtree, cloudWideConfigurationDn: db.cloudWideConfigurationDn });
  }

  /** Ends a session's connection (nothing to do with a bind per call). */
  close(): Promise<void> {
    return this.ldap.close();
  }

  get serviceSubtree(): string {
    return this.o.serviceSubtree;
  }

  private get vmsBase(): string {
    return `ou=virtual machines,${this.o.serviceSubtree}`;
  }

  async ping(): Promise<{ serviceSubtree: string; found: boolean }> {
    const entry = await this.ldap.get(this.o.serviceSubtree, ['1.1']);
    return { serviceSubtree: this.o.serviceSubtree, found: !!entry };
  }

  async vm(vm: string): Promise<VmSummary | undefined> {
    const e = await this.ldap.get(vmDn(this.o.serviceSubtree, vm), VM_ATTRIBUTES);
    return e ? vmSummary(e) : undefined;
  }

  async vmsByDisplayName(name: string): Promise<VmSummary[]> {
    const found = await this.ldap.search(this.vmsBase, { scope: 'one', filter: `(&(objectClass=${VM_CLASS})(sstDisplayName=${escapeFilterValue(name)}))`, attributes: VM_ATTRIBUTES });
    return found.map(vmSummary).filter((v): v is VmSummary => !!v);
  }

  async vms(): Promise<VmSummary[]> {
    const found = await this.ldap.search(this.vmsBase, { scope: 'one', filter: `(objectClass=${VM_CLASS})`, attributes: VM_ATTRIBUTES });
    return found.map(vmSummary).filter((v): v is VmSummary => !!v);
  }

  /** The one per-VM configuration lookup: the VM's `ou=backup`, its pool's, the cloud-wide entry. */
  async effectiveConfiguration(vm: string, pool: string | undefined): Promise<ResolvedBackupConfiguration> {
    const [vmLevel, poolLevel, cloud] = await Promise.all([
      this.ldap.get(vmBackupDn(this.o.serviceSubtree, vm)),
      pool ? this.ldap.search(poolBackupConfigDn(this.o.serviceSubtree, pool), { scope: 'base', filter: `(objectClass=${BACKUP_OBJECT_CLASS})` }) : Promise.resolve([]),
      this.ldap.get(this.o.cloudWideConfigurationDn),
    ]);
    return resolveBackupConfiguration({ vm: vmLevel, pool: poolLevel, cloud });
  }

  async cloudWideConfiguration(): Promise<ResolvedBackupConfiguration | undefined> {
    const cloud = await this.ldap.get(this.o.cloudWideConfigurationDn);
    return cloud ? resolveBackupConfiguration({ cloud }) : undefined;
  }

  /** The VM's disks (sstDevice=disk) in directory order; 39 for a disk that is not a clean file path. */
  async disks(vm: string): Promise<LdapDisk[]> {
    const entries = await this.ldap.search(`ou=devices,${vmDn(this.o.serviceSubtree, vm)}`, {
      scope: 'one',
      filter: '(&(objectClass=sstVirtualizationVirtualMachineDisk)(sstDevice=disk))',
    });
    return entries.map((e) => {
      const target = value(e, 'sstDisk') ?? '';
      const type = (value(e, 'sstType') ?? 'file').toLowerCase();
      const file = (value(e, 'sstSourceFile') ?? '').trim();
      if (type !== 'file' || !file) {
        throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${e.dn}: only file disks (sstType=file with sstSourceFile) can be backed up, not ${type}`);
      }
      if (!file.startsWith('/') || file.split('/').includes('..')) {
        throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${e.dn}: sstSourceFile "${file}" is not a clean absolute path`);
      }
      if (!/^[a-z]{2,3}[a-z]{1,2}$/.test(target)) throw failure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${e.dn}: sstDisk "${target}" is not a target such as vda`);
      return { target, path: file };
    });
  }

  async loadBackupContext(leafDnText: string): Promise<BackupContext> {
    let leaf: LeafRef;
    try {
      leaf = parseValidLeafDn(leafDnText);
    } catch (e) {
      return asFailure(e);
    }
    const entry = await this.vm(leaf.vm);
    if (!entry) throw failure(Code.CANNOT_FIND_MACHINE, `no VM ${leaf.vm} in the directory (${vmDn(this.o.serviceSubtree, leaf.vm)})`);
    const { node, pool } = entry;
    if (!node) throw failure(Code.CANNOT_FIND_MACHINE, `VM ${leaf.vm} has no sstNode: no node to run its backup on`);
    try {
      nodeTaskQueue(node);
      const configuration = await this.effectiveConfiguration(leaf.vm, pool);
      return { leaf, node, ...(pool ? { pool } : {}), disks: await this.disks(leaf.vm), configuration };
    } catch (e) {
      return asFailure(e);
    }
  }

  async leavesOf(vm: string): Promise<LeafSummary[]> {
    const entries = await this.ldap.search(vmBackupDn(this.o.serviceSubtree, vm), { scope: 'one', filter: '(objectClass=sstProvisioning)' });
    return entries
      .map(leafSummary)
      .filter((l) => isLeafOu(l.ou))
      .sort((a, b) => a.ou.localeCompare(b.ou));
  }

  async leaf(dn: string): Promise<LeafSummary | undefined> {
    const e = await this.ldap.get(dn, ['ou', 'sstProvisioningMode', 'sstProvisioningState', 'sstProvisioningReturnValue']);
    return e ? leafSummary(e) : undefined;
  }

  async createLeaf(vm: string, ou: string, mode: string): Promise<string> {
    const container = vmBackupDn(this.o.serviceSubtree, vm);
    if (!(await this.ldap.get(container, ['1.1']))) await this.ldap.add(container, { objectClass: ['top', 'organizationalUnit'], ou: 'backup' });
    const dn = leafDn(this.o.serviceSubtree, vm, ou);
    await this.ldap.add(dn, newLeafAttributes(ou, mode));
    return dn;
  }

  async answerLeaf(dn: string, changes: LeafChanges): Promise<void> {
    await this.ldap.modify(dn, changes);
  }

  async removeLeaf(dn: string): Promise<void> {
    await this.ldap.deleteTree(dn);
  }

  async exportLdif(vm: string): Promise<{ ldif: string; warnings: string[] }> {
    const warnings: string[] = [];
    const subtree = await this.ldap.search(vmDn(this.o.serviceSubtree, vm));
    const depth = (dn: string) => parseDn(dn).length;
    subtree.sort((a, b) => depth(a.dn) - depth(b.dn));
    const dhcp = await this.ldap.search(dhcpConfigDn(this.o.serviceSubtree), { filter: `(cn=${escapeFilterValue(vm)})` });
    if (dhcp.length !== 1) warnings.push(`expected one DHCP entry for ${vm}, found ${dhcp.length}; the LDIF has ${dhcp.length === 0 ? 'none' : 'all of them'}`);
    return { ldif: toLdif([...subtree, ...dhcp]), warnings };
  }

  async schedulingSnapshot(): Promise<DirectorySnapshot> {
    const poolsBase = `ou=virtual machine pools,${this.o.serviceSubtree}`;
    const [vmEntries, vmConfigs, poolConfigs, cloud] = await Promise.all([
      this.ldap.search(this.vmsBase, {
        scope: 'one',
        filter: `(objectClass=${VM_CLASS})`,
        attributes: ['sstVirtualMachine', 'sstNode', 'sstVirtualMachinePool', 'createTimestamp'],
        pageSize: PAGE,
      }),
      this.ldap.search(this.vmsBase, { filter: CONFIGS }),
      this.ldap.search(poolsBase, { filter: CONFIGS }),
      this.ldap.get(this.o.cloudWideConfigurationDn),
    ]);
    const vmConfigByVmDn = new Map<string, LdapEntry>();
    for (const c of vmConfigs) vmConfigByVmDn.set(dnKey(parentDn(c.dn)), c);
    const pools = new Map<string, LdapEntry[]>();
    for (const c of poolConfigs) {
      const pool = rdnValue(parentDn(c.dn));
      if (pool !== undefined) pools.set(pool, [...(pools.get(pool) ?? []), c]);
    }
    const vms: VmRecord[] = [];
    for (const e of vmEntries) {
      const vm = rdnValue(e.dn);
      if (vm === undefined) continue;
      const node = value(e, 'sstNode');
      const pool = value(e, 'sstVirtualMachinePool');
      const vmConfig = vmConfigByVmDn.get(dnKey(e.dn));
      const createTimestamp = value(e, 'createTimestamp');
      vms.push({ vm, ...(node ? { node } : {}), ...(pool ? { pool } : {}), ...(vmConfig ? { vmConfig } : {}), ...(createTimestamp ? { createTimestamp } : {}) });
    }
    return { vms, poolConfigs: pools, ...(cloud ? { cloud } : {}) };
  }

  async backupLeaves(): Promise<Array<LeafSummary & { vm: string }>> {
    const entries = await this.ldap.search(this.vmsBase, { filter: '(objectClass=sstProvisioning)', attributes: LEAF_ATTRIBUTES, pageSize: PAGE });
    const leaves: Array<LeafSummary & { vm: string }> = [];
    for (const e of entries) {
      const ref = parseLeafDn(e.dn);
      const leaf = leafSummary(e);
      if (ref && isLeafOu(leaf.ou)) leaves.push({ ...leaf, vm: ref.vm });
    }
    return leaves;
  }
}
