/**
 * The LDAP watcher of one site: follows the directory and starts workflows from backup leaves
 * (client/watcher/feed.ts, dispatcher.ts), and runs the scheduler that replaces fc-brokerd's
 * timetable (client/scheduler/), which re-reads the directory whenever the watcher sees a change
 * outside the leaves. `stop()` ends both; `done` settles when they have ended.
 */
import type { Client } from '@temporalio/client';
import { StoneyDirectory } from '../../adapters/ldap/stoney-directory.js';
import { connectClient } from '../../adapters/temporal/connection.js';
import type { GlobalConfig } from '../../core/global-config.js';
import { startScheduler, type RunningScheduler, type SchedulerOptions } from '../scheduler/index.js';
import { CookieStore } from './cookie-store.js';
import { RequestDispatcher } from './dispatcher.js';
import { DirectoryFeed } from './feed.js';
import { consoleLog, errorText, type Log } from './log.js';

export interface WatcherOptions {
  log?: Log;
  /** Nodes this site runs workers for (default: [Global] ENVIRONMENT). */
  nodes?: string[];
  /** Control task queue of the site's workflows (default [Temporal] CONTROL_TASK_QUEUE, kvm-backup.control). */
  taskQueue?: string;
  /** Poll interval in ms (default 250: a request is seen within a quarter of a second). */
  pollIntervalMs?: number;
  /** Overlap of consecutive polls in seconds (default 3). */
  lookbackSeconds?: number;
  /** The scheduler runs beside the watcher unless this is false. */
  scheduler?: false | Omit<SchedulerOptions, 'nodes' | 'taskQueue' | 'log' | 'temporal'>;
  /** How long one workflow start may take before Temporal counts as away (default 10 s). */
  startTimeoutMs?: number;
  /** A Temporal client to use (default: one connected from [Temporal]); closed on stop only if ours. */
  temporal?: Client;
}

export interface RunningWatcher {
  feed: DirectoryFeed;
  scheduler?: RunningScheduler;
  /** Settles when the watcher (and scheduler) stopped; rejects only on a bug. */
  done: Promise<void>;
  stop(): Promise<void>;
}

export const DEFAULT_POLL_INTERVAL_MS = 250;
export const DEFAULT_LOOKBACK_SECONDS = 3;

export async function startWatcher(config: GlobalConfig, options: WatcherOptions = {}): Promise<RunningWatcher> {
  const log = options.log ?? consoleLog('watcher');
  const db = config.database;
  const nodes = new Set(options.nodes?.length ? options.nodes : [config.environment]);
  const taskQueue = options.taskQueue ?? config.temporal.controlTaskQueue;
  const ownClient = !options.temporal;
  const temporal = options.temporal ?? (await connectClient(config.temporal));
  // ends a workflow start in flight on stop (a dead Temporal would hold it until its deadline); the
  // search attributes the starts carry are registered by the workers, and a start refused for
  // lack of them is retried like any other
  const stopping = new AbortController();
  // one bound connection for the polls, the node checks and the answers
  const directory = StoneyDirectory.fromConfig(db, 'session');

  let scheduler: RunningScheduler | undefined;
  if (options.scheduler !== false) {
    scheduler = await startScheduler(config, { ...(options.scheduler ?? {}), nodes: [...nodes], taskQueue, log, temporal });
  }
  const dispatcher = new RequestDispatcher({
    temporal, taskQueue, directory, serviceSubtree: db.serviceSubtree, nodes, log, stopping: stopping.signal,
    ...(options.startTimeoutMs ? { startTimeoutMs: options.startTimeoutMs } : {}),
  });
  const feed = new DirectoryFeed({
    ldap: directory.ldap,
    serviceSubtree: db.serviceSubtree,
    searchFilter: db.searchFilter,
    cookies: new CookieStore(db.cookieFile, db.defaultCookie),
    pollIntervalMs: options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
    lookbackSeconds: options.lookbackSeconds ?? DEFAULT_LOOKBACK_SECONDS,
    log,
    handle: (entry) => dispatcher.handle(entry),
    onDirectoryChange: () => scheduler?.directoryChanged(),
  });
  log.info('watcher started', { nodes: [...nodes], taskQueue, cookieFile: db.cookieFile });

  const running = feed.run().catch((e) => {
    log.error('watcher stopped by a bug', { error: errorText(e) });
    throw e;
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await feed.stop();
      stopping.abort();
      await running.catch(() => undefined);
      await scheduler?.stop();
      await directory.close();
      if (ownClient) await temporal.connection.close();
      log.info('watcher stopped');
    })());
  const done = running.then(
    () => stop(),
    async (e) => {
      await stop();
      throw e;
    },
  );
  return { feed, ...(scheduler ? { scheduler } : {}), done, stop };
}
