/**
 * The watcher's and scheduler's own keys in the global INI file (all optional):
 *
 *   [Watcher]
 *   NODES = node-01, node-02      # nodes this site runs workers for (default: [Global] ENVIRONMENT)
 *   POLL_INTERVAL_MS = 250        # how often the directory is asked for changes
 *   [Scheduler]
 *   ENABLED = 1                   # 0: no schedules from sstCron* (fc-brokerd still runs, say)
 *   TIMEZONE = Europe/Zurich      # zone of the sstCron* fields (default: this machine's)
 */
import { ConfigError } from '../../core/global-config.js';
import { Code } from '../../core/exit-codes.js';
import { parseIni } from '../../core/ini.js';
import type { WatcherOptions } from './index.js';

export function watcherOptionsFromIni(text: string): Pick<WatcherOptions, 'nodes' | 'pollIntervalMs' | 'scheduler'> {
  const ini = parseIni(text);
  const w = ini['Watcher'] ?? {};
  const s = ini['Scheduler'] ?? {};
  const out: Pick<WatcherOptions, 'nodes' | 'pollIntervalMs' | 'scheduler'> = {};
  if (w['NODES']) {
    const nodes = w['NODES'].split(',').map((n) => n.trim()).filter(Boolean);
    for (const n of nodes) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(n)) throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Watcher] NODES: "${n}" is not a node name`);
    }
    out.nodes = nodes;
  }
  if (w['POLL_INTERVAL_MS']) {
    const ms = Number(w['POLL_INTERVAL_MS']);
    if (!Number.isInteger(ms) || ms < 20 || ms > 60_000) {
      throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Watcher] POLL_INTERVAL_MS "${w['POLL_INTERVAL_MS']}" is not 20-60000`);
    }
    out.pollIntervalMs = ms;
  }
  if (s['ENABLED'] !== undefined && /^(0|false|no|off)$/i.test(s['ENABLED'])) out.scheduler = false;
  else if (s['TIMEZONE']) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: s['TIMEZONE'] });
    } catch {
      throw new ConfigError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `[Scheduler] TIMEZONE "${s['TIMEZONE']}" is not a time zone`);
    }
    out.scheduler = { timezone: s['TIMEZONE'] };
  }
  return out;
}
