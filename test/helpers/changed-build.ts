/**
 * Another build of the workflows, for upgrade tests: this build's compiled workflows (dist/workflows/)
 * with one file replaced by a changed copy, bundled as a control worker bundles them. The copy and a
 * workflows module that re-exports every workflow (the replaced one from the copy) are written to a
 * directory of the test; their imports point back at the compiled modules by absolute path, so the
 * other workflows and shared modules are this build's own.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWorkflowBundle } from '../../workers/workflow-bundle.js';

const COMPILED_WORKFLOWS = fileURLToPath(new URL('../../workflows/', import.meta.url));

/** Relative imports (`'./x.js'`, `'../core/x.js'`) of a module in `from`, made absolute. */
function absoluteImports(source: string, from: string): string {
  return source.replace(/(from\s+|import\s+)'(\.{1,2}\/[^']+)'/g, (_m, head: string, spec: string) => `${head}'${resolve(from, spec)}'`);
}

/** Replaces `anchor` (which must occur exactly once) by `replacement`; throws when the compiled code changed. */
export function replaceOnce(source: string, anchor: string, replacement: string): string {
  const at = source.indexOf(anchor);
  if (at < 0 || source.indexOf(anchor, at + 1) >= 0) throw new Error(`changed build: the anchor ${JSON.stringify(anchor)} is not in the compiled workflow exactly once`);
  return source.slice(0, at) + replacement + source.slice(at + anchor.length);
}

/**
 * Bundles the workflows with `file` (e.g. `backup.js`) changed by `change` (given the compiled
 * source); writes the bundle to `<dir>/workflow-bundle.js` and returns its path.
 */
export async function bundleChangedWorkflows(dir: string, file: string, change: (compiled: string) => string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const original = join(COMPILED_WORKFLOWS, file);
  writeFileSync(join(dir, file), change(absoluteImports(readFileSync(original, 'utf8'), dirname(original))));
  const index = absoluteImports(readFileSync(join(COMPILED_WORKFLOWS, 'index.js'), 'utf8'), COMPILED_WORKFLOWS);
  writeFileSync(join(dir, 'index.js'), replaceOnce(index, `'${original}'`, `'./${file}'`));
  const bundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, await buildWorkflowBundle(join(dir, 'index.js')));
  return bundlePath;
}
