/**
 * The pieces of the CLISSH transport that need no sshd: the quoting of an argument array for the
 * remote POSIX shell (checked by running the line in real shells), ssh's failure texts, the gateway
 * problems' codes through failure(), the EXPORT_COMMAND splitter and the [Gateway]/[Service] keys.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { remoteLine, shellQuote, sshCommand, sshTranslate } from '../../adapters/host/ssh.js';
import { CommandError } from '../../adapters/host/run.js';
import { TransportError } from '../../adapters/host/transport-error.js';
import { ConfigError } from '../../core/config-error.js';
import { Code } from '../../core/exit-codes.js';
import { codeOf, failure } from '../../core/failures.js';
import { classifySshFailure, gatewayMessage, gatewayProblemIn } from '../../core/gateway.js';
import { exportCommandArgv, parseGateway, parseTransportApi, splitCommand } from '../../core/transport-settings.js';

/** A file the injections below would create, were an argument ever run as shell code. */
const PWNED = join(tmpdir(), `kvm-backup-pwned-${process.pid}-${randomBytes(4).toString('hex')}`);

const NASTY = [
  '',
  ' ',
  'plain',
  "it's",
  "''",
  '"double"',
  '$HOME',
  `$(touch ${PWNED})`,
  `\`touch ${PWNED}\``,
  `'; touch ${PWNED}; '`,
  `"; touch ${PWNED}; "`,
  'a;b|c&d>e<f',
  '*',
  '~root',
  'a=b',
  '-rf',
  '--',
  'line\nbreak',
  'tab\there',
  '\\',
  "\\'",
  '!event',
  '{a,b}',
  '#comment',
  '/var/virtualization/vm-persistent/pool a/vm,with,commas.qcow2',
  'ünïcödé ✓',
  '%s\\0',
];

const SHELLS = ['/bin/sh', '/bin/bash', '/bin/dash'].filter((s) => existsSync(s));

/** What the remote shell hands to the program: the line run as `<shell> -c line`, arguments printed NUL-separated. */
function throughShell(shell: string, args: string[]): string[] {
  const out = execFileSync(shell, ['-c', remoteLine(['printf', '%s\\0', ...args])]);
  return out.toString('utf8').split('\0').slice(0, -1);
}

test('every argument reaches the remote program unchanged, whatever it contains (sh, bash, dash)', () => {
  assert.ok(SHELLS.length > 0);
  const random = Array.from({ length: 40 }, () => randomBytes(12).toString('latin1').replaceAll('\0', ''));
  for (const shell of SHELLS) {
    assert.deepEqual(throughShell(shell, NASTY), NASTY, shell);
    // printable bytes of every kind, as LDAP values might carry them
    const printable = random.map((r) => Buffer.from(r, 'latin1').toString('utf8').replace(/\uFFFD/g, '?'));
    assert.deepEqual(throughShell(shell, printable), printable, `${shell}: random`);
  }
  assert.equal(existsSync(PWNED), false, 'no argument ran as shell code');
});

test('plain words stay unquoted, everything else is single-quoted; NUL is refused', () => {
  assert.equal(shellQuote('/var/lib/x.qcow2'), '/var/lib/x.qcow2');
  assert.equal(shellQuote('a b'), "'a b'");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote('a=b'), "'a=b'");
  assert.equal(shellQuote(''), "''");
  assert.throws(() => shellQuote('a\0b'));
});

test('the ssh command: strict host keys, no prompts, the key, and the remote argv behind setpriv', () => {
  const [cmd, argv] = sshCommand({ host: 'hv1.example', port: 2222, user: 'provisioning', identityFile: '/etc/kvm-backup/id_ed25519', knownHostsFile: '/etc/kvm-backup/known hosts' })(
    'virsh',
    ['-c', 'qemu:///system', 'dumpxml', "vm 'x'"],
    true,
  );
  assert.equal(cmd, 'setpriv');
  assert.deepEqual(argv.slice(0, 4), ['--pdeathsig', 'KILL', '--', 'ssh']);
  for (const o of ['BatchMode=yes', 'StrictHostKeyChecking=yes', 'IdentitiesOnly=yes', 'UserKnownHostsFile="/etc/kvm-backup/known hosts"']) assert.ok(argv.includes(o), o);
  assert.deepEqual(argv.slice(argv.indexOf('-i'), argv.indexOf('-i') + 2), ['-i', '/etc/kvm-backup/id_ed25519']);
  assert.equal(argv.at(-3), 'hv1.example');
  assert.equal(argv.at(-2), '--');
  assert.equal(argv.at(-1), `exec setpriv --pdeathsig KILL -- ionice -c 3 virsh -c qemu:///system dumpxml 'vm '\\''x'\\'''`);
  assert.throws(() => sshCommand({ host: '-oProxyCommand=x', port: 22, user: 'u' }));
});

test("ssh's own failures become gateway problems; a remote command's exit stays the command's", () => {
  const cases: Array<[string, ReturnType<typeof classifySshFailure>]> = [
    ['provisioning@127.0.0.1: Permission denied (publickey).', 'refused'],
    ['Load key "/etc/kvm-backup/id": invalid format', 'refused'],
    ['Host key verification failed.', 'host-key'],
    ['No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.', 'host-key'],
    ['ssh: connect to host 127.0.0.1 port 1: Connection refused', 'unreachable'],
    ['ssh: Could not resolve hostname nowhere.invalid: Name or service not known', 'unreachable'],
    ['ssh: connect to host 10.255.255.1 port 22: Connection timed out', 'unreachable'],
    ['kex_exchange_identification: read: Connection reset by peer', 'unreachable'],
    ['Connection to 127.0.0.1 closed by remote host.', 'lost'],
    ['client_loop: send disconnect: Broken pipe', 'lost'],
    ['Timeout, server 127.0.0.1 not responding.', 'lost'],
    ['dd: error writing: No space left on device', undefined],
  ];
  for (const [text, expected] of cases) assert.equal(classifySshFailure(text), expected, text);
  const translate = sshTranslate({ host: 'h', port: 22, user: 'u' });
  const lost = translate(new CommandError('dd if=…', 255, 'Connection to h closed by remote host.', ''));
  assert.ok(lost instanceof TransportError && lost.problem === 'lost');
  assert.match(lost.message, /^SSH gateway u@h:22: connection lost \(/);
  const own = translate(new CommandError('virsh x', 1, 'error: Permission denied (publickey)', ''));
  assert.ok(own instanceof CommandError, 'exit 1 is the remote command speaking');
});

test('failure(): a refused key is 39 and never retried, whatever step it stopped; a lost connection keeps the step code and is retried', () => {
  const refused = new TransportError('refused', 'u@h:22', 'Permission denied (publickey).');
  const f = failure(Code.CANNOT_COPY_IMAGE_TO_BACKUP_LOCATION, `copy of /a to retain: ${refused.message}`, {}, { cause: refused });
  assert.equal(codeOf(f), Code.UNSUPPORTED_CONFIGURATION_PARAMETER);
  assert.equal(f.nonRetryable, true);
  assert.equal((f.details?.[0] as { gateway?: string }).gateway, 'refused');
  // wrapped twice, by message only
  assert.equal(codeOf(failure(Code.UNDEFINED_ERROR, `preflight: ${refused.message}`)), Code.UNSUPPORTED_CONFIGURATION_PARAMETER);
  const lost = new TransportError('lost', 'u@h:22', 'Connection to h closed by remote host.');
  const l = failure(Code.CANNOT_COPY_IMAGE_TO_BACKUP_LOCATION, `copy: ${lost.message}`, {}, { cause: new Error('copy /a → /b', { cause: lost }) });
  assert.equal(codeOf(l), Code.CANNOT_COPY_IMAGE_TO_BACKUP_LOCATION);
  assert.equal(l.nonRetryable, false);
  assert.equal((l.details?.[0] as { cause?: string }).cause, 'transient');
  // under a code that is never retried (chown: 19) a lost connection is 1, retried
  const c = failure(Code.CANNOT_SET_DISK_IMAGE_OWNERSHIP, `chown: ${lost.message}`);
  assert.equal(codeOf(c), Code.UNDEFINED_ERROR);
  assert.equal(c.nonRetryable, false);
  assert.equal(gatewayProblemIn(gatewayMessage('u@h:22', 'unreachable', 'x')), 'unreachable');
  assert.equal(gatewayProblemIn('ssh: connect to host h port 22: Connection refused'), undefined);
});

test('EXPORT_COMMAND is split into words without a shell; shell syntax is refused', () => {
  assert.deepEqual(splitCommand('rsync -a --sparse'), ['rsync', '-a', '--sparse']);
  assert.deepEqual(splitCommand(`cp  --sparse=always "-p"  'a b' c\\ d`), ['cp', '--sparse=always', '-p', 'a b', 'c d']);
  assert.deepEqual(splitCommand(`x "it's" 'say "hi"' ""`), ['x', "it's", 'say "hi"', '']);
  for (const bad of ['cp -p; rm -rf /', 'cp $HOME', 'cp `x`', 'cp > f', 'cp "open', '   ']) {
    assert.throws(() => splitCommand(bad), (e: unknown) => e instanceof ConfigError && e.code === Code.UNSUPPORTED_CONFIGURATION_PARAMETER, bad);
  }
  assert.equal(exportCommandArgv('cp -p'), undefined);
  assert.equal(exportCommandArgv('  cp   -p '), undefined);
  assert.deepEqual(exportCommandArgv('rsync -a --sparse'), ['rsync', '-a', '--sparse']);
});

test('[Service] TRANSPORTAPI and [Gateway]: LocalCLI by default, CLISSH with a checked host, user, port and key paths', () => {
  assert.equal(parseTransportApi(undefined), 'LocalCLI');
  assert.equal(parseTransportApi('clissh'), 'CLISSH');
  assert.throws(() => parseTransportApi('CLIRSH'), ConfigError);
  assert.deepEqual(parseGateway({}), { host: 'localhost', user: 'provisioning', dsaFile: 'none', port: 22, knownHosts: '' });
  assert.deepEqual(parseGateway({ HOST: '10.0.0.5', USER: 'root', DSA_FILE: '/etc/kvm-backup/id_ed25519', PORT: '2222', KNOWN_HOSTS: '/etc/kvm-backup/known_hosts' }), {
    host: '10.0.0.5',
    user: 'root',
    dsaFile: '/etc/kvm-backup/id_ed25519',
    port: 2222,
    knownHosts: '/etc/kvm-backup/known_hosts',
  });
  const bads: Array<Record<string, string>> = [{ HOST: '-oProxyCommand=sh' }, { HOST: 'a b' }, { USER: 'x;y' }, { PORT: '0' }, { PORT: '70000' }, { DSA_FILE: 'id_rsa' }];
  for (const bad of bads) {
    assert.throws(() => parseGateway(bad), ConfigError, JSON.stringify(bad));
  }
});
