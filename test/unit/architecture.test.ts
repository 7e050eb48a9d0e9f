/**
 * The layers' import rules (.dependency-cruiser.cjs, docs/architecture.md) hold for the whole source
 * tree, and the checker really catches a broken rule: a fixture tree with one violation of each kind
 * must fail with exactly those rules.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const LAYERS = ['core', 'adapters', 'activities', 'workflows', 'workers', 'client', 'stack', 'bench', 'test'];

/** The names of the rules depcruise reports broken below `cwd`. */
async function brokenRules(cwd: string, folders: string[]): Promise<string[]> {
  const r = await execa(DEPCRUISE, ['--config', CONFIG, '--output-type', 'json', ...folders], { cwd, reject: false });
  const report = JSON.parse(r.stdout) as { summary: { violations: Array<{ rule: { name: string }; from: string; to: string }> } };
  return report.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
}

test('the source tree keeps the layers: no cycle, no import from the wrong layer', async () => {
  const broken = await brokenRules(ROOT, LAYERS);
  assert.deepEqual(broken, []);
});

test('the checker fails on a cycle, an impure core (node built-in or npm package), a step touching files or spawning, a workflow importing a step', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-backup-layers-'));
  try {
    const file = (path: string, text: string) => {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    file('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', strict: true } }));
    file('core/a.ts', "import { b } from './b.js';\nimport { readFileSync } from 'node:fs';\nexport const a = () => b + String(readFileSync);\n");
    file('core/b.ts', "import { a } from './a.js';\nexport const b = String(a);\n");
    file('activities/node/step.ts', "import { rm } from 'node:fs/promises';\nexport const step = rm;\n");
    file('workflows/w.ts', "import { step } from '../activities/node/step.js';\nexport const w = step;\n");
    // npm packages resolve into node_modules/ as in the real tree: the rules must see them there
    for (const pkg of ['execa', '@xmldom/xmldom']) {
      file(`node_modules/${pkg}/package.json`, JSON.stringify({ name: pkg, version: '0.0.0', main: 'index.js' }));
      file(`node_modules/${pkg}/index.js`, 'module.exports = {};\n');
    }
    file('core/npm.ts', "import { execa } from 'execa';\nexport const c = execa;\n");
    file('core/xml.ts', "import { DOMParser } from '@xmldom/xmldom';\nexport const p = DOMParser;\n");
    file('activities/node/spawn.ts', "import { execa } from 'execa';\nexport const s = execa;\n");
    const violations = await brokenRules(dir, ['core', 'activities', 'workflows']);
    const broken = violations.map((v) => v.split(':')[0]);
    for (const rule of ['no-cycles', 'core-is-pure', 'activities-use-adapters', 'workflows-import-activity-types-only']) {
      assert.ok(broken.includes(rule), `${rule} reported (got ${broken.join(', ')})`);
    }
    assert.ok(violations.some((v) => v.startsWith('core-is-pure: core/npm.ts → node_modules/execa/')), violations.join('\n'));
    assert.ok(violations.some((v) => v.startsWith('activities-use-adapters: activities/node/spawn.ts → node_modules/execa/')), violations.join('\n'));
    assert.ok(!violations.some((v) => v.includes('core/xml.ts')), 'core may use the XML parser');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
