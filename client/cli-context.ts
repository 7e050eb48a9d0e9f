/**
 * What a CLI command needs, made on first use: the global configuration, the directory, a Temporal
 * client. `close()` releases what was opened, so the command's process can end.
 */
import type { Client } from '@temporalio/client';
import { StoneyDirectory } from '../adapters/ldap/stoney-directory.js';
import type { GlobalConfig } from '../core/global-config.js';
import { connectClient } from '../adapters/temporal/connection.js';
import { loadGlobalConfig } from './config-file.js';

/** A failure the CLI reports as one line and an exit code (from the product's table where one fits). */
export class CliError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class CliContext {
  #config?: GlobalConfig;
  #directory?: StoneyDirectory;
  #client?: Client;

  constructor(
    readonly configFile?: string,
    readonly json = false,
  ) {}

  get config(): GlobalConfig {
    return (this.#config ??= loadGlobalConfig(this.configFile));
  }

  /** The stoney cloud directory, a bind per call. */
  get directory(): StoneyDirectory {
    return (this.#directory ??= StoneyDirectory.fromConfig(this.config.database));
  }

  async temporal(): Promise<Client> {
    return (this.#client ??= await connectClient(this.config.temporal));
  }

  /** Prints a result: JSON with --json, else the human text. */
  print(human: string, data: unknown): void {
    console.log(this.json ? JSON.stringify(data, null, 2) : human);
  }

  async close(): Promise<void> {
    await this.#client?.connection.close();
  }
}
