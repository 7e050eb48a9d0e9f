/**
 * The workflow patches (core/workflow-patches.ts, docs/upgrades.md): [Temporal] DORMANT_PATCHES is
 * read, a dormant patch is refused and the others taken, and every patch call in workflows/ names
 * its ID from the registry (so a release's patches are listed in one place).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveTemporalSettings } from '../../core/temporal-settings.js';
import { KNOWN_PATCH_IDS, parseDormantPatches, patchActivation, WORKFLOW_PATCHES } from '../../core/workflow-patches.js';
import { PROJECT_ROOT } from '../../stack/paths.js';

test('DORMANT_PATCHES: IDs separated by commas or blanks, duplicates once; absent or empty: none', () => {
  assert.deepEqual(parseDormantPatches(undefined), []);
  assert.deepEqual(parseDormantPatches(' '), []);
  assert.deepEqual(parseDormantPatches('a-1, b-2  c-3,a-1'), ['a-1', 'b-2', 'c-3']);
  const settings = (ini: Record<string, string>) => resolveTemporalSettings(ini, { readSecretFile: () => '', defaultControlTaskQueue: 'q' });
  assert.deepEqual(settings({}).dormantPatches, []);
  assert.deepEqual(settings({ DORMANT_PATCHES: 'kvm-backup-failure-notification' }).dormantPatches, ['kvm-backup-failure-notification']);
});

test('a dormant patch is refused, every other taken; none dormant leaves the SDK default', () => {
  assert.equal(patchActivation([]), undefined);
  const decide = patchActivation(['p-new'])!;
  assert.equal(decide({ patchId: 'p-new' }), false);
  assert.equal(decide({ patchId: WORKFLOW_PATCHES.failureNotification.id }), true);
});

test('every patched()/deprecatePatch() in workflows/ takes its ID from WORKFLOW_PATCHES; IDs are unique', () => {
  const dir = join(PROJECT_ROOT, 'workflows');
  const calls: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(dir, f), 'utf8');
    for (const m of text.matchAll(/\b(?:patched|deprecatePatch)\(\s*([^)]*)\)/g)) calls.push(`${f}: ${m[1]}`);
  }
  assert.ok(calls.length > 0, 'the scan finds the patch calls');
  for (const c of calls) assert.doesNotMatch(c, /['"`]/, `${c}: a literal patch ID; add it to core/workflow-patches.ts`);
  assert.equal(KNOWN_PATCH_IDS.size, Object.keys(WORKFLOW_PATCHES).length, 'two patches share an ID');
});
