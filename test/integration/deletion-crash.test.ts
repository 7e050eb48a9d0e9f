/**
 * Deleting an iteration is crash-safe (docs/on-disk-layout.md, "Deleting an iteration"): the node
 * worker is killed with SIGKILL at each point of a deletion (before and after the marking rename, after
 * the first and the last file, after the directory) in the rotation of a one-go backup and in the
 * `delete` step, then started again. Each time the operation completes; the deletion that had begun
 * is finished (no `.deleting-<ou>` left, no empty directory), exactly the iterations beyond the kept
 * ones are gone (a half-deleted one is never counted as unfinished nor against the kept ones), and at
 * no moment, the crash included, does a `finished` leaf stand for an iteration that has lost a file.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { deletingDirName, parseManifest, suffixedIterationFiles } from '../../core/layout.js';
import { leafDn, vmBackupDn } from '../../core/naming.js';
import { value } from '../../core/ldap-entry.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { deleteWorkflow } from '../../workflows/index.js';
import { addLeaf, backupDirOf, readLeaf, startBackup } from '../helpers/backup.js';
import type { CrashSpec } from '../helpers/crashing-node-worker.js';
import { startNodeWorkerProcess, type NodeProcess } from '../helpers/node-process.js';
import { createLeaf } from '../helpers/watcher.js';
import { createWorld, type World } from '../helpers/world.js';

let w: World;
let control: RunningWorkers;
let worker: NodeProcess | undefined;
before(async () => {
  w = await createWorld({ label: 'delcrash' });
  control = await w.startWorkers({ node: false });
});
after(async () => {
  await worker?.stop();
  await control?.shutdown();
  await w?.close();
});

const vmDir = () => join(w.paths.backupRoot, 'vm-persistent', w.pool, w.vm);
/** Files of an earlier iteration: state, XML, image and the manifest. */
const FAKE_FILES = 4;

/** A finished iteration of an earlier backup: three files and a manifest naming them, and its finished leaf. */
async function earlierIteration(ou: string): Promise<string> {
  const dir = backupDirOf(w, ou);
  mkdirSync(dir, { recursive: true });
  const names = suffixedIterationFiles(w.vm, ou);
  const files = [names.state, names.xml, `${w.vm}-vda.disk.qcow2.${ou}`];
  for (const f of files) writeFileSync(join(dir, f), `old ${f}`);
  writeFileSync(join(dir, names.manifest), files.map((f) => `${'0'.repeat(64)}  ${f}\n`).join(''));
  return createLeaf(w, ou, 'finished');
}

/** An iteration without manifest (a backup that did not finish): rotation must leave it alone. */
function unfinishedIteration(ou: string): void {
  mkdirSync(backupDirOf(w, ou), { recursive: true });
  writeFileSync(join(backupDirOf(w, ou), `${w.vm}-vda.disk.qcow2.${ou}`), 'half an image');
}

async function leavesOfVm(): Promise<Array<{ ou: string; mode: string }>> {
  const entries = await w.directory.search(vmBackupDn(DEMO_SERVICE_SUBTREE, w.vm), { scope: 'one' });
  return entries.map((e) => ({ ou: value(e, 'ou')!, mode: value(e, 'sstProvisioningMode')! })).sort((a, b) => a.ou.localeCompare(b.ou));
}

/** Every finished leaf's iteration is whole: under its own name or marked, its manifest and every file it names. */
async function assertFinishedLeavesWhole(when: string): Promise<void> {
  for (const { ou, mode } of await leavesOfVm()) {
    if (mode !== 'finished') continue;
    const dir = [backupDirOf(w, ou), join(vmDir(), deletingDirName(ou))].find((d) => existsSync(d));
    assert.ok(dir, `${when}: finished leaf ${ou} has no iteration directory`);
    const manifest = join(dir, suffixedIterationFiles(w.vm, ou).manifest);
    assert.ok(existsSync(manifest), `${when}: finished leaf ${ou}: manifest gone from ${dir}`);
    for (const f of parseManifest(readFileSync(manifest, 'utf8')).keys()) assert.ok(existsSync(join(dir, f)), `${when}: finished leaf ${ou}: ${f} gone`);
  }
}

/** Starts a crashing node worker, runs `operation`, waits for the crash, checks the state at the crash, restarts a sound worker. */
async function crashDuring<T>(spec: CrashSpec, operation: () => Promise<T>, atCrash: () => Promise<void>): Promise<{ result: T; where: string }> {
  const markFile = join(w.dir, `crash-${Date.now()}`);
  worker = await startNodeWorkerProcess(w, { ...spec, markFile });
  const result = operation();
  const ended = await Promise.race([worker.exited.then(() => 'crashed'), result.then(() => 'completed', () => 'failed')]);
  assert.equal(ended, 'crashed', `the operation ${ended} without the crash ${JSON.stringify(spec)}`);
  assert.ok(existsSync(markFile), `the worker died at the chosen point (${JSON.stringify(spec)})`);
  const where = readFileSync(markFile, 'utf8').trim();
  await atCrash();
  worker = await startNodeWorkerProcess(w);
  try {
    return { result: await result, where };
  } finally {
    await worker.stop();
    worker = undefined;
  }
}

function resetVmBackups(): Promise<void> {
  rmSync(vmDir(), { recursive: true, force: true });
  return (async () => {
    for (const { ou } of await leavesOfVm()) await w.directory.deleteTree(leafDn(DEMO_SERVICE_SUBTREE, w.vm, ou));
  })();
}

// three earlier finished iterations, iterations = 2 (the demo pool): the backup keeps itself and the
// newest earlier one, and deletes the two oldest; each has three files and a manifest (FAKE_FILES)
const rotationPoints: Array<{ name: string; spec: CrashSpec }> = [
  { name: 'before the first marking rename', spec: { activity: 'rotateIterations', call: 'files.rename', nth: 1, when: 'before' } },
  { name: 'after the first marking rename (one of two marked)', spec: { activity: 'rotateIterations', call: 'files.rename', nth: 1, when: 'after' } },
  { name: 'after the second marking rename', spec: { activity: 'rotateIterations', call: 'files.rename', nth: 2, when: 'after' } },
  { name: 'after the first file removed', spec: { activity: 'purgeDeletedIterations', call: 'files.removeDirectory', nth: 1, when: 'after' } },
  { name: 'after the last file of the first iteration removed', spec: { activity: 'purgeDeletedIterations', call: 'files.removeDirectory', nth: FAKE_FILES, when: 'after' } },
  { name: 'after the first iteration directory removed', spec: { activity: 'purgeDeletedIterations', call: 'files.removeDirectory', nth: FAKE_FILES + 1, when: 'after' } },
];

for (const point of rotationPoints) {
  test(`rotation: kill -9 of the node worker ${point.name}`, { timeout: 180_000 }, async () => {
    await resetVmBackups();
    const [oldest, older, old] = ['20200101T000000Z', '20200102T000000Z', '20200103T000000Z'];
    for (const ou of [oldest, older, old]) await earlierIteration(ou);
    unfinishedIteration('20200101T120000Z');
    const leaf = await addLeaf(w);
    const { where } = await crashDuring(
      point.spec,
      async () => (await startBackup(w, { leafDn: leaf.dn, heartbeatTimeout: '3 seconds' })).result(),
      () => assertFinishedLeavesWhole(`at the crash (${point.name})`),
    );
    assert.match(where, new RegExp(point.spec.activity!));

    assert.deepEqual(readdirSync(vmDir()).sort(), [old, '20200101T120000Z', leaf.ou].sort(), 'kept: the backup and the newest earlier one; the unfinished one left alone; nothing marked');
    assert.deepEqual((await leavesOfVm()).map((l) => `${l.ou} ${l.mode}`), [`${old} finished`, `${leaf.ou} finished`]);
    assert.equal((await readLeaf(w, leaf.dn)).returnValue, '0');
    await assertFinishedLeavesWhole('after the backup');
    // a later backup rotates the same way: nothing half-deleted distorts its count
    assert.equal(existsSync(backupDirOf(w, oldest)) || existsSync(backupDirOf(w, older)), false);
  });
}

const deletePoints: Array<{ name: string; spec: CrashSpec }> = [
  { name: 'after the marking rename', spec: { activity: 'deleteIteration', call: 'files.rename', nth: 1, when: 'after' } },
  { name: 'after the first file removed', spec: { activity: 'deleteIteration', call: 'files.removeDirectory', nth: 1, when: 'after' } },
  { name: 'after the last file removed', spec: { activity: 'deleteIteration', call: 'files.removeDirectory', nth: FAKE_FILES, when: 'after' } },
  { name: 'after the directory removed', spec: { activity: 'deleteIteration', call: 'files.removeDirectory', nth: FAKE_FILES + 1, when: 'after' } },
];

for (const point of deletePoints) {
  test(`delete step: kill -9 of the node worker ${point.name}`, { timeout: 180_000 }, async () => {
    await resetVmBackups();
    const [doomed, other] = ['20200201T000000Z', '20200202T000000Z'];
    const dn = await earlierIteration(doomed);
    await earlierIteration(other);
    await w.directory.modify(dn, { sstProvisioningMode: 'delete', sstProvisioningState: '0' });
    const { result } = await crashDuring(
      point.spec,
      async () =>
        (
          await w.client.workflow.start(deleteWorkflow, { taskQueue: w.controlQueue, workflowId: `test-delete/${w.vm}/${doomed}/${Date.now()}`, args: [{ leafDn: dn, heartbeatTimeout: '3 seconds' }] })
        ).result(),
      async () => {
        assert.notEqual((await readLeaf(w, dn)).mode, 'finished', 'the leaf of an iteration being deleted does not say finished');
        await assertFinishedLeavesWhole(`at the crash (${point.name})`);
      },
    );
    assert.equal(result.vm, w.vm);
    const l = await readLeaf(w, dn);
    assert.equal(l.mode, 'deleted');
    assert.equal(l.returnValue, '0');
    assert.deepEqual(readdirSync(vmDir()), [other], 'the iteration and its marked directory are gone; the other one stays');
    await assertFinishedLeavesWhole('after the delete');
  });
}
