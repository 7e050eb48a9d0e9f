/**
 * Which VM and backup leaf a workflow or activity call is about, read from its arguments, so every
 * log line of it carries `vm` and `leafDn` without each call site repeating them. Pure (the
 * workflow bundle imports it). The shapes are the product's own: a request `{ leafDn }`, a leaf
 * DN string, a BackupContext `{ leaf: { dn, vm } }`, a PreparedBackup `{ plan: { vm, leafDn } }`,
 * a BackupPlan or RestorePlan `{ vm, leafDn }`.
 */
import { parseLeafDn } from './naming.js';

export interface LogSubject {
  vm?: string;
  leafDn?: string;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function fromLeafDn(dn: string | undefined, vm?: string): LogSubject | undefined {
  const leaf = dn ? parseLeafDn(dn) : undefined;
  if (!leaf) return vm ? { vm } : undefined;
  return { vm: vm ?? leaf.vm, leafDn: dn! };
}

function subjectOfOne(arg: unknown): LogSubject | undefined {
  if (typeof arg === 'string') return fromLeafDn(arg);
  const o = record(arg);
  if (!o) return undefined;
  const leaf = record(o['leaf']);
  if (leaf) return fromLeafDn(str(leaf['dn']), str(leaf['vm']));
  const plan = record(o['plan']);
  if (plan) return fromLeafDn(str(plan['leafDn']), str(plan['vm']));
  return fromLeafDn(str(o['leafDn']), str(o['vm']));
}

/** The first argument that names a leaf or a VM decides; none gives `{}`. */
export function subjectOf(args: readonly unknown[]): LogSubject {
  for (const arg of args) {
    const s = subjectOfOne(arg);
    if (s) return s;
  }
  return {};
}
