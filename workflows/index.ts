/** Every workflow the control worker runs (the worker bundles this file), and their shared definitions. */
export { probeNodeWorkflow } from './node-probe.js';
export { backupWorkflow } from './backup.js';
export { deleteWorkflow } from './delete.js';
export { vmLockWorkflow } from './vm-lock.js';
export { nodeSlotsWorkflow } from './node-slots.js';
export { scheduledBackupWorkflow } from './scheduled-backup.js';
export { retentionWorkflow } from './retention.js';
export { scheduledBatchWorkflow } from './scheduled-batch.js';
export { restoreWorkflow } from './restore.js';
export { verifyWorkflow } from './verify.js';
export * from './definitions.js';
