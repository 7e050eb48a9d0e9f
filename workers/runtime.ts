/**
 * The Temporal SDK's own logging for this process: warnings and errors only by default (its INFO
 * lines — worker state changes, webpack output — drown the product's events); KVM_BACKUP_SDK_LOG_LEVEL
 * raises it for debugging. Installed once, before the first worker or native connection.
 */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

let installed = false;

export function installRuntime(): void {
  if (installed) return;
  installed = true;
  const level = (process.env['KVM_BACKUP_SDK_LOG_LEVEL'] ?? 'WARN').toUpperCase() as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(level),
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
  });
}
