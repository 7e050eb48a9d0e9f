/** Where the control worker finds its workflows: the workflows module, or a prebuilt bundle. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The workflows module the control worker bundles. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.js', import.meta.url));

/** Bundled beside the workflows (also into a prebuilt bundle): log context and outcome metrics. */
export const WORKFLOW_INTERCEPTOR_MODULES = [fileURLToPath(new URL('../workflows/interceptors.js', import.meta.url))];

/**
 * A prebuilt bundle (KVM_BACKUP_WORKFLOW_BUNDLE) saves the 2-3 s webpack run per worker; the test
 * runner builds one for all test files.
 */
export function workflowSource(): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  const bundle = process.env['KVM_BACKUP_WORKFLOW_BUNDLE'];
  return bundle && existsSync(bundle) ? { workflowBundle: { codePath: bundle } } : { workflowsPath: WORKFLOWS_PATH };
}
