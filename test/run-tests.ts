/**
 * `npm test`: starts the shared real services once (Temporal dev server, libvirtd if none runs),
 * bundles the workflows once, runs every test file with node's test runner, and stops what it
 * started. Each test file starts its own slapd and uses its own node name, task queues, domain
 * names and files, so files cannot see each other's work.
 *
 *   node dist/test/run-tests.js [name-filter …]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Virsh } from '../adapters/host/virsh.js';
import { freePort, stopTrackedPids } from '../stack/daemon.js';
import { ensureLibvirt, LIBVIRT_URI, type Libvirt } from '../stack/libvirt.js';
import { VAR_DIR } from '../stack/paths.js';
import { startTemporalServer, type TemporalServer } from '../stack/temporal-server.js';
import { buildWorkflowBundle } from '../workers/workflow-bundle.js';
import { loopDevicesBelow } from './helpers/host-probes.js';
import { TEST_DOMAIN_PREFIX } from './helpers/names.js';

const execFileP = promisify(execFile);

const here = fileURLToPath(new URL('.', import.meta.url));
const filters = process.argv.slice(2);

function testFiles(): string[] {
  const files: string[] = [];
  for (const sub of ['unit', 'integration']) {
    const dir = join(here, sub);
    for (const f of readdirSync(dir).sort()) {
      if (f.endsWith('.test.js') && (filters.length === 0 || filters.some((x) => f.includes(x)))) files.push(join(dir, f));
    }
  }
  return files;
}

/**
 * Domains a crashed test of this run left behind: destroyed before libvirtd may stop (QEMU outlives
 * it), undefined with their NVRAM (libvirt refuses a UEFI domain otherwise) and TPM state; then the
 * loop devices over files of the run's directory and NVRAM files named after its domains.
 */
async function sweepTestDomains(prefix: string, runDir: string): Promise<void> {
  const virsh = new Virsh(LIBVIRT_URI);
  const names = (await virsh.exec(['list', '--all', '--name']).catch(() => '')).split('\n').map((s) => s.trim());
  for (const name of names.filter((n) => n.startsWith(prefix))) {
    console.error(`run-tests: removing leftover test domain ${name}`);
    if (await virsh.isActive(name).catch(() => false)) await virsh.destroy(name).catch(() => undefined);
    await virsh.exec(['undefine', name, '--nvram', '--snapshots-metadata', '--checkpoints-metadata']).catch(() => undefined);
  }
  for (const device of loopDevicesBelow(runDir)) {
    console.error(`run-tests: detaching leftover loop device ${device}`);
    await execFileP('losetup', ['-d', device]).catch(() => undefined);
  }
  const nvramDir = '/var/lib/libvirt/qemu/nvram';
  for (const f of existsSync(nvramDir) ? readdirSync(nvramDir) : []) {
    if (f.startsWith(prefix)) rmSync(join(nvramDir, f), { force: true });
  }
}

/**
 * /tmp with its standard mode (1777): swtpm_setup, which libvirt runs as the tss user for a TPM
 * domain, makes its temporary files there and fails with "Permission denied" otherwise. Some
 * machine images ship /tmp as 0755; every Debian host a site runs has 1777.
 */
function ensureStandardTmp(): void {
  const mode = statSync('/tmp').mode & 0o7777;
  if (mode === 0o1777) return;
  console.log(`run-tests: /tmp had mode ${mode.toString(8)}; set to 1777 (swtpm_setup writes there as tss)`);
  chmodSync('/tmp', 0o1777);
}

/** Set once a signal asked the run to stop: the cleanup that exits the process when done. */
let stopping: Promise<void> | undefined;

async function main(): Promise<number> {
  const files = testFiles();
  if (files.length === 0) throw new Error(`no test file matches ${filters.join(' ')}`);
  // one directory and one name tag per run, so two runs on one machine never touch each other's files
  const tag = randomBytes(2).toString('hex');
  const runDir = join(VAR_DIR, 'test', `run-${tag}`);
  mkdirSync(join(runDir, 'logs'), { recursive: true });

  let temporal: TemporalServer | undefined;
  let libvirt: Libvirt | undefined;
  let tests: ChildProcess | undefined;
  const pidDir = join(runDir, 'pids');
  let stopped: Promise<void> | undefined;
  const stopAll = () => (stopped ??= stopEverything());
  const stopEverything = async () => {
    if (tests && tests.exitCode === null && tests.signalCode === null) {
      tests.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 3_000));
      if (tests.exitCode === null && tests.signalCode === null) tests.kill('SIGKILL');
    }
    // domains first (QEMU outlives libvirtd), then daemons a killed test process left behind
    await sweepTestDomains(`${TEST_DOMAIN_PREFIX}${tag}-`, runDir).catch((e) => console.error('run-tests: sweep failed', e));
    const left = await stopTrackedPids(pidDir);
    if (left.length) console.error(`run-tests: stopped ${left.length} daemons left behind by tests: ${left.join(', ')}`);
    await libvirt?.stop();
    await temporal?.stop();
  };
  const onSignal = (code: number) => () => {
    stopping ??= stopAll().finally(() => process.exit(code));
  };
  process.once('SIGINT', onSignal(130));
  process.once('SIGTERM', onSignal(143));
  try {
    const started = Date.now();
    ensureStandardTmp();
    [temporal, libvirt] = await Promise.all([
      startTemporalServer({ port: await freePort(), logFile: join(runDir, 'logs', 'temporal.log') }),
      ensureLibvirt(join(runDir, 'logs')),
    ]);
    const bundlePath = join(runDir, 'workflow-bundle.js');
    writeFileSync(bundlePath, await buildWorkflowBundle());
    console.log(
      `run-tests: Temporal ${temporal.address} (pid ${temporal.pid}), libvirt ${libvirt.owned ? 'started here' : 'already running'}, ` +
        `ready in ${Date.now() - started} ms; ${files.length} test files`,
    );
    const code = await new Promise<number>((resolve) => {
      const child = (tests = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], {
        stdio: 'inherit',
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: temporal!.address,
          TEMPORAL_NAMESPACE: 'default',
          KVM_BACKUP_TEST_DIR: runDir,
          KVM_BACKUP_TEST_RUN: tag,
          KVM_BACKUP_WORKFLOW_BUNDLE: bundlePath,
          KVM_BACKUP_PID_DIR: pidDir,
          // tests that restart libvirtd may do so only to the daemon this run started
          ...(libvirt!.owned ? { KVM_BACKUP_LIBVIRTD_OWNED: '1' } : {}),
          // workers log each workflow's end at info: the test output keeps to warnings, as before
          KVM_BACKUP_LOG_LEVEL: process.env['KVM_BACKUP_LOG_LEVEL'] ?? 'warn',
        },
      }));
      child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
    });
    // daemons first: their PID files live in the run directory (a libvirtd a test restarted among them)
    await stopAll();
    if (code === 0) rmSync(runDir, { recursive: true, force: true });
    else console.error(`run-tests: failed; files and logs kept in ${runDir}`);
    return code;
  } finally {
    if (!stopping) await stopAll();
  }
}

main().then(
  // on a signal, the cleanup ends the process (domains destroyed first), not the tests' exit
  (code) => (stopping ? stopping : process.exit(code)),
  (e) => {
    console.error('run-tests:', e);
    process.exit(1);
  },
);
