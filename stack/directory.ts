/** The demo stoney cloud directory (schema/demo-directory.ldif) with its placeholders filled in. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA_DIR } from './paths.js';

export const DEMO_SUFFIX = 'dc=stoney-cloud,dc=org';
export const DEMO_ROOT_DN = `cn=Manager,${DEMO_SUFFIX}`;
export const DEMO_SERVICE_SUBTREE = `ou=virtualization,ou=services,${DEMO_SUFFIX}`;
export const DEMO_CLOUD_WIDE_DN = `ou=backup,ou=configuration,${DEMO_SERVICE_SUBTREE}`;

export interface DemoDirectoryParams {
  node: string;
  vm: string;
  vmDisplayName?: string;
  pool: string;
  poolIterations?: number;
  disk: string;
  backupRootUri: string;
  retainUri: string;
  ramDisk: string;
  group?: string;
  mac?: string;
  ip?: string;
}

export function renderDemoDirectory(p: DemoDirectoryParams): string {
  const values: Record<string, string> = {
    SUFFIX: DEMO_SUFFIX,
    DC: 'stoney-cloud',
    NODE: p.node,
    VM: p.vm,
    VM_DISPLAY_NAME: p.vmDisplayName ?? `demo VM ${p.vm}`,
    POOL: p.pool,
    POOL_ITERATIONS: String(p.poolIterations ?? 2),
    DISK: p.disk,
    BACKUP_ROOT_URI: p.backupRootUri,
    RETAIN_URI: p.retainUri,
    RAMDISK: p.ramDisk,
    GROUP: p.group ?? 'vm-storage',
    MAC: p.mac ?? '52:54:00:00:00:01',
    IP: p.ip ?? '10.0.0.10',
  };
  const template = readFileSync(join(SCHEMA_DIR, 'demo-directory.ldif'), 'utf8');
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`demo-directory.ldif: no value for {{${key}}}`);
    return v;
  });
}
