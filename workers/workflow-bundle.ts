/** Where the control worker finds its workflows: the workflows module, or a prebuilt bundle. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

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

/** Webpack's own chatter stays out of test output; its warnings and errors do not. */
const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};

/** This checkout's packages: also found from a workflows module outside the checkout. */
const NODE_MODULES = fileURLToPath(new URL('../../node_modules', import.meta.url));

/**
 * The workflow bundle exactly as a control worker builds it: the workflows module (default: this
 * build's, `WORKFLOWS_PATH`; another for a test that builds a changed copy, which may lie outside
 * the checkout) with the interceptor modules. Returns the bundle's JavaScript (what
 * `workflowBundle: { code }` and KVM_BACKUP_WORKFLOW_BUNDLE take). Throws the bundler's error when
 * a module does not resolve or a workflow imports a module that workflows must not use.
 */
export async function buildWorkflowBundle(workflowsPath: string = WORKFLOWS_PATH): Promise<string> {
  const bundle = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: quietLogger,
    webpackConfigHook: (config) => ({ ...config, resolve: { ...config.resolve, modules: [...(config.resolve?.modules ?? ['node_modules']), NODE_MODULES] } }),
  });
  return bundle.code;
}
