/**
 * The operator's commands against the real stack, as they are run from a shell: config show,
 * doctor, backup, list, verify (sound and damaged), status; and their errors on bad arguments
 * (unknown VM, unknown backup, malformed backup name, wrong usage) with a clear message and a
 * non-zero exit code. `restore` has its own file (cli-restore.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Code } from '../../core/exit-codes.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { backupDirOf } from '../helpers/backup.js';
import { cli } from '../helpers/cli.js';
import { createWorld, type World } from '../helpers/world.js';

let w: World;
let workers: RunningWorkers;
let ou: string;

before(async () => {
  w = await createWorld({ label: 'cli' });
  workers = await w.startWorkers();
});

after(async () => {
  await workers?.shutdown();
  await w?.close();
});

test('config show <vm>: the pool configuration applies, each value with its source', async () => {
  const r = await cli(w, ['config', 'show', w.vm]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /the pool configuration applies/);
  assert.match(r.stdout, /iterations\tsstBackupNumberOfIterations\t2\tpool \(ou=backup,sstVirtualMachinePool=/);
  assert.match(r.stdout, /sequenceStop\tsstVirtualizationVirtualMachineSequenceStop\t\(none\)\tseed default/);
  const json = JSON.parse((await cli(w, ['config', 'show', w.vm, '--json'])).stdout) as { level: string; values: Array<{ key: string; value: string }> };
  assert.equal(json.level, 'pool');
  assert.equal(json.values.find((v) => v.key === 'imagePermission')?.value, '660');
});

test('doctor: one line per check; a missing backup root fails with 26, then all is well', async () => {
  const bad = await cli(w, ['doctor']);
  assert.equal(bad.exitCode, Code.BACKUP_ROOT_DIRECTORY_DOES_NOT_EXIST, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /^FAIL backup root: .* does not exist$/m);
  assert.match(bad.stdout, /^OK   libvirt: QEMU/m);
  assert.match(bad.stdout, /^OK   ldap: ldap:\/\/127\.0\.0\.1:\d+ as cn=Manager/m);
  assert.match(bad.stdout, /^OK   temporal: /m);
  assert.match(bad.stdout, /^OK   node worker: \d+ poller\(s\) on kvm-backup\.node\./m);
  mkdirSync(w.paths.backupRoot, { recursive: true });
  mkdirSync(w.paths.retainRoot, { recursive: true });
  const good = await cli(w, ['doctor', '--json']);
  assert.equal(good.exitCode, 0, good.stdout);
  const checks = JSON.parse(good.stdout) as Array<{ check: string; result: string }>;
  assert.ok(checks.every((c) => c.result !== 'fail'), good.stdout);
});

test('backup <vm>: runs every phase and reports method, pause, durations', async () => {
  const r = await cli(w, ['backup', w.vm]);
  assert.equal(r.exitCode, 0, r.stderr);
  const m = new RegExp(`backup (\\d{8}T\\d{6}Z) of ${w.vm} finished: live snapshot, guest paused \\d+ ms`).exec(r.stdout);
  assert.ok(m, r.stdout);
  ou = m[1]!;
  assert.match(r.stdout, /snapshot [\d.]+ s, merge [\d.]+ s, export [\d.]+ s; [\d.]+ MiB copied/);
});

test('list <vm>: the backup with state, size, manifest; verify marks it sound; a damaged file is 38', async () => {
  const listed = JSON.parse((await cli(w, ['list', w.vm, '--json'])).stdout) as Array<{ backup: string; mode: string; manifest: boolean; verified: string; bytes: number }>;
  const mine = listed.find((b) => b.backup === ou)!;
  assert.equal(mine.mode, 'finished');
  assert.equal(mine.manifest, true);
  assert.equal(mine.verified, 'not verified');
  assert.ok(mine.bytes > 0);

  const ok = await cli(w, ['verify', w.vm]);
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`backup ${ou} of ${w.vm} is sound: 5 files, .* every file matches the sha256 manifest`));
  assert.match((await cli(w, ['list', w.vm])).stdout, new RegExp(`${ou}\\tfinished\\t0\\t[\\d.]+ MiB\\tsha256\\tok `));

  const ldif = join(backupDirOf(w, ou), `${w.vm}.ldif.${ou}`);
  writeFileSync(ldif, readFileSync(ldif, 'utf8').replace('objectClass: top', 'objectClass: tip'));
  const damaged = await cli(w, ['verify', w.vm, '--backup', ou]);
  assert.equal(damaged.exitCode, Code.CORRUPT_DISK_IMAGE_FOUND, damaged.stdout + damaged.stderr);
  assert.match(damaged.stderr, /does not match its sha256 in the manifest/);
  assert.match((await cli(w, ['list', w.vm])).stdout, /FAILED \(38\)/);
});

test('status: the site\'s recent operations with their status and code', async () => {
  const r = await cli(w, ['status', '--json']);
  assert.equal(r.exitCode, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ workflowId: string; operation: string; status: string; code?: number; vm: string }>;
  const backup = rows.find((x) => x.workflowId === `backup/${w.vm}/${ou}`);
  assert.equal(backup?.status, 'COMPLETED');
  assert.equal(backup?.code, 0);
  assert.ok(rows.some((x) => x.operation === 'verify' && x.status === 'FAILED' && x.code === 38), JSON.stringify(rows));
  assert.match((await cli(w, ['status'])).stdout, /^STARTED\tOPERATION\tVM\tSTATUS/);
});

test('bad arguments: clear messages and non-zero exits', async () => {
  const cases: Array<[string[], number, RegExp]> = [
    [['backup', 'no-such-vm'], Code.CANNOT_FIND_MACHINE, /no VM "no-such-vm"/],
    [['verify', w.vm, '--backup', '20000101T000000Z'], Code.MISSING_NECESSARY_FILES, /has no backup 20000101T000000Z/],
    [['verify', w.vm, '--backup', 'yesterday'], Code.UNSUPPORTED_CONFIGURATION_PARAMETER, /"yesterday" is not a backup name/],
    [['backup', w.vm, '--method', 'fast'], Code.UNSUPPORTED_CONFIGURATION_PARAMETER, /--method must be one of live, classic/],
    [['config', 'show'], 2, /usage: kvm-backup config show <vm>/],
    [['status', '--limit', 'x'], 2, /--limit must be a positive integer/],
    [['list', 'a', 'b'], 2, /at most one <vm>/],
    [['list', '--bogus'], 2, /Unknown option '--bogus'/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
  ];
  for (const [args, code, message] of cases) {
    const r = await cli(w, args);
    assert.equal(r.exitCode, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  const missing = await cli(undefined, ['list', '--config', join(w.dir, 'nope.conf')]);
  assert.equal(missing.exitCode, Code.MISSING_PARAMETER_IN_CONFIG_FILE);
  assert.match(missing.stderr, /cannot read the configuration file/);
  const help = await cli(undefined, ['verify', '--help']);
  assert.equal(help.exitCode, 0);
  assert.match(help.stdout, /usage: kvm-backup verify <vm>|kvm-backup verify <vm>/);
});
