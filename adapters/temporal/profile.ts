/**
 * Temporal's standard client configuration, read with @temporalio/envconfig (the SDK's own reader,
 * same version as the SDK): the TEMPORAL_* environment variables and a profile of the TOML file
 * (`temporal.toml`). core/temporal-settings.ts merges them with the INI's [Temporal] keys.
 *
 * The file: TEMPORAL_CONFIG_FILE, else [Temporal] CONFIG_FILE, else
 * $XDG_CONFIG_HOME/temporalio/temporal.toml (~/.config/…) when it exists and can be read (under
 * systemd's ProtectHome= it cannot, and is skipped). The profile: TEMPORAL_PROFILE, else
 * [Temporal] PROFILE, else `default` (a missing `default` is no error, a missing named one is).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadClientConfigProfile } from '@temporalio/envconfig';
import { ConfigError } from '../../core/config-error.js';
import { Code } from '../../core/exit-codes.js';
import type { TemporalProfile, TemporalProfileLoader } from '../../core/temporal-settings.js';

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

function defaultConfigFile(env: Record<string, string | undefined>): string | undefined {
  const xdg = env['XDG_CONFIG_HOME'];
  const dir = xdg && xdg.startsWith('/') ? xdg : env['HOME'] ? join(env['HOME'], '.config') : undefined;
  return dir ? join(dir, 'temporalio', 'temporal.toml') : undefined;
}

export const loadTemporalProfiles: TemporalProfileLoader = ({ env, configFile, profile }) => {
  const vars = definedOnly(env);
  // the environment layer alone (no file): TEMPORAL_ADDRESS, _NAMESPACE, _API_KEY, _TLS, _TLS_*
  const fromEnv = loadClientConfigProfile({ disableFile: true, overrideEnvVars: vars }) as TemporalProfile;

  const named = vars['TEMPORAL_CONFIG_FILE'] ?? configFile;
  const path = named ?? defaultConfigFile(vars);
  const profileName = vars['TEMPORAL_PROFILE'] ?? profile;
  if (!path) return { env: fromEnv };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!named && (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR')) {
      if (profileName) throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `Temporal profile "${profileName}" asked for, but no ${path}`);
      return { env: fromEnv };
    }
    throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `cannot read the Temporal configuration file ${path}: ${(e as Error).message}`);
  }
  let fromFile: TemporalProfile;
  try {
    // the file alone (the environment layer is applied above it by core/temporal-settings.ts)
    fromFile = loadClientConfigProfile({
      configSource: { data: text },
      disableEnv: true,
      overrideEnvVars: {},
      ...(profileName ? { profile: profileName } : {}),
    }) as TemporalProfile;
  } catch (e) {
    throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `Temporal configuration file ${path}: ${(e as Error).message}`);
  }
  return { env: fromEnv, file: { profile: fromFile, origin: `profile ${profileName ?? 'default'} of ${path}` } };
};
