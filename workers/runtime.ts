/**
 * The Temporal SDK's logging for this process goes through the product's log (logging.ts): workflow
 * and activity lines follow the LOG_* switches; the SDK's own lines (worker state changes, webpack
 * output) stay at warnings and errors unless KVM_BACKUP_SDK_LOG_LEVEL raises them, since its INFO
 * lines drown the product's events. Installed once, before the first worker or native connection.
 */
import { Runtime } from '@temporalio/worker';
import { temporalLogger } from './logging.js';

let installed = false;

export function installRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({
    logger: temporalLogger(),
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
  });
}
