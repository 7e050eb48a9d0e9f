/** [Mail] and [Notify] from the INI, and what a failure notice reads like (mail text, webhook JSON, UI link). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { ConfigError } from '../../core/config-error.js';
import { parseIni } from '../../core/ini.js';
import { mailText, webhookBody, workflowUiLink, type FailureNotice } from '../../core/notification.js';
import { ENV_MAIL_PASSWORD, parseNotifySettings } from '../../core/notify-settings.js';

const parse = (ini: string, env: Record<string, string> = {}, files: Record<string, string> = {}) =>
  parseNotifySettings(parseIni(ini), {
    env,
    readSecretFile: (p) => {
      if (p in files) return files[p]!;
      throw new Error(`ENOENT ${p}`);
    },
    environment: 'node-01.example.org',
  });

const MAIL = `[Mail]
SENDTO = ops@example.org, admin@example.org
HOST = smtp.example.org
USERNAME = backup@example.org
`;

test('no SENDTO, no mail; the original keys with their defaults (587, STARTTLS, LOGIN)', () => {
  assert.deepEqual(parse('[Mail]\nHOST = smtp.example.org\n'), {});
  const s = parse(`${MAIL}PASSWORD = inline-pw\nWANTINFOMAIL = 1\n`);
  assert.deepEqual(
    { ...s.mail, password: s.mail?.password?.reveal() },
    { sendTo: ['ops@example.org', 'admin@example.org'], host: 'smtp.example.org', port: 587, security: 'starttls', username: 'backup@example.org', password: 'inline-pw', authMethod: 'LOGIN', from: 'backup@example.org', fromName: 'kvm-backup' },
  );
  const ssl = parse(`${MAIL}SSL = ssl\nAUTH_METHOD = plain\nFROM = kvm@example.org\nFROMNAME = Backups\nCA_DIR = /etc/ssl/mail\n`).mail!;
  assert.deepEqual([ssl.port, ssl.security, ssl.authMethod, ssl.from, ssl.fromName, ssl.caDir], [465, 'ssl', 'PLAIN', 'kvm@example.org', 'Backups', '/etc/ssl/mail']);
  assert.equal(parse('[Mail]\nSENDTO = ops@example.org\nHOST = localhost\n').mail?.from, 'kvm-backup@node-01.example.org');
});

test('the mail password: environment, then a file, then inline; never printed', () => {
  const env = parse(`${MAIL}PASSWORD_FILE = /etc/kvm-backup/mail.secret\n`, { [ENV_MAIL_PASSWORD]: 'from-env' }, { '/etc/kvm-backup/mail.secret': 'from-file\n' });
  assert.equal(env.mail?.password?.reveal(), 'from-env');
  assert.equal(parse(`${MAIL}PASSWORD_FILE = /etc/kvm-backup/mail.secret\n`, {}, { '/etc/kvm-backup/mail.secret': 'from-file\n' }).mail?.password?.reveal(), 'from-file');
  assert.equal(parse(`${MAIL}PASSWORD = file:/run/pw\n`, {}, { '/run/pw': 'via-file-prefix' }).mail?.password?.reveal(), 'via-file-prefix');
  const s = parse(`${MAIL}PASSWORD = inline-secret\n`);
  assert.doesNotMatch(JSON.stringify(s) + inspect(s, { depth: 5 }) + String(s.mail?.password), /inline-secret/);
  assert.throws(() => parse(`${MAIL}PASSWORD_FILE = /missing\n`), (e: ConfigError) => e.code === 2 && /\/missing/.test(e.message));
  assert.throws(() => parse('[Mail]\nSENDTO = a@b.c\nHOST = h\nPASSWORD = x\n'), (e: ConfigError) => e.code === 2 && /USERNAME/.test(e.message));
});

test('bad values: 39; HOST missing: 2', () => {
  assert.throws(() => parse('[Mail]\nSENDTO = ops@example.org\n'), (e: ConfigError) => e.code === 2);
  for (const bad of ['SENDTO = not-an-address', 'PORT = 70000', 'SSL = none', 'AUTH_METHOD = CRAM-MD5', 'FROM = nobody', 'CA_DIR = relative/dir']) {
    assert.throws(() => parse(`${MAIL}${bad}\n`), (e: ConfigError) => e.code === 39, bad);
  }
  assert.throws(() => parse('[Notify]\nWEBHOOK_URL = ftp://example.org/x\n'), (e: ConfigError) => e.code === 39);
  assert.throws(() => parse('[Notify]\nWEBHOOK_URL = nowhere\n'), (e: ConfigError) => e.code === 39);
  assert.equal(parse('[Notify]\nWEBHOOK_URL = https://hooks.example.org/kvm?token=x\n').webhookUrl, 'https://hooks.example.org/kvm?token=x');
});

const notice: FailureNotice = {
  operation: 'backup',
  vm: 'vm-1',
  node: 'node-01',
  leaf: 'ou=20260301T115900Z,ou=backup,sstVirtualMachine=vm-1,ou=virtual machines,ou=virtualization,ou=services,dc=stoney-cloud,dc=org',
  code: 23,
  name: 'CANNOT_FIND_MACHINE',
  message: 'CANNOT_FIND_MACHINE (23): VM vm-1 is not defined in libvirt on node node-01',
  namespace: 'kvm backup',
  workflowId: 'backup/vm-1/20260301T115900Z',
  runId: 'r-1',
  workflowType: 'backupWorkflow',
  at: '2026-03-01T12:00:03.412Z',
};

test('mail text, webhook JSON and the Temporal UI link', () => {
  const link = 'https://ui.example.org/namespaces/kvm%20backup/workflows/backup%2Fvm-1%2F20260301T115900Z/r-1/history';
  assert.equal(workflowUiLink('https://ui.example.org', notice), link);
  assert.equal(workflowUiLink(undefined, notice), undefined);
  const { subject, text } = mailText(notice, 'https://ui.example.org');
  assert.equal(subject, 'kvm-backup: backup of vm-1 failed: CANNOT_FIND_MACHINE (23)');
  for (const line of ['VM           vm-1', 'node         node-01', 'exit code    23 CANNOT_FIND_MACHINE', `Temporal UI  ${link}`]) assert.ok(text.includes(line), line);
  assert.doesNotMatch(mailText(notice).text, /Temporal UI/);
  assert.deepEqual(webhookBody(notice, 'https://ui.example.org'), {
    event: 'kvm-backup.failure',
    id: 'backup/vm-1/20260301T115900Z/r-1',
    operation: 'backup',
    vm: 'vm-1',
    node: 'node-01',
    leaf: notice.leaf,
    code: 23,
    name: 'CANNOT_FIND_MACHINE',
    message: notice.message,
    namespace: 'kvm backup',
    workflowId: notice.workflowId,
    runId: 'r-1',
    workflowType: 'backupWorkflow',
    at: notice.at,
    link,
  });
  const pool = mailText({ ...notice, operation: 'scheduled-backup', vm: undefined as never, pool: 'pool-a' } as FailureNotice);
  assert.equal(pool.subject, 'kvm-backup: scheduled-backup of pool pool-a failed: CANNOT_FIND_MACHINE (23)');
});
