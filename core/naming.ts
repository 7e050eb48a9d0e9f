/**
 * Every name the product derives: leaf timestamps, task queues, workflow IDs, the DNs of the
 * stoney cloud tree, and the path rules every file name obeys (core/layout.ts names the files).
 * Anything that would escape its directory (a VM name with '/', an ou with '..', a path with
 * '..' after normalisation) is refused here, once, for every caller.
 */
import { Code } from './exit-codes.js';
import { formatDn, formatRdn, parseDn, type Rdn } from './dn.js';

export class NamingError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'NamingError';
  }
}

// ---- leaf timestamps (ou of a backup leaf) -------------------------------------------------

const LEAF_OU = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** UTC `YYYYMMDDTHHMMSSZ`, the ou of a backup leaf and the suffix of every backup file. */
export function leafTimestamp(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}` +
    `T${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}Z`
  );
}

export function isLeafOu(ou: string): boolean {
  return parseLeafTimestamp(ou) !== undefined;
}

/** The instant a leaf ou names, or undefined if it is not a valid UTC timestamp. */
export function parseLeafTimestamp(ou: string): Date | undefined {
  const m = LEAF_OU.exec(ou);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return leafTimestamp(date) === ou ? date : undefined; // rejects 20261331T…
}

export function assertLeafOu(ou: string): string {
  if (!isLeafOu(ou)) {
    throw new NamingError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `backup ou "${ou}" is not a UTC timestamp YYYYMMDDTHHMMSSZ`);
  }
  return ou;
}

// ---- VM names -------------------------------------------------------------------------------

/** libvirt names and stoney cloud UUIDs: letters, digits, '.', '_', '-'; never '.' or '..'. */
const VM_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function assertVmName(name: string): string {
  if (!VM_NAME.test(name) || name === '.' || name === '..') {
    throw new NamingError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `VM name "${name}" is not allowed (letters, digits, . _ - only)`);
  }
  return name;
}

// ---- task queues and workflow IDs -----------------------------------------------------------

export const TASK_QUEUE_PREFIX = 'kvm-backup';
export const CONTROL_TASK_QUEUE = `${TASK_QUEUE_PREFIX}.control`;

/** The queue of the node worker on hypervisor `environment` (the VM's sstNode). */
export function nodeTaskQueue(environment: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(environment)) {
    throw new NamingError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `node name "${environment}" is not a host name`);
  }
  return `${TASK_QUEUE_PREFIX}.node.${environment}`;
}

export type Operation = 'backup' | 'restore' | 'delete' | 'verify';

/**
 * One workflow per (VM, leaf, operation): a second start for the same leaf finds the running one.
 * Derived from the leaf DN's VM and ou, which are validated, so the ID is short and readable.
 */
export function workflowIdForLeaf(leaf: LeafRef, operation: Operation): string {
  return `${operation}/${assertVmName(leaf.vm)}/${assertLeafOu(leaf.ou)}`;
}

/** The per-VM lock every backup and restore of one VM goes through. */
export function vmLockWorkflowId(vm: string): string {
  return `vm-lock/${assertVmName(vm)}`;
}

/** The backup slots of one node (workflows/node-slots.ts); the node name as in sstNode (checked like its task queue). */
export function nodeSlotsWorkflowId(node: string): string {
  nodeTaskQueue(node);
  return `node-slots/${node}`;
}

// ---- the stoney cloud tree ------------------------------------------------------------------

export interface LeafRef {
  /** The VM's name (sstVirtualMachine, its UUID in stoney cloud, also its libvirt name). */
  vm: string;
  /** The leaf's ou (backup timestamp). */
  ou: string;
  /** DN of the sstVirtualMachine entry. */
  vmDn: string;
  /** DN of the leaf itself. */
  dn: string;
}

const VIRTUAL_MACHINES = 'virtual machines';

export function vmDn(serviceSubtree: string, vm: string): string {
  return `${formatRdn('sstVirtualMachine', vm)},${formatRdn('ou', VIRTUAL_MACHINES)},${serviceSubtree}`;
}

export function poolBackupConfigDn(serviceSubtree: string, pool: string): string {
  return `ou=backup,${formatRdn('sstVirtualMachinePool', pool)},${formatRdn('ou', 'virtual machine pools')},${serviceSubtree}`;
}

export function vmBackupDn(serviceSubtree: string, vm: string): string {
  return `ou=backup,${vmDn(serviceSubtree, vm)}`;
}

export function leafDn(serviceSubtree: string, vm: string, ou: string): string {
  return `${formatRdn('ou', assertLeafOu(ou))},${vmBackupDn(serviceSubtree, assertVmName(vm))}`;
}

/** Base of the DHCP host entries (`cn=<vm>` below it), as the original looked them up. */
export function dhcpConfigDn(serviceSubtree: string): string {
  return `cn=config-01,ou=dhcp,ou=networks,${serviceSubtree}`;
}

/**
 * Reads a backup leaf DN: `ou=<ts>,ou=backup,sstVirtualMachine=<vm>,ou=virtual machines,<…>`.
 * Returns undefined for anything else (a DN outside a VM subtree is not an error of the leaf).
 */
export function parseLeafDn(dn: string): LeafRef | undefined {
  let rdns: Rdn[];
  try {
    rdns = parseDn(dn);
  } catch {
    return undefined;
  }
  const [leaf, backup, vm, vms] = rdns;
  const is = (r: Rdn | undefined, attribute: string) => !!r && r.attribute.toLowerCase() === attribute.toLowerCase();
  if (!is(leaf, 'ou') || !is(backup, 'ou') || backup!.value.toLowerCase() !== 'backup') return undefined;
  if (!is(vm, 'sstVirtualMachine') || !is(vms, 'ou') || vms!.value.toLowerCase() !== VIRTUAL_MACHINES) return undefined;
  return { vm: vm!.value, ou: leaf!.value, vmDn: formatDn(rdns.slice(2)), dn: formatDn(rdns) };
}

/** Like parseLeafDn, but the VM name and ou must be safe to use in paths and IDs. */
export function parseValidLeafDn(dn: string): LeafRef {
  const leaf = parseLeafDn(dn);
  if (!leaf) throw new NamingError(Code.WRONG_STATE_INFORMATION, `"${dn}" is not a backup leaf below a virtual machine`);
  assertVmName(leaf.vm);
  assertLeafOu(leaf.ou);
  return leaf;
}

// ---- paths ----------------------------------------------------------------------------------

/** POSIX normalisation without Node's path module (workflows import this file). */
export function normalizePath(path: string): string {
  if (path.includes('\0')) throw new NamingError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, 'path contains a NUL byte');
  const absolute = path.startsWith('/');
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0 || parts[parts.length - 1] === '..') {
        if (absolute) continue;
        parts.push('..');
      } else parts.pop();
    } else parts.push(part);
  }
  const joined = parts.join('/');
  return absolute ? `/${joined}` : joined || '.';
}

export function joinPath(...parts: string[]): string {
  return normalizePath(parts.join('/'));
}

export function dirname(path: string): string {
  const p = normalizePath(path);
  const i = p.lastIndexOf('/');
  return i <= 0 ? (p.startsWith('/') ? '/' : '.') : p.slice(0, i);
}

export function basename(path: string): string {
  const p = normalizePath(path);
  return p.slice(p.lastIndexOf('/') + 1);
}

/** True if `candidate` is `root` or below it, after normalisation. */
export function isInside(root: string, candidate: string): boolean {
  const r = normalizePath(root);
  const c = normalizePath(candidate);
  return c === r || c.startsWith(r === '/' ? '/' : `${r}/`);
}

/**
 * `file:///x/y` (or `file://localhost/x/y`) → `/x/y`, percent-decoded once (`%20` is a space, `%25`
 * a percent sign); anything else is 39 (backup, retain) or the code the caller gives (35 for restore):
 * another scheme, a host, a relative path, a bad escape, a `..` segment before or after decoding.
 */
export function fileUriToPath(uri: string, what: string, code: number = Code.UNSUPPORTED_CONFIGURATION_PARAMETER): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/]*)(.*)$/s.exec(uri.trim());
  if (!m) throw new NamingError(code, `${what} "${uri}" is not a URI (expected file:///path)`);
  if (m[1]!.toLowerCase() !== 'file') throw new NamingError(code, `${what} "${uri}" uses ${m[1]}://, only file:// is supported`);
  const host = m[2]!;
  const encoded = m[3]!;
  if ((host !== '' && host.toLowerCase() !== 'localhost') || !encoded.startsWith('/')) {
    throw new NamingError(code, `${what} "${uri}" must be file:// followed by an absolute path on this host`);
  }
  let path: string;
  try {
    path = decodeURIComponent(encoded);
  } catch {
    throw new NamingError(code, `${what} "${uri}" has a bad %-escape (a literal % is written %25)`);
  }
  if (encoded.split('/').includes('..') || path.split('/').includes('..')) throw new NamingError(code, `${what} "${uri}" contains ".."`);
  return normalizePath(path);
}

/** The RAM disk location may be a plain path or file:// (the original stripped the prefix). */
export function ramDiskPath(location: string): string {
  const path = location.startsWith('file://') ? fileUriToPath(location, 'sstBackupRamDiskLocation') : location;
  if (!path.startsWith('/')) {
    throw new NamingError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `sstBackupRamDiskLocation "${location}" is not an absolute path`);
  }
  return normalizePath(path);
}
