/** Unique names per test, so tests sharing one libvirtd and one Temporal server never collide. */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { VAR_DIR } from '../../stack/paths.js';

export const TEST_DOMAIN_PREFIX = 'kvmbt-';

/** The run's tag (set by run-tests): names carry it, so a run only ever sweeps its own domains. */
export function runTag(): string {
  return process.env['KVM_BACKUP_TEST_RUN'] ?? 'x';
}

export function uniqueName(label: string): string {
  return `${TEST_DOMAIN_PREFIX}${runTag()}-${label}-${randomBytes(3).toString('hex')}`;
}

/** A fresh directory for one test's files, below the run's directory. */
export function testDir(label: string): string {
  const root = process.env['KVM_BACKUP_TEST_DIR'] ?? join(VAR_DIR, 'test');
  const dir = join(root, uniqueName(label));
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function temporalTarget(): { address: string; namespace: string } {
  const address = process.env['TEMPORAL_ADDRESS'];
  if (!address) throw new Error('TEMPORAL_ADDRESS is not set: run the tests through `npm test` (dist/test/run-tests.js)');
  return { address, namespace: process.env['TEMPORAL_NAMESPACE'] ?? 'default' };
}
