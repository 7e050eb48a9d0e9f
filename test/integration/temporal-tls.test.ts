/**
 * Temporal over mutual TLS for the worker, the watcher and the CLI, the same connection code for
 * all three (adapters/temporal/connection.ts). The pinned CLI's dev server has no TLS options, so
 * the test puts its own TLS-terminating proxy (test/helpers/tls-proxy.ts) with a CA and
 * certificates made by openssl in front of the shared dev server: only clients that trust the CA,
 * ask for the certificate's name and show a client certificate of that CA get through.
 *
 * The worker runs in a namespace of its own whose Int search-attribute slots are taken (SQLite
 * visibility has 3), so registering the product's attributes is refused, as Temporal Cloud refuses
 * it: the worker logs which to register and runs on. Settings come from the INI's [Temporal] keys,
 * from Temporal's TEMPORAL_TLS_* variables and from a temporal.toml profile. A wrong CA, or no
 * client certificate, fails clearly with exit 1 (docs/exit-codes.md).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { msToTs } from '@temporalio/common/lib/time.js';
import { SEARCH_ATTRIBUTE_TYPES } from '../../core/search-attributes.js';
import { makeTestPki } from '../helpers/certificates.js';
import { temporalTarget } from '../helpers/names.js';
import { startTlsProxy } from '../helpers/tls-proxy.js';
import { createWorld } from '../helpers/world.js';

const CLI = fileURLToPath(new URL('../../client/cli.js', import.meta.url));
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

interface Check {
  check: string;
  result: string;
  detail: string;
}

/** The children's environment: no TEMPORAL_* of the test run and no home with a temporal.toml. */
function childEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, KVM_BACKUP_SDK_LOG_LEVEL: 'ERROR', ...extra };
  for (const k of Object.keys(env)) if (k.startsWith('TEMPORAL_') && !(k in extra)) delete env[k];
  delete env['XDG_CONFIG_HOME'];
  delete env['KVM_BACKUP_LOG_LEVEL'];
  return env;
}

async function kvmBackup(args: string[], env: NodeJS.ProcessEnv) {
  const r = await execa(process.execPath, [CLI, ...args], { reject: false, timeout: 120_000, env, extendEnv: false });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A long-running `kvm-backup` (worker, watch), tracked for run-tests, with its output so far. */
function longRunning(args: string[], env: NodeJS.ProcessEnv) {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const pidDir = process.env['KVM_BACKUP_PID_DIR'];
  if (pidDir) {
    mkdirSync(pidDir, { recursive: true });
    writeFileSync(join(pidDir, String(child.pid)), String(child.pid));
  }
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    output: () => output,
    exited,
    async waitFor(text: string | RegExp, ms = 60_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!(typeof text === 'string' ? output.includes(text) : text.test(output))) {
        if (child.exitCode !== null) assert.fail(`kvm-backup ${args[0]} exited (${child.exitCode}) before "${text}": ${output}`);
        if (Date.now() > deadline) assert.fail(`no "${text}" from kvm-backup ${args[0]} within ${ms} ms: ${output}`);
        await sleep(50);
      }
    },
    async stop(): Promise<number | null> {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await exited;
      if (pidDir) rmSync(join(pidDir, String(child.pid)), { force: true });
      return code;
    },
  };
}

const checkOf = (stdout: string, name: string): Check | undefined => (JSON.parse(stdout) as Check[]).find((c) => c.check === name);

test('worker, watcher and CLI over mutual TLS; refused search attributes do not stop the worker; a wrong CA or no client certificate fails with 1', async () => {
  const w = await createWorld({ label: 'tls', noVm: true });
  cleanups.push(() => w.close());
  const pki = await makeTestPki(join(w.dir, 'pki'));
  const proxy = await startTlsProxy({ upstream: temporalTarget().address, cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca.cert });
  cleanups.push(() => proxy.close());
  const home = join(w.dir, 'home');
  mkdirSync(home, { recursive: true });

  // a namespace of its own whose Int slots are taken: the product's KvmExitCode and KvmGuestPauseMs cannot be added
  const namespace = `kvmb-tls-${randomBytes(3).toString('hex')}`;
  await w.client.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
  for (let i = 0; ; i++) {
    try {
      await w.client.connection.operatorService.addSearchAttributes({ namespace, searchAttributes: { OtherInt1: 3, OtherInt2: 3 } });
      break;
    } catch (e) {
      if (i > 60) throw e;
      await sleep(500); // the new namespace reaches the frontend's cache
    }
  }

  const base = readFileSync(w.configFile, 'utf8'); // ends in its [Temporal] section
  const writeConfig = (name: string, lines: string[]) => {
    const file = join(w.dir, name);
    writeFileSync(file, `${base}${lines.join('\n')}\n`);
    return file;
  };
  const mtls = writeConfig('tls.conf', [
    `ADDRESS = ${proxy.address}`,
    `NAMESPACE = ${namespace}`,
    `TLS_CA_FILE = ${pki.ca.cert}`,
    `TLS_CERT_FILE = ${pki.client.cert}`,
    `TLS_KEY_FILE = ${pki.client.key}`,
    `TLS_SERVER_NAME = ${pki.serverName}`,
  ]);
  const env = childEnv(home);

  // ---- the worker connects over mTLS, cannot register the attributes, says which, and runs on ----
  const worker = longRunning(['worker', '--config', mtls], env);
  cleanups.push(async () => void (await worker.stop()));
  await worker.waitFor('workers running');
  const lines = worker
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const warning = lines.find((l) => /^register these \d+ search attributes/.test(String(l['msg'])));
  assert.ok(warning, `the worker names the attributes to register: ${worker.output()}`);
  assert.equal(warning['level'], 'warn');
  const count = Object.keys(SEARCH_ATTRIBUTE_TYPES).length; // 10 since KvmWaitingFor
  assert.match(String(warning['msg']), new RegExp(`^register these ${count} search attributes .*KvmExitCode \\(Int\\).*KvmGuestPauseMs \\(Int\\)`));
  assert.match(String(warning['reason']), /cannot have more than 3 search attribute of type Int/);
  const connected = lines.find((l) => l['msg'] === 'connected to Temporal');
  assert.match(String(connected?.['temporal']), new RegExp(`^${proxy.address}, namespace ${namespace} \\(TLS, CA .*ca\\.pem, client certificate .*client\\.pem, server name ${pki.serverName}\\)`));

  // ---- the CLI over the same mTLS sees the worker's pollers ----------------------------------------
  const doctor = async (config: string, e: NodeJS.ProcessEnv) => {
    const r = await kvmBackup(['doctor', '--json', '--config', config], e);
    return { r, temporal: checkOf(r.stdout, 'temporal'), node: checkOf(r.stdout, 'node worker'), control: checkOf(r.stdout, 'control worker'), attributes: checkOf(r.stdout, 'search attributes') };
  };
  const d = await doctor(mtls, env);
  assert.equal(d.temporal?.result, 'ok', d.r.stdout + d.r.stderr);
  assert.match(d.temporal!.detail, /TLS, CA .*client certificate/);
  assert.equal(d.node?.result, 'ok', `the node worker polls over TLS: ${d.r.stdout}`);
  assert.equal(d.control?.result, 'ok', `the control worker polls over TLS: ${d.r.stdout}`);
  assert.equal(d.attributes?.result, 'warn');
  assert.match(d.attributes!.detail, /KvmExitCode \(Int\)/);

  // ---- the watcher over the same code path ---------------------------------------------------------
  const watcher = longRunning(['watch', '--no-scheduler', '--config', mtls], env);
  await watcher.waitFor('watcher started');
  assert.equal(await watcher.stop(), 0, watcher.output());

  // ---- the same server from Temporal's own variables, and from a temporal.toml profile -------------
  const plainIni = writeConfig('plain.conf', []);
  const byEnv = await doctor(
    plainIni,
    childEnv(home, {
      TEMPORAL_ADDRESS: proxy.address,
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca.cert,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.client.cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.client.key,
      TEMPORAL_TLS_SERVER_NAME: pki.serverName,
    }),
  );
  assert.equal(byEnv.temporal?.result, 'ok', byEnv.r.stdout + byEnv.r.stderr);
  assert.equal(byEnv.control?.result, 'ok', byEnv.r.stdout);
  const toml = join(w.dir, 'temporal.toml');
  writeFileSync(
    toml,
    [
      '[profile.site]',
      `address = "${proxy.address}"`,
      `namespace = "${namespace}"`,
      '[profile.site.tls]',
      `server_ca_cert_path = "${pki.ca.cert}"`,
      `client_cert_path = "${pki.client.cert}"`,
      `client_key_data = """\n${readFileSync(pki.client.key, 'utf8')}"""`,
      `server_name = "${pki.serverName}"`,
      '',
    ].join('\n'),
  );
  const byToml = await doctor(writeConfig('toml.conf', [`CONFIG_FILE = ${toml}`, 'PROFILE = site']), env);
  assert.equal(byToml.temporal?.result, 'ok', byToml.r.stdout + byToml.r.stderr);
  assert.match(byToml.temporal!.detail, /client certificate .*client\.pem/);
  assert.equal(byToml.node?.result, 'ok', byToml.r.stdout);
  assert.ok(proxy.accepted.length >= 5 && proxy.accepted.every((cn) => cn === pki.clientName), `every connection showed the client certificate: ${proxy.accepted.join(', ')}`);

  // ---- a CA that did not sign the server's certificate, or no client certificate: exit 1, clearly ----
  const wrongCa = writeConfig('wrong-ca.conf', [
    `ADDRESS = ${proxy.address}`,
    `NAMESPACE = ${namespace}`,
    `TLS_CA_FILE = ${pki.otherCa.cert}`,
    `TLS_CERT_FILE = ${pki.client.cert}`,
    `TLS_KEY_FILE = ${pki.client.key}`,
    `TLS_SERVER_NAME = ${pki.serverName}`,
  ]);
  const status = await kvmBackup(['status', '--config', wrongCa], env);
  console.log(`# wrong CA: ${status.stderr.trim()}`);
  assert.equal(status.exitCode, 1, status.stdout + status.stderr);
  assert.match(status.stderr, new RegExp(`^kvm-backup: cannot connect to Temporal at ${proxy.address}, namespace ${namespace} \\(TLS, CA .*other-ca\\.pem`, 'm'));
  assert.match(status.stderr, /\(TLS handshake: [^)]*(certificate|verify)[^)]*\)$/m, 'the handshake problem in OpenSSL\'s words');
  assert.doesNotMatch(status.stderr, /\n\s+at /, 'one clear line, no stack trace');
  const wrongWorker = longRunning(['worker', '--config', wrongCa], env);
  assert.equal(await wrongWorker.exited, 1, wrongWorker.output());
  assert.match(wrongWorker.output(), /cannot connect to Temporal at .*other-ca\.pem.*TLS handshake: /);
  const wrongDoctor = await doctor(wrongCa, env);
  assert.equal(wrongDoctor.temporal?.result, 'fail');
  assert.equal(wrongDoctor.r.exitCode === 0, false);

  const refusedBefore = proxy.refused.length;
  const noCert = writeConfig('no-cert.conf', [`ADDRESS = ${proxy.address}`, `NAMESPACE = ${namespace}`, `TLS_CA_FILE = ${pki.ca.cert}`, `TLS_SERVER_NAME = ${pki.serverName}`]);
  const anonymous = await kvmBackup(['status', '--config', noCert], env);
  console.log(`# no client certificate: ${anonymous.stderr.trim()}`);
  assert.equal(anonymous.exitCode, 1, anonymous.stdout + anonymous.stderr);
  assert.match(anonymous.stderr, /^kvm-backup: cannot connect to Temporal at .*\(TLS, CA .*ca\.pem, server name .*\(TLS handshake: .*certificate required\)$/m);
  assert.ok(proxy.refused.length > refusedBefore, 'the proxy refused the handshake without a client certificate');

  // the worker with the right settings is still polling after all that, and stops cleanly
  assert.equal(await worker.stop(), 0, worker.output());
});
