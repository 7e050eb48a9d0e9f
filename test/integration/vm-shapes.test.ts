/**
 * The VM-shape matrix (docs/vm-shapes.md): every shape of test/helpers/shapes.ts built on the real
 * stack, then for a supported shape: known bytes written into each disk, a backup (the VM keeps its
 * state, persistence and chain, the templates their checksum, the sibling clone its disk; the
 * backup's images are standalone and hold the snapshot-time bytes), other bytes written, a restore
 * with RAM state and one without (each: the backup-time bytes in every disk, the state and
 * persistence of the backup, CD-ROMs attached, UEFI variables and TPM state back). A linked clone is
 * restored once more with its template gone. For a refused shape: the backup fails with its code
 * and nothing changed (domain XML, state, chains, no overlay, nothing in retain).
 *
 * A supported shape runs once more with a restic repository as backup root (docs/repository.md):
 * the same checks, on the files of the iteration's snapshot restored to a scratch directory; nothing
 * lands in the plain backup root.
 *
 * `npm test` runs the rows of MATRIX_IN_CI and REPOSITORY_IN_CI; `npm run test:matrix` runs every
 * row (KVM_BACKUP_SHAPES=all and KVM_BACKUP_SHAPES_REPOSITORY=all, or comma lists of shape names).
 * A shape this machine cannot run is reported skipped with the reason.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { codeOf } from '../../core/failures.js';
import { diskNames, iterationDirs, overlayPath, type BackupFacts } from '../../core/layout.js';
import { hostHasPattern } from '../../stack/tiny-vm.js';
import { addLeaf, readLeaf, startBackup, startRestore } from '../helpers/backup.js';
import { cli } from '../helpers/cli.js';
import { testDir } from '../helpers/names.js';
import { resticIni, useRepository } from '../helpers/repository.js';
import { backingChain, chainPaths, diskHas, readNvramMarker, runState, sha256File, writeDisk, writeNvramMarker, xmlDevices } from '../helpers/host-probes.js';
import { SHAPES, type ShapeName, type ShapeSpec, type ShapeWorld } from '../helpers/shapes.js';

/** One row of each kind (chain, format, run state, persistence, firmware, device, path, refusal). */
const MATRIX_IN_CI: ShapeName[] = ['linked-clone', 'raw', 'paused', 'transient', 'shut-off', 'uefi', 'tpm', 'cdrom-iso', 'odd-paths', 'block-device', 'foreign-block-job', 'leftover-overlay'];

/** The rows that run again with a restic repository as backup root (the TPM state archive in a snapshot; all with test:matrix). */
const REPOSITORY_IN_CI: ShapeName[] = ['tpm'];

/** The rows an environment variable names (`all`, a comma list), else `fallback`. */
function rowsOf(variable: string, fallback: ShapeName[]): string[] {
  const chosen = process.env[variable];
  return chosen === 'all' ? SHAPES.map((s) => s.name) : chosen ? chosen.split(',').map((x) => x.trim()) : fallback;
}
const rows = rowsOf('KVM_BACKUP_SHAPES', MATRIX_IN_CI);
// naming some shapes to look at (KVM_BACKUP_SHAPES=raw) runs no repository row unless asked for
const repositoryRows = rowsOf('KVM_BACKUP_SHAPES_REPOSITORY', process.env['KVM_BACKUP_SHAPES'] ? [] : REPOSITORY_IN_CI);

/** A row's restic repository: the pool's backup root. */
type ShapeRepository = Awaited<ReturnType<typeof useRepository>>;

const results: string[] = [];
after(() => {
  console.log(`VM-shape matrix:\n${results.join('\n')}`);
});

const A = 0xa1; // written before the backup
const B = 0xb2; // written after it: a restore must remove it
const AT = '1M';
const LEN = '1M';

function iterationDir(w: ShapeWorld, ou: string): string {
  return iterationDirs({
    vm: w.vm,
    ou,
    disks: w.disks,
    rootDirectoryUri: `file://${w.paths.backupRoot}`,
    retainDirectoryUri: `file://${w.paths.retainRoot}`,
    virtualizationRoot: w.paths.virtualizationRoot,
  }).backupDir;
}

/** Everything a refused backup must leave as it was. */
async function snapshotOfVm(w: ShapeWorld) {
  const s = await runState(w.virsh, w.vm);
  return {
    state: s.state,
    persistent: s.persistent,
    xml: await w.virsh.dumpXml(w.vm, { inactive: true }).catch(() => ''),
    chains: await Promise.all(Object.values(w.facts.chains).map((c) => chainPaths(c[0]!.path))),
  };
}

async function assertShared(w: ShapeWorld, what: string): Promise<void> {
  for (const s of w.facts.shared) assert.equal(await sha256File(s.path), s.sha256, `${what}: ${s.path} unchanged`);
  if (w.facts.sibling) {
    assert.equal((await w.virsh.state(w.facts.sibling.name)).state, 'running', `${what}: the sibling clone runs`);
    assert.equal((await chainPaths(w.facts.sibling.image)).length, 2, `${what}: the sibling still on its template`);
  }
}

async function assertDisks(w: ShapeWorld, present: number[], absent: number[], what: string): Promise<void> {
  for (const d of w.disks) {
    for (const p of present) assert.equal(await diskHas(w, d.target, p, AT, LEN), true, `${what}: ${d.target} has 0x${p.toString(16)}`);
    for (const p of absent) assert.equal(await diskHas(w, d.target, p, AT, LEN), false, `${what}: ${d.target} must not have 0x${p.toString(16)}`);
    for (const b of w.facts.baseData.filter((x) => x.target === d.target)) {
      assert.equal(await diskHas(w, d.target, b.pattern, b.offset, b.length), true, `${what}: ${d.target} still reads its template's bytes`);
    }
  }
}

async function assertRunState(w: ShapeWorld, keeps: { state: string; persistent: boolean }, what: string): Promise<void> {
  const s = await runState(w.virsh, w.vm);
  assert.equal(s.state, keeps.state, `${what}: state (${s.reason})`);
  assert.equal(s.persistent, keeps.persistent, `${what}: persistence`);
}

async function cdroms(w: ShapeWorld): Promise<string[]> {
  return (await xmlDevices(w.virsh, w.vm)).filter((d) => d.device !== 'disk').map((d) => `${d.target}:${d.source}`);
}

/**
 * The directory holding the iteration's files as the backup wrote them: the plain layout's iteration
 * directory, or for a repository the iteration's snapshot restored into a scratch directory (and
 * nothing in the plain backup root).
 */
async function iterationFiles(w: ShapeWorld, ou: string, repo: ShapeRepository | undefined): Promise<string> {
  if (!repo) return iterationDir(w, ou);
  assert.equal(existsSync(iterationDir(w, ou)), false, 'nothing in the plain backup root');
  const snapshots = await repo.restic.snapshots(repo.repository, [`vm=${w.vm}`, `ou=${ou}`]);
  assert.equal(snapshots.length, 1, `one snapshot of ${ou}`);
  const scratch = join(w.dir, `snapshot-${ou}`);
  mkdirSync(scratch, { recursive: true });
  await repo.restic.restore(repo.repository, snapshots[0]!.id, scratch);
  return scratch;
}

async function supported(spec: ShapeSpec, w: ShapeWorld, keeps: { state: string; persistent: boolean }, repo?: ShapeRepository): Promise<string> {
  const notes: string[] = [];
  for (const d of w.disks) await writeDisk(w, d.target, A, AT, LEN);
  // the builder wrote its marker while the VM was shut off, so the running firmware holds it too (QEMU keeps the
  // flash in memory, and a RAM state restore writes that back: a marker written to the file behind a running
  // firmware's back would not be the guest's variables)
  const nvramA = w.facts.nvram?.marker ?? Buffer.alloc(0);
  const drives = await cdroms(w);

  const leaf = await addLeaf(w);
  const outcome = await (await startBackup(w, { leafDn: leaf.dn })).result();
  notes.push(`${outcome.method} backup, pause ${outcome.pauseMs} ms`);

  // the VM as it was: state, persistence, its own chain, no overlay; templates and sibling untouched
  await assertRunState(w, keeps, 'after the backup');
  for (const [target, chain] of Object.entries(w.facts.chains)) {
    assert.deepEqual(await chainPaths(chain[0]!.path), chain.map((c) => c.path), `${target}: chain after the backup`);
  }
  for (const d of w.disks) assert.equal(existsSync(overlayPath(d.path, leaf.ou)), false, `${d.target}: overlay removed`);
  await assertShared(w, 'after the backup');
  assert.deepEqual(await cdroms(w), drives, 'CD-ROMs as they were');

  // the backup: standalone images with the snapshot-time bytes, the facts, the firmware files
  const dir = await iterationFiles(w, leaf.ou, repo);
  const names = diskNames(w.disks);
  for (const [i, d] of w.disks.entries()) {
    const file = join(dir, `${names[i]}.${leaf.ou}`);
    const chain = await backingChain(file);
    assert.equal(chain.length, 1, `${d.target}: the backup's image is standalone (${chain.map((c) => c.path).join(' → ')})`);
    assert.equal(chain[0]!.format, d.format ?? 'qcow2', `${d.target}: the backup keeps the image's format`);
    assert.equal(await hostHasPattern(file, A, AT, LEN, chain[0]!.format as 'qcow2' | 'raw'), true, `${d.target}: backup holds the bytes written before it`);
    for (const b of w.facts.baseData.filter((x) => x.target === d.target)) {
      assert.equal(await hostHasPattern(file, b.pattern, b.offset, b.length, chain[0]!.format as 'qcow2' | 'raw'), true, `${d.target}: the backup holds the template's bytes (flattened)`);
    }
  }
  const facts = JSON.parse(readFileSync(join(dir, `${w.vm}.backup.json.${leaf.ou}`), 'utf8')) as BackupFacts;
  assert.deepEqual([facts.runState, facts.persistent], [keeps.state, keeps.persistent], 'facts: run state and persistence');
  if (w.facts.nvram) assert.ok(existsSync(join(dir, `${w.vm}.nvram.${leaf.ou}`)), 'UEFI variables in the backup');
  // the TPM state as the backup holds it (the firmware may have changed it since the VM started)
  if (w.facts.tpm) assert.ok(existsSync(join(dir, `${w.vm}.tpm.tar.${leaf.ou}`)), 'TPM state in the backup');
  const tpmBefore = w.facts.tpm ? await tpmStateInArchive(join(dir, `${w.vm}.tpm.tar.${leaf.ou}`), w.facts.tpm.stateFile) : undefined;
  assert.ok(readdirSync(dir).some((f) => f.startsWith('SHA256SUMS')), 'manifest written');
  await assertVerifies(w, leaf.ou, 'after the backup');

  // restores: with the RAM state (where there is one), then without; each after other bytes were written
  for (const withoutState of keeps.state === 'shut off' ? [true] : [false, true]) {
    const what = `restore ${withoutState ? 'without' : 'with'} RAM state`;
    for (const d of w.disks) await writeDisk(w, d.target, B, AT, LEN);
    if (w.facts.nvram) writeNvramMarker(w.facts.nvram.path, Buffer.alloc(nvramA.length, 0x42));
    if (w.facts.tpm) await spoilTpmState(w);
    const r = await (await startRestore(w, { leafDn: leaf.dn, confirmed: true, withoutState })).result();
    notes.push(`${what}: ${r.result?.how} ${r.result?.state} (${r.result?.reason})`);
    await assertRunState(w, keeps, what);
    await assertDisks(w, [A], [B], what);
    assert.deepEqual(await cdroms(w), drives, `${what}: CD-ROMs attached as they were`);
    if (w.facts.nvram) assert.deepEqual(readNvramMarker(w.facts.nvram.path, nvramA.length), nvramA, `${what}: UEFI variables back`);
    if (w.facts.tpm) assert.equal(await sha256File(w.facts.tpm.stateFile), tpmBefore, `${what}: TPM state back`);
    await assertShared(w, what);
  }

  const templates = Object.values(w.facts.chains).flatMap((c) => c.slice(1).map((i) => i.path));
  if (templates.length) {
    // the backup does not need its template: restore with every backing file gone, then put them back
    const moved = templates.map((path) => ({ path, away: `${path}.away` }));
    for (const m of moved) renameSync(m.path, m.away);
    try {
      for (const d of w.disks) await writeDisk(w, d.target, B, AT, LEN).catch(() => undefined);
      const r = await (await startRestore(w, { leafDn: leaf.dn, confirmed: true })).result();
      notes.push(`restore without its template: ${r.result?.how}`);
      await assertRunState(w, keeps, 'restore without the template');
      for (const d of w.disks) assert.equal(await diskHas(w, d.target, A, AT, LEN), true, `${d.target}: restored without its template`);
    } finally {
      for (const m of moved) renameSync(m.away, m.path);
    }
    await assertShared(w, 'after the restore without the template');
  }
  await assertVerifies(w, leaf.ou, 'after the restores');
  return notes.join('; ');
}

/** `kvm-backup verify` of the iteration: every file against its manifest, qemu-img check where it applies. */
async function assertVerifies(w: ShapeWorld, ou: string, when: string): Promise<void> {
  const r = await cli(w, ['verify', w.vm, '--backup', ou, '--json']);
  assert.equal(r.exitCode, 0, `${when}: the backup verifies: ${r.stdout}${r.stderr}`);
}

/** sha256 of the TPM state file as a backup's archive of the state directory holds it. */
async function tpmStateInArchive(tar: string, stateFile: string): Promise<string> {
  const member = `./${stateFile.split('/').slice(-2).join('/')}`; // ./tpm2/tpm2-00.permall
  const { stdout } = await execa('tar', ['--extract', '--to-stdout', '--file', tar, member], { encoding: 'buffer' });
  return createHash('sha256').update(stdout).digest('hex');
}

/** Changes the TPM state file behind the VM's back (as if the guest had used its TPM since the backup). */
async function spoilTpmState(w: ShapeWorld): Promise<void> {
  if (await w.virsh.isActive(w.vm)) await w.virsh.destroy(w.vm);
  if (!(await w.virsh.exists(w.vm))) return; // a transient TPM VM loses its state dir with its domain: the restore brings it back
  const file = w.facts.tpm!.stateFile;
  if (existsSync(file)) writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from('spoilt')]));
}

async function refused(w: ShapeWorld, code: number): Promise<string> {
  const before = await snapshotOfVm(w);
  const leaf = await addLeaf(w);
  const started = Date.now();
  const got = await (await startBackup(w, { leafDn: leaf.dn })).result().then(
    () => 0,
    (e) => (e instanceof WorkflowFailedError ? codeOf(e) : -1),
  );
  assert.equal(got, code, 'refused with its code');
  assert.equal((await readLeaf(w, leaf.dn)).returnValue, String(code), 'the code is on the leaf');
  const after = await snapshotOfVm(w);
  assert.deepEqual(after, before, 'nothing changed: state, persistence, definition, chains');
  for (const d of w.disks) assert.equal(existsSync(overlayPath(d.path, leaf.ou)), false, 'no overlay made');
  assert.equal(existsSync(join(w.paths.retainRoot)) ? readdirSync(w.paths.retainRoot).length : 0, 0, 'nothing in retain');
  if (w.facts.foreignJob) assert.ok(await w.virsh.blockJob(w.vm, w.facts.foreignJob.target), "the other tool's block job still runs");
  return `refused ${code} after ${Date.now() - started} ms`;
}

const matrix = [
  ...SHAPES.filter((s) => rows.includes(s.name)).map((spec) => ({ spec, repository: false })),
  ...SHAPES.filter((s) => repositoryRows.includes(s.name) && s.expect.backup === 'supported').map((spec) => ({ spec, repository: true })),
];

for (const { spec, repository } of matrix) {
  const row = repository ? `${spec.name} (restic repository)` : spec.name;
  test(`shape ${row}: ${spec.expect.backup === 'supported' ? 'backed up and restored exactly' : `refused with ${spec.expect.code}`}`, async (t) => {
    const unavailable = await spec.unavailable?.();
    if (unavailable) {
      results.push(`| ${row} | skipped | ${unavailable} |`);
      t.skip(unavailable);
      return;
    }
    const started = Date.now();
    const restic = repository ? resticIni(testDir(`${spec.name}-restic`)) : undefined;
    const w = await spec.build(restic ? { label: `${spec.name}-repo`, backupIni: restic.ini } : {});
    const workers = await w.startWorkers();
    try {
      const repo = restic ? await useRepository(w, `restic://${join(w.dir, 'repository')}`) : undefined;
      const notes = spec.expect.backup === 'supported' ? await supported(spec, w, spec.expect.keeps, repo) : await refused(w, spec.expect.code);
      results.push(`| ${row} | ${spec.expect.backup === 'supported' ? 'supported' : `refused (${spec.expect.code})`} | pass, ${((Date.now() - started) / 1000).toFixed(1)} s: ${notes} |`);
    } catch (e) {
      results.push(`| ${row} | ${spec.expect.backup} | FAIL: ${(e as Error).message.split('\n')[0]} |`);
      throw e;
    } finally {
      await workers.shutdown();
      await w.close();
    }
  });
}
