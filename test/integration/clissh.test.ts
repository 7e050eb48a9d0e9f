/**
 * [Service] TRANSPORTAPI = CLISSH against a real OpenSSH server on 127.0.0.1 (test/helpers/sshd.ts:
 * generated host and client keys, a forced command that logs every command before running it). The
 * node worker drives the hypervisor only over SSH: a backup and a restore of the tiny VM go through,
 * every command of them appears in the forced command's log, sshd logs the accepted key. A connection
 * cut while a copy runs is retried and the copy resumes where it was; an unreachable host and a
 * refused key fail with their documented codes (docs/exit-codes.md, "The SSH gateway") and leave the
 * VM as it was; so does a restic repository as backup root (39: restic runs on the worker's host).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { sshRun } from '../../adapters/host/ssh.js';
import { Code } from '../../core/exit-codes.js';
import { codeOf, messageOf } from '../../core/failures.js';
import { overlayPath, parseManifest, suffixedIterationFiles } from '../../core/layout.js';
import { poolBackupConfigDn } from '../../core/naming.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { sha256OfFile } from '../../adapters/host/hashing.js';
import { freePort } from '../../stack/daemon.js';
import { startWorkers, type RunningWorkers } from '../../workers/run-workers.js';
import { addLeaf, backupDirOf, readLeaf, startBackup, startRestore, waitForPhase } from '../helpers/backup.js';
import { GuestData } from '../helpers/guest-data.js';
import { testDir } from '../helpers/names.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

let sshd: Sshd;
let w: World;
let nodeWorker: RunningWorkers | undefined;
const data = () => new GuestData(w);
/**
 * Each command over SSH costs a connection (a few hundred ms on a loaded test machine), and a step
 * heartbeats only once its long part starts: the default 1 minute, not the tests' usual 5 s.
 */
const HEARTBEAT = '1 minute';
/** A dd of the copier, as the forced command logs it (each `key=value` operand single-quoted). */
const DD = / dd '?if=/;

async function setup(): Promise<void> {
  if (w) return;
  sshd = await startSshd(join(testDir('sshd'), 'sshd'), { access: 'commands' });
  cleanups.push(() => sshd.stop());
  w = await createWorld({
    label: 'clissh',
    // pieces of 16 MiB per dd: a copy takes a few of them
    backupIni: { COPY_BANDWIDTH: '8' },
    extraIni: {
      Service: { TRANSPORTAPI: 'CLISSH' },
      Gateway: { HOST: sshd.host, PORT: String(sshd.port), USER: 'root', DSA_FILE: sshd.keys.ed25519, KNOWN_HOSTS: sshd.knownHosts },
    },
  });
  const control = await w.startWorkers({ node: false });
  cleanups.push(async () => {
    await nodeWorker?.shutdown();
    await control.shutdown();
    await w.close();
  });
}

/** A node worker of the world's node with its gateway settings changed (another key, another port). */
async function nodeWorkerWith(gateway: Partial<World['config']['gateway']> = {}): Promise<void> {
  await nodeWorker?.shutdown();
  nodeWorker = await startWorkers({ ...w.config, gateway: { ...w.config.gateway, ...gateway } }, { node: true, control: false });
}

/** The forced command's log lines since `from`. */
function commandsSince(from: number): string[] {
  return sshd.commands().slice(from);
}

test('CLISSH: a backup and a restore of the tiny VM, every command over SSH', async () => {
  await setup();
  await nodeWorkerWith();
  const d = data();
  await d.write('backed-up', 0xa1, '0', '2M');
  const before = sshd.commands().length;
  const leaf = await addLeaf(w);
  const outcome = await (await startBackup(w, { leafDn: leaf.dn, snapshotMethod: 'live', heartbeatTimeout: HEARTBEAT })).result();
  assert.equal((await readLeaf(w, leaf.dn)).returnValue, '0');
  assert.equal(outcome.method, 'live');
  const image = w.disks[0]!.path;
  const backupImage = join(backupDirOf(w, leaf.ou), `${w.vm}-vda.disk.qcow2.${leaf.ou}`);
  await d.assertImage(backupImage, 'vda', ['backed-up'], 'backup image');
  assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((x) => x.source), [image]);
  assert.equal(existsSync(overlayPath(image, leaf.ou)), false);

  const backupCommands = commandsSince(before);
  for (const line of backupCommands) assert.match(line, /^exec setpriv --pdeathsig KILL -- /, 'every command runs under setpriv on the host');
  const ran = (pattern: RegExp, what: string) => assert.ok(backupCommands.some((l) => pattern.test(l)), `${what} went through SSH`);
  ran(/ virsh -q -c qemu:\/\/\/system dumpxml /, 'virsh dumpxml');
  ran(/ virsh -q -c qemu:\/\/\/system snapshot-create-as /, 'the snapshot');
  ran(/ virsh -c qemu:\/\/\/system qemu-monitor-event /, 'the guest pause watcher');
  ran(/ virsh -q -c qemu:\/\/\/system blockcommit /, 'the block commit');
  ran(/ qemu-img info /, 'qemu-img');
  ran(/ ionice -c 3 dd '?if=/, 'the image copy (dd)');
  ran(/ ionice -c 3 sha256sum -b /, 'the hash beside the copy');
  ran(/ chown -- /, 'ownership');
  ran(/ sh -c .*cat > "\$1".* kvm-backup-write /, 'small files written');
  ran(/ mv -f -T -- /, 'the export by rename');
  ran(/ rm -rf -- /, 'the retain directory removed');
  assert.match(sshd.log(), /Accepted publickey for root from 127\.0\.0\.1 port \d+ ssh2: ED25519 /);
  console.log(`CLISSH backup: ${backupCommands.length} commands over SSH; e.g. ${backupCommands.find((l) => / snapshot-create-as /.test(l))}`);

  await d.write('later', 0xb2, '4M', '1M');
  const mark = sshd.commands().length;
  const restored = await (await startRestore(w, { leafDn: leaf.dn, confirmed: true, heartbeatTimeout: HEARTBEAT })).result();
  assert.equal(restored.result?.how, 'restored');
  assert.equal(restored.verified, 'sha256');
  assert.deepEqual(await w.virsh.state(w.vm), { state: 'running', reason: 'restored' });
  await d.assertImage(image, 'vda', ['backed-up'], 'restored image');
  const restoreCommands = commandsSince(mark);
  assert.ok(restoreCommands.some((l) => / virsh -q -c qemu:\/\/\/system restore /.test(l)), 'virsh restore went through SSH');
  assert.ok(restoreCommands.some((l) => / qemu-img check /.test(l)), 'qemu-img check went through SSH');
  console.log(`CLISSH restore: ${restoreCommands.length} commands over SSH`);
});

test('CLISSH: the connection cut while a copy runs; the step is retried and the copy resumes', async () => {
  await setup();
  await nodeWorkerWith();
  const d = data();
  await d.write('bulk', 0x20, '8M', '40M');
  await d.write('mark', 0xc3, '0', '1M');
  sshd.holdAfterDd(3);
  const from = sshd.commands().length;
  const leaf = await addLeaf(w);
  const handle = await startBackup(w, { leafDn: leaf.dn, snapshotMethod: 'live', heartbeatTimeout: HEARTBEAT });
  await waitForPhase(handle, 'copy to retain');
  // a test that fails here must not leave its backup running into the next one
  await cutAndResume(handle, from, leaf, d).catch(async (e: unknown) => {
    await handle.terminate('test failed').catch(() => undefined);
    throw e;
  });
});

/** Cuts the connection of the second piece of the image copy while it holds, then checks the resumed backup. */
async function cutAndResume(handle: Awaited<ReturnType<typeof startBackup>>, from: number, leaf: { dn: string; ou: string }, d: GuestData): Promise<void> {
  const imageName = `${w.vm}-vda.disk.qcow2`;
  let cut: number[] = [];
  for (const deadline = Date.now() + 180_000; Date.now() < deadline && cut.length === 0; ) {
    const pieces = commandsSince(from).filter((l) => DD.test(l) && l.includes(imageName));
    if (pieces.length >= 2) cut = sshd.connectionsRunning('hold-after-dd');
    if (cut.length === 0) await sleep(50);
  }
  assert.ok(cut.length > 0, 'a dd of the image ran over a connection of its own');
  for (const pid of cut) process.kill(pid, 'SIGKILL');
  const outcome = await handle.result();
  sshd.holdAfterDd(0);
  assert.equal((await readLeaf(w, leaf.dn)).returnValue, '0');
  const pieces = commandsSince(from)
    .filter((l) => DD.test(l) && l.includes(`/retain/`) && l.includes(imageName))
    .map((l) => Number(/ '?skip=(\d+)'? /.exec(l)?.[1]));
  // 0, 16 MiB, … : after the cut the copy went on from where it was, never from 0 again
  assert.equal(pieces.filter((s) => s === 0).length, 1, `one piece from offset 0: ${pieces.join(', ')}`);
  assert.ok(outcome.resumedBytes > 0, `resumed ${outcome.resumedBytes} bytes`);
  const backupImage = join(backupDirOf(w, leaf.ou), `${imageName}.${leaf.ou}`);
  await d.assertImage(backupImage, 'vda', ['bulk', 'mark', ...d.writes.filter((x) => !['bulk', 'mark'].includes(x.label)).map((x) => x.label)], 'backup image');
  // every file against the manifest: nothing lost, nothing torn
  const dir = backupDirOf(w, leaf.ou);
  const manifest = parseManifest(readFileSync(join(dir, suffixedIterationFiles(w.vm, leaf.ou).manifest), 'utf8'));
  assert.ok(manifest.size >= 5);
  for (const [name, hash] of manifest) assert.equal(await sha256OfFile(join(dir, name)), hash, name);
  console.log(`CLISSH lost connection: killed sshd ${cut.join(' ')}; image pieces at ${pieces.map((p) => `${p / 2 ** 20} MiB`).join(', ')}; resumed ${outcome.resumedBytes} bytes`);
}

test('CLISSH: an unreachable host fails with 1 after its retries, a refused key with 39 at once; the VM is untouched', async () => {
  await setup();
  const image = w.disks[0]!.path;
  const expectFailure = async (code: number, what: string) => {
    const leaf = await addLeaf(w);
    const started = Date.now();
    const handle = await startBackup(w, { leafDn: leaf.dn, attempts: 3, heartbeatTimeout: HEARTBEAT });
    const error = await handle.result().then(
      () => assert.fail(`${what}: the backup should have failed`),
      (e: unknown) => e,
    );
    assert.ok(error instanceof WorkflowFailedError);
    assert.equal(codeOf(error), code, `${what}: ${messageOf(error)}`);
    assert.equal((await readLeaf(w, leaf.dn)).returnValue, String(code));
    assert.equal((await w.virsh.state(w.vm)).state, 'running');
    assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((x) => x.source), [image]);
    assert.equal(existsSync(overlayPath(image, leaf.ou)), false);
    const history = await handle.fetchHistory();
    const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
    return { message: messageOf(error), attempts, ms: Date.now() - started };
  };
  await nodeWorkerWith({ port: await freePort() });
  const unreachable = await expectFailure(Code.UNDEFINED_ERROR, 'unreachable host');
  assert.match(unreachable.message, /SSH gateway root@127\.0\.0\.1:\d+: unreachable \(ssh: connect to host 127\.0\.0\.1 port \d+: Connection refused\)/);
  assert.ok(unreachable.attempts.includes(3), `retried: attempts ${unreachable.attempts.join(', ')}`);

  const failedBefore = (sshd.log().match(/Failed publickey/g) ?? []).length;
  await nodeWorkerWith({ dsaFile: sshd.keys.unauthorized });
  const refused = await expectFailure(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, 'refused key');
  assert.match(refused.message, /SSH gateway root@127\.0\.0\.1:\d+: the key was refused \(root@127\.0\.0\.1: Permission denied \(publickey\)\.\)/);
  assert.equal(Math.max(...refused.attempts), 1, 'a refused key is not retried');
  assert.ok((sshd.log().match(/Failed publickey/g) ?? []).length > failedBefore, 'sshd refused the key');

  // any key type OpenSSH reads: an authorized RSA key works as the ed25519 one did
  const rsa = sshRun({ host: sshd.host, port: sshd.port, user: 'root', identityFile: sshd.keys.rsa, knownHostsFile: sshd.knownHosts });
  assert.equal((await rsa('virsh', ['-q', '-c', 'qemu:///system', 'domstate', w.vm])).stdout.trim(), 'running');
  assert.match(sshd.log(), /Accepted publickey for root from 127\.0\.0\.1 port \d+ ssh2: RSA /);
  console.log(`CLISSH failures: unreachable → 1 after attempts ${unreachable.attempts.join(',')} (${unreachable.ms} ms); refused key → 39 after attempt 1 (${refused.ms} ms)`);
});

test('CLISSH: a restic repository as backup root is refused with 39 in the preflight; nothing changes', async () => {
  await setup();
  await nodeWorkerWith();
  const image = w.disks[0]!.path;
  const setRoot = (uri: string) => w.directory.modify(poolBackupConfigDn(DEMO_SERVICE_SUBTREE, w.pool), { sstBackupRootDirectory: uri });
  await setRoot(`restic://${join(w.dir, 'repository')}`);
  try {
    const leaf = await addLeaf(w);
    const mark = sshd.commands().length;
    const error = await (await startBackup(w, { leafDn: leaf.dn, heartbeatTimeout: HEARTBEAT })).result().then(
      () => assert.fail('the backup should have been refused'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof WorkflowFailedError);
    assert.equal(codeOf(error), Code.UNSUPPORTED_CONFIGURATION_PARAMETER, messageOf(error));
    assert.match(messageOf(error), /needs \[Service\] TRANSPORTAPI = LocalCLI/);
    assert.equal((await readLeaf(w, leaf.dn)).returnValue, '39');
    assert.equal((await w.virsh.state(w.vm)).state, 'running');
    assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((x) => x.source), [image]);
    assert.equal(existsSync(overlayPath(image, leaf.ou)), false);
    assert.ok(!sshd.commands().slice(mark).some((l) => / snapshot-create-as /.test(l)), 'no snapshot was taken');
  } finally {
    await setRoot(`file://${w.paths.backupRoot}`);
  }
});

test('CLISSH: a command on the host ends with its connection, cut there or cancelled here (setpriv --pdeathsig on the host)', async () => {
  await setup();
  const run = sshRun({ host: sshd.host, port: sshd.port, user: 'root', identityFile: sshd.keys.ed25519, knownHostsFile: sshd.knownHosts });
  const marker = `${30 + Math.floor(Math.random() * 1000) / 1000}`;
  const running = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p) && procArgs(p) === `sleep ${marker}`);
  const connected = async () => {
    for (let i = 0; i < 100; i++) {
      if (running().length) return;
      await sleep(100);
    }
    assert.fail('the command never started on the host');
  };
  // the connection cut on the host's side
  const cutRun = run('sleep', [marker]).then(() => assert.fail('should fail'), (e: Error) => e);
  await connected();
  for (const pid of sshd.connectionsRunning(`sleep ${marker}`)) process.kill(pid, 'SIGKILL');
  assert.match((await cutRun).message, /SSH gateway root@127\.0\.0\.1:\d+: connection lost/);
  await sleep(500);
  assert.deepEqual(running(), [], 'the command died with its connection');
  // the worker's side cancelled (as a cancelled activity or a dead worker kills its ssh)
  const cancel = new AbortController();
  const cancelled = run('sleep', [marker], { signal: cancel.signal }).catch((e: unknown) => e);
  await connected();
  cancel.abort(new Error('cancelled'));
  await cancelled;
  await sleep(1_000);
  assert.deepEqual(running(), [], 'the command died with the ssh client');
});

function procArgs(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}
