/** Finds and reads the global INI file (the original's KVM.conf) for the CLI, workers and watcher. */
import { readFileSync } from 'node:fs';
import { ConfigError, parseGlobalConfig, type GlobalConfig } from '../core/global-config.js';
import { Code } from '../core/exit-codes.js';
import { loadTemporalProfiles } from '../adapters/temporal/profile.js';

export const DEFAULT_CONFIG_FILE = '/etc/kvm-backup/kvm-backup.conf';

export function configPath(explicit?: string): string {
  return explicit ?? process.env['KVM_BACKUP_CONFIG'] ?? DEFAULT_CONFIG_FILE;
}

export function loadGlobalConfig(explicit?: string): GlobalConfig {
  const path = configPath(explicit);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `cannot read the configuration file ${path}: ${(e as Error).message}`);
  }
  try {
    return parseGlobalConfig(text, { env: process.env, readSecretFile: (p) => readFileSync(p, 'utf8'), temporalProfiles: loadTemporalProfiles });
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.code, `${path}: ${e.message}`);
    throw e;
  }
}
