/**
 * `kvm-backup restore` against the real stack, as an operator runs it: the latest backup by default,
 * a chosen one with --backup, without the RAM state on request; clear errors and exit codes for an
 * unknown VM, an unknown backup, a malformed backup name and a missing confirmation.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Code } from '../../core/exit-codes.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { backupNow } from '../helpers/backup.js';
import { cli } from '../helpers/cli.js';
import { GuestData } from '../helpers/guest-data.js';
import { createWorld, type World } from '../helpers/world.js';

let w: World;
let workers: RunningWorkers;
let data: GuestData;
let first: { ou: string };

before(async () => {
  w = await createWorld({ label: 'cli-restore' });
  workers = await w.startWorkers();
  data = new GuestData(w);
  await data.write('first', 0x11, '0', '1M');
  first = await backupNow(w);
  await data.write('second', 0x22, '1M', '1M');
  await backupNow(w);
  await data.write('later', 0x33, '2M', '1M');
});

after(async () => {
  await workers?.shutdown();
  await w?.close();
});

test('restore <vm> --yes: the latest backup, with its RAM state', async () => {
  const r = await cli(w, ['restore', w.vm, '--yes']);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`restored ${w.vm} from \\d{8}T\\d{6}Z: running \\(restored\\), with its RAM state`));
  assert.match(r.stdout, /verified: every file against the sha256 manifest/);
  await data.assertImage(w.disks[0]!.path, 'vda', ['first', 'second'], 'restored from the latest backup');
});

test('restore <vm> --backup OU --without-state --json: the chosen backup, cold boot', async () => {
  const r = await cli(w, ['restore', w.vm, '--backup', first.ou, '--without-state', '--yes', '--json']);
  assert.equal(r.exitCode, 0, r.stderr);
  const outcome = JSON.parse(r.stdout) as { ou: string; result: { how: string; reason: string } };
  assert.equal(outcome.ou, first.ou);
  assert.equal(outcome.result.how, 'started');
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'booted' });
  await data.assertImage(w.disks[0]!.path, 'vda', ['first'], 'restored from the first backup');
});

test('bad arguments: unknown VM 23, unknown backup 37, malformed backup name 39, no confirmation, no VM', async () => {
  const unknownVm = await cli(w, ['restore', 'no-such-vm', '--yes']);
  assert.equal(unknownVm.exitCode, Code.CANNOT_FIND_MACHINE);
  assert.match(unknownVm.stderr, /no VM "no-such-vm" in the directory/);
  const unknownBackup = await cli(w, ['restore', w.vm, '--backup', '20000101T000000Z', '--yes']);
  assert.equal(unknownBackup.exitCode, Code.MISSING_NECESSARY_FILES);
  assert.match(unknownBackup.stderr, /has no backup 20000101T000000Z/);
  const malformed = await cli(w, ['restore', w.vm, '--backup', '../../etc', '--yes']);
  assert.equal(malformed.exitCode, Code.UNSUPPORTED_CONFIGURATION_PARAMETER);
  assert.match(malformed.stderr, /is not a backup name/);
  const unconfirmed = await cli(w, ['restore', w.vm], { input: '' });
  assert.notEqual(unconfirmed.exitCode, 0);
  assert.match(unconfirmed.stderr, /confirm with --yes/);
  const noVm = await cli(w, ['restore', '--yes']);
  assert.equal(noVm.exitCode, 2);
  assert.match(noVm.stderr, /expected exactly one <vm> argument/);
});
