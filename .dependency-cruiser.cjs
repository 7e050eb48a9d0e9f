/**
 * The import rules of kvm-backup's layers (docs/architecture.md), checked by dependency-cruiser in
 * `npm test` (test/unit/architecture.test.ts). Layers, bottom up:
 *
 *   core/        pure: types, rules, names; imports only core/ (and @temporalio/common, @xmldom/xmldom)
 *   adapters/    one folder per external system (host, ldap, temporal, notify); imports core/ and its own folder
 *   activities/  steps as thin mappings onto adapters; no file, process or network access of their own
 *   workflows/   deterministic phase lists; activities as types only
 *   workers/     wiring: adapters into activity factories, workflows bundled
 *   client/      CLI, watcher, scheduler: adapters, workflow definitions, workers (the CLI runs them); never activities
 *   stack/       the real services for development and tests
 *   bench/       benchmarks: adapters, stack, and the activity factories' entry points
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A module must not import itself through others.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-is-pure',
      severity: 'error',
      comment:
        'core/ is pure: only core/, the Temporal SDK types and the XML parser (plain JavaScript, no I/O; core/domain-xml.ts); no node built-ins, no other layer.',
      from: { path: '^core/' },
      to: { pathNot: ['^core/', '^node_modules/@temporalio/common/', '^node_modules/@xmldom/xmldom/'] },
    },
    {
      name: 'adapters-import-core',
      severity: 'error',
      comment: 'An adapter imports core/ and its own system folder only.',
      from: { path: '^adapters/([^/]+)/' },
      to: { path: '^(activities|workflows|workers|client|stack|bench|test)/|^adapters/', pathNot: ['^adapters/$1/'] },
    },
    {
      name: 'activities-use-adapters',
      severity: 'error',
      comment: 'Steps reach files, processes and the network only through injected adapters.',
      from: { path: '^activities/' },
      to: { path: ['^(workflows|workers|client|stack|bench|test)/', '^node_modules/(execa|ldapts)/', '^(node:)?(fs|fs/promises|child_process|net|path)$'] },
    },
    {
      name: 'workflows-are-deterministic',
      severity: 'error',
      comment: 'Workflows import core/ and workflows/; activities only as types; never adapters or node built-ins.',
      from: { path: '^workflows/' },
      to: { path: ['^(adapters|workers|client|stack|bench|test)/', '^(node:)?[a-z_]+$'], pathNot: ['^workflows/', '^core/'] },
    },
    {
      name: 'workflows-import-activity-types-only',
      severity: 'error',
      from: { path: '^workflows/' },
      to: { path: '^activities/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-step-outside-activities',
      severity: 'error',
      comment: 'Outside activities/, only the factories\' entry points (index.ts) are imported, and only by workers, bench and tests; workflows may name step modules for their types.',
      from: { pathNot: ['^activities/', '^workflows/', '^workers/', '^bench/', '^test/'] },
      to: { path: '^activities/' },
    },
    {
      name: 'activity-entry-points-only',
      severity: 'error',
      from: { path: '^(workers|bench)/' },
      to: { path: '^activities/', pathNot: ['^activities/(node|control)/index\\.ts$'] },
    },
    {
      name: 'workers-below-clients',
      severity: 'error',
      comment: 'Workers wire adapters, activities and workflows; the CLI and the dev stack start them, never the reverse.',
      from: { path: '^workers/' },
      to: { path: '^(client|stack)/' },
    },
    {
      name: 'nothing-imports-tests-or-bench',
      severity: 'error',
      from: { pathNot: ['^test/', '^bench/'] },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // node_modules/ is not excluded, only not followed: excluding it would hide every npm import
    // from the rules (core-is-pure, activities-use-adapters)
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
