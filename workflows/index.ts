/** Every workflow the control worker runs (the worker bundles this file). */
export { probeNodeWorkflow } from './node-probe.js';
export { backupWorkflow, backupProgressQuery } from './backup.js';
export { deleteWorkflow } from './delete.js';
export { vmLockWorkflow } from './vm-lock.js';
export { scheduledBackupWorkflow } from './scheduled-backup.js';
export { restoreWorkflow, restoreProgressQuery, confirmRestoreSignal } from './restore.js';
export { verifyWorkflow } from './verify.js';
