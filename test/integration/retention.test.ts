/**
 * Retention beyond keep-last on the real stack, without a VM (libvirt is not touched): the policy
 * comes from slapd (sstBackupNumberOfIterations and sstBackupKeepDaily/-Weekly/-Monthly on the
 * pool's `ou=backup`, VM → pool → cloud as every setting) and `config show` says so; the one-go
 * rotation of the plain layout (`rotateIterations` with the real Files adapter, then `deleteLeaves`,
 * then `purgeDeletedIterations`: the three calls of the backup workflow's crash-safe rotate phase) over iteration directories stamped across
 * five ISO weeks; the scheduler's retention (`finishedLeavesBeyond` → `deleteWorkflow` children →
 * leaf removal, run by `retentionWorkflow` on the real control and node workers) over leaves
 * stamped across four weeks. Expected survivors are written out from the rules, not computed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createControlActivities } from '../../activities/control/index.js';
import { createNodeActivities } from '../../activities/node/index.js';
import { StoneyDirectory } from '../../adapters/ldap/stoney-directory.js';
import { planBackup, type BackupPlan } from '../../core/backup-plan.js';
import { Code } from '../../core/exit-codes.js';
import { suffixedIterationFiles } from '../../core/layout.js';
import { leafDn, leafTimestamp, poolBackupConfigDn } from '../../core/naming.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { nodeDeps } from '../../workers/node-worker.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { retentionWorkflow } from '../../workflows/index.js';
import { cli } from '../helpers/cli.js';
import { uniqueName } from '../helpers/names.js';
import { addVmEntry, createLeaf, leafState } from '../helpers/watcher.js';
import { addDiskEntry, createWorld, type World } from '../helpers/world.js';

let w: World;
let workers: RunningWorkers;
let directory: StoneyDirectory;

before(async () => {
  w = await createWorld({ label: 'ret', noVm: true });
  workers = await w.startWorkers();
  directory = StoneyDirectory.fromConfig(w.config.database);
});

after(async () => {
  await workers?.shutdown();
  await w?.close();
});

const DAY = 86_400_000;
const MONDAY = Date.UTC(2025, 10, 10); // Monday 2025-11-10, ISO week 2025-W46
const POOL_CONFIG = () => poolBackupConfigDn(DEMO_SERVICE_SUBTREE, w.pool);

/** `perDay` iterations a day (at `hours` UTC) on days `from`…`to` after MONDAY, oldest first. */
function stamps(from: number, to: number, hours: number[]): string[] {
  const out: string[] = [];
  for (let d = from; d <= to; d++) for (const h of hours) out.push(leafTimestamp(new Date(MONDAY + d * DAY + h * 3_600_000)));
  return out;
}

/** A further VM in the world's pool on the world's node, with one disk entry (no domain). */
async function newVm(): Promise<string> {
  const vm = uniqueName('ret-vm');
  const dn = await addVmEntry(w, vm, w.node);
  await w.directory.add(`ou=devices,${dn}`, { objectClass: ['top', 'organizationalUnit'], ou: 'devices' });
  await addDiskEntry(w.directory, vm, 'vda', join(w.paths.virtualizationRoot, 'vm-persistent', w.pool, `${vm}-vda.disk.qcow2`));
  return vm;
}

/** The plan a backup of `vm` at `ou` makes, from the directory as it is now. */
async function planOf(vm: string, ou: string): Promise<BackupPlan> {
  return planBackup(await directory.loadBackupContext(leafDn(DEMO_SERVICE_SUBTREE, vm, ou)), {
    virtualizationRoot: w.paths.virtualizationRoot,
    method: 'live',
  });
}

/** A finished leaf (processed), as a finished backup leaves it. */
async function finishedLeaf(vm: string, ou: string): Promise<string> {
  return createLeaf(w, ou, 'finished', vm);
}

type Kind = 'manifest' | 'original' | 'unfinished';

/** An iteration directory in the plain layout: finished by its manifest, the original's by state + XML, or half written. */
function iterationDir(plan: BackupPlan, ou: string, kind: Kind): string {
  const dir = join(plan.backupVmDir, ou);
  mkdirSync(dir, { recursive: true });
  const names = suffixedIterationFiles(plan.vm, ou);
  writeFileSync(join(dir, `${plan.vm}-vda.disk.qcow2.${ou}`), `image of ${ou}`);
  if (kind === 'manifest') writeFileSync(join(dir, names.manifest), `0000  ${plan.vm}-vda.disk.qcow2.${ou}\n`);
  if (kind === 'original') {
    writeFileSync(join(dir, names.state), 'state');
    writeFileSync(join(dir, names.xml), '<domain/>');
  }
  return dir;
}

/** What the backup workflow's rotate phase does (workflows/backup.ts): the node marks, the control removes the leaves, the node purges. */
async function rotate(plan: BackupPlan): Promise<{ kept: string[]; deleted: string[]; unfinished: string[]; leavesRemoved: string[] }> {
  const node = createNodeActivities(nodeDeps({
    environment: w.node,
    virtualizationRoot: w.paths.virtualizationRoot,
    defaultMethod: 'live',
    copyRateMiB: 0,
    liveMaxDowntimeMs: 300,
  }));
  const control = createControlActivities({ directory });
  const rotation = await node.rotateIterations(plan, plan.retention ?? plan.iterations);
  const leavesRemoved = await control.deleteLeaves(plan.vm, rotation.deleted);
  const { purged } = await node.purgeDeletedIterations(plan);
  assert.deepEqual(purged, rotation.deleted, 'every iteration marked is purged');
  return { ...rotation, leavesRemoved };
}

const survivingDirs = (plan: BackupPlan) => readdirSync(plan.backupVmDir).sort();
async function finishedLeavesOf(vm: string): Promise<string[]> {
  return (await directory.leavesOf(vm)).filter((l) => l.mode === 'finished').map((l) => l.ou);
}

test('config show: the retention attributes with their level (seed default while absent)', async () => {
  const before = await cli(w, ['config', 'show', w.vm]);
  assert.equal(before.exitCode, 0, before.stderr);
  assert.match(before.stdout, /^iterations\tsstBackupNumberOfIterations\t2\tpool \(ou=backup,sstVirtualMachinePool=/m);
  for (const [key, attribute] of [['keepDaily', 'sstBackupKeepDaily'], ['keepWeekly', 'sstBackupKeepWeekly'], ['keepMonthly', 'sstBackupKeepMonthly']]) {
    assert.match(before.stdout, new RegExp(`^${key}\\t${attribute}\\t0\\tseed default$`, 'm'));
  }

  await w.directory.modify(POOL_CONFIG(), { sstBackupKeepDaily: '3', sstBackupKeepWeekly: '2' });
  try {
    const after = await cli(w, ['config', 'show', w.vm]);
    assert.equal(after.exitCode, 0, after.stderr);
    assert.match(after.stdout, /^keepDaily\tsstBackupKeepDaily\t3\tpool \(ou=backup,sstVirtualMachinePool=/m);
    assert.match(after.stdout, /^keepWeekly\tsstBackupKeepWeekly\t2\tpool \(ou=backup,sstVirtualMachinePool=/m);
    assert.match(after.stdout, /^keepMonthly\tsstBackupKeepMonthly\t0\tseed default$/m);
    const json = JSON.parse((await cli(w, ['config', 'show', w.vm, '--json'])).stdout) as { level: string; values: Array<{ key: string; value: string; source: string }> };
    assert.equal(json.level, 'pool');
    assert.deepEqual(json.values.find((v) => v.key === 'keepWeekly'), {
      key: 'keepWeekly', attribute: 'sstBackupKeepWeekly', value: '2', source: `pool (${POOL_CONFIG()})`,
    });

    // a value that is not a count: 39, naming the attribute (slapd's integer syntax lets "-1" through)
    await w.directory.modify(POOL_CONFIG(), { sstBackupKeepMonthly: '-1' });
    const bad = await cli(w, ['config', 'show', w.vm]);
    assert.equal(bad.exitCode, Code.UNSUPPORTED_CONFIGURATION_PARAMETER, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /sstBackupKeepMonthly: "-1"/);
  } finally {
    await w.directory.modify(POOL_CONFIG(), { sstBackupKeepDaily: [], sstBackupKeepWeekly: [], sstBackupKeepMonthly: [] });
  }
});

test('one-go rotation, plain layout, no calendar attributes: the newest sstBackupNumberOfIterations (2), as before', async () => {
  const vm = await newVm();
  const ous = stamps(0, 13, [6, 18]); // two a day for two weeks
  const current = ous.at(-1)!;
  const plan = await planOf(vm, current);
  assert.deepEqual(plan.retention, { last: 2, daily: 0, weekly: 0, monthly: 0 });
  for (const ou of ous) {
    iterationDir(plan, ou, 'manifest');
    await finishedLeaf(vm, ou);
  }
  const r = await rotate(plan);
  assert.deepEqual(r.kept, ['20251123T180000Z', '20251123T060000Z']);
  assert.deepEqual(r.deleted, ous.slice(0, -2), 'all older ones, oldest first');
  assert.deepEqual(survivingDirs(plan), ['20251123T060000Z', '20251123T180000Z']);
  assert.deepEqual(await finishedLeavesOf(vm), ['20251123T060000Z', '20251123T180000Z']);
});

test('one-go rotation, plain layout: keep-last 2, daily 3, weekly 2, monthly 3 over five ISO weeks', async () => {
  const vm = await newVm();
  await w.directory.modify(POOL_CONFIG(), { sstBackupKeepDaily: '3', sstBackupKeepWeekly: '2', sstBackupKeepMonthly: '3' });
  try {
    // two a day, Monday 10 Nov (2025-W46) to Sunday 14 Dec (W50); the current backup is the last
    const ous = stamps(0, 34, [6, 18]);
    const current = ous.at(-1)!;
    assert.equal(current, '20251214T180000Z');
    const plan = await planOf(vm, current);
    assert.deepEqual(plan.retention, { last: 2, daily: 3, weekly: 2, monthly: 3 });
    for (const ou of ous) {
      iterationDir(plan, ou, 'manifest');
      await finishedLeaf(vm, ou);
    }
    // October: one iteration of the original daemon (state + XML, no manifest), finished, no leaf
    iterationDir(plan, '20251031T220000Z', 'original');
    // half written (no manifest): never counted, never deleted; and a directory that is no iteration
    iterationDir(plan, '20251120T120000Z', 'unfinished');
    mkdirSync(join(plan.backupVmDir, 'lost+found'));

    const r = await rotate(plan);
    const kept = [
      '20251214T180000Z', // last, daily, weekly (W50), monthly (December)
      '20251214T060000Z', // last
      '20251213T180000Z', // daily
      '20251212T180000Z', // daily
      '20251207T180000Z', // weekly (W49)
      '20251130T180000Z', // monthly (November)
      '20251031T220000Z', // monthly (October), the original's
    ];
    assert.deepEqual(r.kept, kept);
    assert.deepEqual(r.unfinished, ['20251120T120000Z']);
    assert.equal(r.deleted.length, 70 - 6);
    assert.equal(r.deleted[0], '20251110T060000Z', 'oldest first');
    assert.ok(r.deleted.includes('20251213T060000Z') && r.deleted.includes('20251212T060000Z'), 'a day kept by keep-daily keeps only its newest');
    assert.deepEqual(survivingDirs(plan), [...kept, '20251120T120000Z', 'lost+found'].sort());
    assert.deepEqual(await finishedLeavesOf(vm), kept.filter((ou) => ou !== '20251031T220000Z').sort());
    assert.equal(r.leavesRemoved.length, 64);

    // the next backup, Monday 15 Dec, begins W51: the daily three are 15, 14, 13 Dec, the weekly two
    // W51 and W50, so 12 Dec and W49's Sunday go, and 14 Dec 06:00 is no longer among the last two
    const next = '20251215T180000Z';
    iterationDir(plan, next, 'manifest');
    await finishedLeaf(vm, next);
    const again = await rotate(await planOf(vm, next));
    assert.deepEqual(again.deleted, ['20251207T180000Z', '20251212T180000Z', '20251214T060000Z']);
    assert.deepEqual(again.kept, ['20251215T180000Z', '20251214T180000Z', '20251213T180000Z', '20251130T180000Z', '20251031T220000Z']);
  } finally {
    await w.directory.modify(POOL_CONFIG(), { sstBackupKeepDaily: [], sstBackupKeepWeekly: [], sstBackupKeepMonthly: [] });
  }
});

test('scheduler retention: finished leaves across four weeks, the policy from slapd, each deletion a delete workflow', { timeout: 180_000 }, async () => {
  const vm = await newVm();
  await w.directory.modify(POOL_CONFIG(), { sstBackupKeepDaily: '3', sstBackupKeepWeekly: '2', sstBackupKeepMonthly: '3' });
  try {
    // one a day, Monday 17 Nov (W47) to Sunday 14 Dec (W50), and 31 Oct
    const ous = ['20251031T120000Z', ...stamps(7, 34, [18])];
    const plan = await planOf(vm, ous.at(-1)!);
    const dns = new Map<string, string>();
    for (const ou of ous) {
      iterationDir(plan, ou, 'manifest');
      dns.set(ou, await finishedLeaf(vm, ou));
    }
    // a leaf in another mode is neither counted nor deleted
    const failedOu = '20251101T000000Z';
    const failedLeaf = await createLeaf(w, failedOu, 'snapshotting', vm);
    iterationDir(plan, failedOu, 'unfinished');

    const outcome = await w.client.workflow.execute(retentionWorkflow, {
      taskQueue: w.controlQueue,
      workflowId: `test-retention/${vm}`,
      args: [{ vm }],
    });
    assert.deepEqual(outcome.retention, { last: 2, daily: 3, weekly: 2, monthly: 3 });
    const kept = [
      '20251031T120000Z', // monthly (October)
      '20251130T180000Z', // monthly (November)
      '20251207T180000Z', // weekly (W49)
      '20251212T180000Z', // daily
      '20251213T180000Z', // last, daily
      '20251214T180000Z', // last, daily, weekly (W50), monthly (December)
    ];
    const forgotten = ous.filter((ou) => !kept.includes(ou));
    assert.equal(forgotten.length, 23);
    assert.deepEqual(outcome.failed, []);
    assert.deepEqual(outcome.removed, forgotten.map((ou) => dns.get(ou)), 'every forgotten leaf removed, oldest first');
    for (const ou of forgotten) assert.equal(existsSync(join(plan.backupVmDir, ou)), false, `${ou} deleted from disk`);
    assert.deepEqual(survivingDirs(plan), [...kept, failedOu].sort());
    assert.deepEqual(await finishedLeavesOf(vm), kept);
    assert.equal((await leafState(w, failedLeaf))?.mode, 'snapshotting');
    // each deletion ran as the `delete` step under its leaf's workflow ID
    const del = await w.client.workflow.getHandle(`delete/${vm}/${forgotten[0]}`).describe();
    assert.equal(del.status.name, 'COMPLETED');

    // a second run finds nothing more to do
    const again = await w.client.workflow.execute(retentionWorkflow, {
      taskQueue: w.controlQueue,
      workflowId: `test-retention/${vm}/again`,
      args: [{ vm, retention: { last: 2, daily: 3, weekly: 2, monthly: 3 } }],
    });
    assert.deepEqual(again.removed, []);
  } finally {
    await w.directory.modify(POOL_CONFIG(), { sstBackupKeepDaily: [], sstBackupKeepWeekly: [], sstBackupKeepMonthly: [] });
  }
});

test('scheduler retention of a VM not in the directory fails with 23 before deleting anything', async () => {
  const err = await w.client.workflow
    .execute(retentionWorkflow, { taskQueue: w.controlQueue, workflowId: `test-retention/none-${uniqueName('x')}`, args: [{ vm: 'no-such-vm' }] })
    .then(() => undefined, (e: unknown) => e);
  assert.ok(err, 'the run failed');
  const { codeOf } = await import('../../core/failures.js');
  assert.equal(codeOf(err), Code.CANNOT_FIND_MACHINE);
});
