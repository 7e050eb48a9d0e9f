/**
 * Backup roots that are restic repositories (core/backup-root.ts, core/restic.ts): which URIs name
 * one and which are refused with which code, the layout of an iteration in a repository, the ssh
 * command restic starts (an argument array that survives restic's own splitting), and which exit code
 * each restic failure becomes. The restic texts are those restic 0.19.1 printed on this machine.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBackupRoot } from '../../core/backup-root.js';
import { Code } from '../../core/exit-codes.js';
import { iterationDirs } from '../../core/layout.js';
import { NamingError } from '../../core/naming.js';
import { repositoryArguments, resticMessage, resticProblem, resticProblemCode, sftpCommand, sshArguments, snapshotTags, statusOf, tagValue } from '../../core/restic.js';

const settings = { binary: 'restic', passwordFile: '/etc/kvm-backup/restic.password', verifyReadData: '100%', limitKiB: 0 };

test('file:// stays the plain layout; restic:// and restic+sftp:// name repositories', () => {
  assert.deepEqual(parseBackupRoot('file:///var/backup/virtualization'), { kind: 'plain', path: '/var/backup/virtualization' });
  assert.deepEqual(parseBackupRoot('restic:///var/backup/repo'), { kind: 'repository', repository: { uri: 'restic:///var/backup/repo', transport: 'local', path: '/var/backup/repo' } });
  assert.deepEqual(parseBackupRoot('restic://localhost/var/backup/r%20x'), { kind: 'repository', repository: { uri: 'restic://localhost/var/backup/r%20x', transport: 'local', path: '/var/backup/r x' } });
  assert.deepEqual(parseBackupRoot('restic+sftp://backup@store.example.org:2222/srv/repos/node-1'), {
    kind: 'repository',
    repository: { uri: 'restic+sftp://backup@store.example.org:2222/srv/repos/node-1', transport: 'sftp', path: '/srv/repos/node-1', user: 'backup', host: 'store.example.org', port: 2222 },
  });
  assert.deepEqual(parseBackupRoot('restic+sftp://[::1]/r').kind === 'repository' && parseBackupRoot('restic+sftp://[::1]/r'), {
    kind: 'repository',
    repository: { uri: 'restic+sftp://[::1]/r', transport: 'sftp', path: '/r', host: '::1', port: 22 },
  });
});

test('bad repository URIs are refused with the caller\'s code; unknown schemes keep 39 / 35', () => {
  const bad = [
    'restic://otherhost/repo', // a local repository has no host
    'restic:///', // the root directory
    'restic:///a/../b',
    'restic:///a/%2e%2e/b',
    'restic:///a/%zz',
    'restic:///a/"b',
    'restic:///a/b\\c',
    'restic+sftp://-oProxyCommand=x/repo', // nothing ssh could read as an option
    'restic+sftp://us er@host/repo',
    'restic+sftp://host:99999/repo',
    'restic+sftp://host/relative'.replace('/relative', ''),
    's3://bucket/x',
    'sftp://user@host/x',
  ];
  for (const uri of bad) {
    for (const code of [Code.UNSUPPORTED_CONFIGURATION_PARAMETER, Code.UNSUPPORTED_FILE_TRANSFER_PROTOCOL]) {
      assert.throws(() => parseBackupRoot(uri, 'sstBackupRootDirectory', code), (e: unknown) => e instanceof NamingError && e.code === code, uri);
    }
  }
});

test('an iteration in a repository: the retain directory as in the plain layout, the backup names only describe the snapshot', () => {
  const dirs = iterationDirs({
    vm: 'vm-1',
    ou: '20260301T010000Z',
    disks: [{ target: 'vda', path: '/var/virtualization/vm-persistent/pool-1/disk.qcow2' }],
    rootDirectoryUri: 'restic:///var/backup/repo',
    retainDirectoryUri: 'file:///var/virtualization/retain',
    virtualizationRoot: '/var/virtualization',
  });
  assert.equal(dirs.retainDir, '/var/virtualization/retain/vm-persistent/pool-1/vm-1/20260301T010000Z');
  assert.equal(dirs.backupDir, 'restic:///var/backup/repo vm=vm-1 ou=20260301T010000Z');
  assert.equal(dirs.repository?.path, '/var/backup/repo');
  // the retain directory is a local path in every layout
  assert.throws(() => iterationDirs({ vm: 'vm-1', ou: '20260301T010000Z', disks: [{ target: 'vda', path: '/x/d.qcow2' }], rootDirectoryUri: 'restic:///r', retainDirectoryUri: 'restic:///r2', virtualizationRoot: '/var/virtualization' }), NamingError);
});

/** restic's own splitter (internal/backend/shell_split.go), transcribed, to prove the quoting round-trips. */
function resticSplit(data: string): string[] {
  const out: string[] = [];
  let quote = '';
  let last = '';
  let start = -1;
  const isSplit = (c: string): boolean => {
    if (last !== '\\') {
      if (quote && c === quote) {
        quote = '';
        return true;
      }
      if (!quote && (c === '"' || c === "'")) {
        quote = c;
        return true;
      }
    }
    last = c;
    if (quote) return false;
    return c === '\\' || /\s/.test(c);
  };
  [...data].forEach((c, i) => {
    if (isSplit(c)) {
      if (start >= 0) out.push(data.slice(start, i));
      start = -1;
    } else if (start === -1) start = i;
  });
  if (start >= 0) out.push(data.slice(start));
  return out;
}

test('SFTP: ssh is started from an argument array restic splits back unchanged; arguments it could not are refused', () => {
  const repo = { uri: 'u', transport: 'sftp' as const, path: "/srv/repo with space/and 'quote'", user: 'backup', host: 'store-1.example.org', port: 2222 };
  const s = { sshIdentityFile: '/etc/kvm backup/id_ed25519', sshKnownHostsFile: '/etc/kvm-backup/known_hosts' };
  const args = sshArguments(repo, s);
  assert.deepEqual(args.slice(-4), ['-s', '--', 'store-1.example.org', 'sftp']);
  assert.deepEqual(resticSplit(sftpCommand(args)), args);
  const r = repositoryArguments(repo, { ...settings, ...s });
  assert.equal(r[1], "sftp:store-1.example.org:/srv/repo with space/and 'quote'");
  assert.equal(r[2], '-o');
  // one CSV field (pflag's list flags), then restic's splitter
  assert.match(r[3]!, /^"sftp\.command=""ssh"" .*""sftp"""$/);
  assert.deepEqual(resticSplit(r[3]!.slice(1, -1).replace(/""/g, '"').slice('sftp.command='.length)), args);
  for (const bad of ['', 'a"b', 'a\\b', 'a\nb']) assert.throws(() => sftpCommand(['ssh', bad]), /cannot pass/);
  assert.deepEqual(repositoryArguments({ uri: 'u', transport: 'local', path: '/var/backup/repo' }, settings), ['--repo', '/var/backup/repo']);
});

test('snapshot tags and progress lines', () => {
  assert.deepEqual(snapshotTags({ vm: 'vm-1', ou: '20260301T010000Z', node: 'node-1' }), ['kvm-backup', 'vm=vm-1', 'ou=20260301T010000Z', 'node=node-1']);
  assert.throws(() => snapshotTags({ vm: 'a,b', ou: 'x', node: 'n' }));
  assert.equal(tagValue(['kvm-backup', 'vm=vm-1', 'ou=x'], 'ou'), 'x');
  assert.deepEqual(statusOf({ message_type: 'status', percent_done: 0.5, total_bytes: 100, bytes_done: 50, current_files: ['/a'] }), { bytes: 50, total: 100, file: '/a' });
  assert.deepEqual(statusOf({ message_type: 'status', total_bytes: 100, bytes_restored: 20 }), { bytes: 20, total: 100 });
  assert.equal(statusOf({ message_type: 'summary' }), undefined);
});

test('restic failures become the product\'s codes (exit code first, then the text)', () => {
  const cases: Array<[number | undefined, string, number]> = [
    [12, '{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}', Code.UNSUPPORTED_CONFIGURATION_PARAMETER],
    [10, '{"message_type":"exit_error","code":10,"message":"Fatal: repository does not exist: unable to open config file: stat /r/config: no such file or directory"}', Code.BACKUP_ROOT_DIRECTORY_DOES_NOT_EXIST],
    [11, 'unable to create lock in backend: repository is already locked exclusively by PID 11072 on vm by root', Code.CANNOT_LOCK_MACHINE],
    [1, 'Fatal: unable to save snapshot: sftp: write /r/data/ab/x: no space left on device', Code.NOT_ENOUGH_DISK_SPACE],
    [1, 'ssh: connect to host 127.0.0.1 port 2222: Connection refused\nFatal: unable to open repository: unable to start the sftp session, error: EOF', Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION],
    [1, 'Host key verification failed.', Code.UNSUPPORTED_CONFIGURATION_PARAMETER],
    [1, 'backup@127.0.0.1: Permission denied (publickey).', Code.UNSUPPORTED_CONFIGURATION_PARAMETER],
    [1, 'Fatal: some other failure', Code.CORRUPT_DISK_IMAGE_FOUND],
  ];
  for (const [exit, text, code] of cases) assert.equal(resticProblemCode(resticProblem(exit, text), Code.CORRUPT_DISK_IMAGE_FOUND), code, text);
  assert.equal(resticMessage('{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}\n'), 'Fatal: wrong password or no key found');
  assert.equal(resticMessage('line 1\nline 2\n'), 'line 1 | line 2');
});
