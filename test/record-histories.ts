/**
 * `npm run record-histories [-- [--keep-previous] [name-filter …]]`: records the workflow histories
 * the replay test (test/unit/replay.test.ts) replays. Starts its own Temporal dev server (in memory)
 * and a slapd, runs the control worker with this build's workflow bundle and a stub node worker
 * (test/helpers/stub-node.ts: no libvirt, no VM), runs every scenario of
 * test/helpers/history-scenarios.ts (or those whose name contains a filter), and writes each run's
 * history to test/histories/<workflow>/<scenario>.json(.gz). Stops what it started.
 *
 * Then replays what it wrote against the same build (a recording that does not replay is wrong).
 *
 * --keep-previous: first copies the current set to test/histories/previous/<date>-<commit>/, so that
 * the histories of the build running in the fleet stay in the replay test after re-recording
 * (docs/upgrades.md says when).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { connectWorker } from '../adapters/temporal/connection.js';
import { freePort, stopTrackedPids } from '../stack/daemon.js';
import { PROJECT_ROOT } from '../stack/paths.js';
import { startTemporalServer, type TemporalServer } from '../stack/temporal-server.js';
import { buildWorkflowBundle } from '../workers/workflow-bundle.js';
import { currentHistoryFiles, HISTORIES_DIR, readStoredHistory, writeStoredHistory } from './helpers/history-files.js';
import { SCENARIOS, type Recorded } from './helpers/history-scenarios.js';
import { replayStoredHistories } from './helpers/replay.js';
import { startStubNodeWorker } from './helpers/stub-node.js';
import { createWorld } from './helpers/world.js';

const args = process.argv.slice(2);
const keepPrevious = args.includes('--keep-previous');
const filters = args.filter((a) => !a.startsWith('--'));

/** The LDAP bind password of the test world: it must appear in no history. */
const LDAP_PASSWORD = 'test-secret';

async function commitOf(): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('git', ['-C', PROJECT_ROOT, 'rev-parse', '--short', 'HEAD']);
    return stdout.trim();
  } catch {
    return 'unknown';
  }
}

/** Copies the current set below previous/<date>-<commit of each file's recording>/; returns the labels. */
function keepCurrentAsPrevious(): string[] {
  const labels = new Set<string>();
  for (const f of currentHistoryFiles()) {
    const { recorded } = readStoredHistory(f);
    const label = `${recorded.at.slice(0, 10)}-${recorded.commit}`;
    const to = join(HISTORIES_DIR, 'previous', label, relative(HISTORIES_DIR, f));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(f, to);
    labels.add(label);
  }
  return [...labels];
}

/** Every payload's data in a history's JSON, decoded: what a secret would hide in. */
function decodedPayloads(json: string): string {
  return [...json.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('utf8')).join('\n');
}

async function main(): Promise<void> {
  const scenarios = SCENARIOS.filter((s) => filters.length === 0 || filters.some((f) => s.name.includes(f)));
  if (scenarios.length === 0) throw new Error(`no scenario matches ${filters.join(' ')}; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  // a short neutral directory: its paths end up in the histories (plans, summaries), the checkout's should not
  const dir = mkdtempSync(join(tmpdir(), 'kvmb-rec-'));
  mkdirSync(join(dir, 'logs'), { recursive: true });
  Object.assign(process.env, {
    KVM_BACKUP_TEST_DIR: dir,
    KVM_BACKUP_TEST_RUN: 'rec',
    KVM_BACKUP_PID_DIR: join(dir, 'pids'),
    KVM_BACKUP_LOG_LEVEL: process.env['KVM_BACKUP_LOG_LEVEL'] ?? 'error',
  });
  let temporal: TemporalServer | undefined;
  const stops: Array<() => Promise<void>> = [];
  try {
    temporal = await startTemporalServer({ port: await freePort(), logFile: join(dir, 'logs', 'temporal.log') });
    Object.assign(process.env, { TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: 'default' });
    const bundlePath = join(dir, 'workflow-bundle.js');
    writeFileSync(bundlePath, await buildWorkflowBundle());
    process.env['KVM_BACKUP_WORKFLOW_BUNDLE'] = bundlePath;
    const world = await createWorld({ label: 'rec', noVm: true });
    stops.push(() => world.close());
    const workers = await world.startWorkers({ node: false });
    stops.push(() => workers.shutdown());
    const connection = await connectWorker(world.config.temporal);
    stops.push(() => connection.close());
    const stub = await startStubNodeWorker(connection, world.config.temporal.namespace, { node: world.node, virtualizationRoot: world.paths.virtualizationRoot });
    stops.push(() => stub.shutdown());

    const recorded: Recorded[] = [];
    for (const s of scenarios) {
      const started = Date.now();
      const runs = await s.run({ world, stub });
      console.log(`record-histories: ${s.name}: ${runs.map((r) => r.file).join(', ')} (${Date.now() - started} ms)`);
      recorded.push(...runs);
    }

    if (keepPrevious) {
      for (const label of keepCurrentAsPrevious()) console.log(`record-histories: the previous set is kept in test/histories/previous/${label}/`);
    }
    const server = (await world.client.workflowService.getSystemInfo({})).serverVersion ?? 'unknown';
    const sdk = (createRequire(import.meta.url)('@temporalio/worker/package.json') as { version: string }).version;
    const commit = await commitOf();
    for (const r of recorded) {
      const handle = world.client.workflow.getHandle(r.workflowId, r.runId);
      // the lock workflow ends after its idle minute; the others have ended already
      await handle.result().catch((e: unknown) => {
        if (!r.fails) throw e;
      });
      const description = await handle.describe();
      const history = await handle.fetchHistory();
      const json = JSON.stringify(history);
      if (json.includes(LDAP_PASSWORD) || decodedPayloads(json).includes(LDAP_PASSWORD)) throw new Error(`${r.file}: the LDAP password is in the history`);
      const written = writeStoredHistory(
        r.file,
        {
          workflowId: r.workflowId,
          workflowType: description.type,
          about: r.about,
          ...(r.fails ? { fails: true } : {}),
          recorded: { at: new Date().toISOString(), commit, sdk, server },
        },
        history,
      );
      console.log(`record-histories: ${relative(PROJECT_ROOT, written.path)}: ${written.events} events, ${written.bytes} bytes`);
    }
    // what was written replays against the build that wrote it (else the recording itself is wrong)
    const written = recorded.map((r) => readStoredHistory(currentHistoryFiles().find((f) => relative(HISTORIES_DIR, f).startsWith(`${r.file}.json`))!));
    const failures = await replayStoredHistories(readFileSync(bundlePath, 'utf8'), written);
    for (const [name, e] of failures) console.error(`record-histories: ${name} does not replay: ${e.message}`);
    if (failures.size) throw new Error(`${failures.size} recorded histories do not replay`);
    console.log(`record-histories: the ${written.length} histories replay against this build`);
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    console.error(`record-histories: failed; files and logs kept in ${dir}`);
    throw e;
  } finally {
    for (const stop of stops.reverse()) await stop().catch((e) => console.error('record-histories: cleanup:', e));
    await stopTrackedPids(join(dir, 'pids'));
    await temporal?.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error('record-histories:', e);
    process.exit(1);
  },
);
