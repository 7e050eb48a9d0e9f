import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { ConfigError, parseGlobalConfig } from '../../core/global-config.js';
import { IniSyntaxError, parseIni } from '../../core/ini.js';
import { loadTemporalProfiles } from '../../adapters/temporal/profile.js';

const SEED = `# the seed's KVM.conf
[Global]
LOG_DEBUG = 1
LOG_INFO = 1
LOG_WARNING = 1
LOG_ERR = 1
ENVIRONMENT = node-01.example.org

[Database]
BACKEND = LDAP
SERVER = ldap.example.org
PORT = 389
ADMIN_USER = cn=Manager,dc=stoney-cloud,dc=org
ADMIN_PASSWORD = s3cret
SERVICE_SUBTREE = ou=virtualization,ou=services,dc=stoney-cloud,dc=org
COOKIE_FILE = /etc/Provisioning/Backup/KVM/cookie
DEFAULT_COOKIE = rid=001,csn=
SEARCH_FILTER = (&(entryCSN>=%entryCSN%)(objectClass=*))
STONEY_CLOUD_WIDE_CONFIGURATION = ou=backup,ou=configuration,ou=virtualization,ou=services,dc=stoney-cloud,dc=org

[Service]
MODUS = selfcare
TRANSPORTAPI = LocalCLI
SERVICE = Backup
TYPE = KVM
SYSLOG = Backup-KVM

[Gateway]
HOST = localhost
USER = provisioning
DSA_FILE = none

[Backup]
EXPORT_COMMAND = cp -p
`;

const noFiles = { env: {}, readSecretFile: () => { throw new Error('no file'); } };

test('the seed template parses with every section and key', () => {
  const c = parseGlobalConfig(SEED, noFiles);
  assert.equal(c.environment, 'node-01.example.org');
  assert.equal(c.database.url, 'ldap://ldap.example.org:389');
  assert.equal(c.database.searchFilter, '(&(entryCSN>=%entryCSN%)(objectClass=*))');
  assert.equal(c.database.cloudWideConfigurationKey, 'STONEY_CLOUD_WIDE_CONFIGURATION');
  assert.equal(c.service.syslogTag, 'Backup-KVM');
  assert.equal(c.gateway.user, 'provisioning');
  assert.equal(c.backup.exportCommand, 'cp -p');
  assert.deepEqual(c.log, { debug: true, info: true, warning: true, err: true, format: 'json' });
  assert.equal(c.backup.snapshotMethod, 'live');
  assert.equal(c.temporal.address, '127.0.0.1:7233');
});

test('the code\'s key name FOSS_CLOUD_WIDE_CONFIGURATION is accepted too; two different DNs are refused', () => {
  const foss = SEED.replace('STONEY_CLOUD_WIDE_CONFIGURATION', 'FOSS_CLOUD_WIDE_CONFIGURATION');
  assert.equal(parseGlobalConfig(foss, noFiles).database.cloudWideConfigurationKey, 'FOSS_CLOUD_WIDE_CONFIGURATION');
  const both = SEED.replace('[Service]', 'FOSS_CLOUD_WIDE_CONFIGURATION = ou=other,dc=x\n[Service]');
  assert.throws(() => parseGlobalConfig(both, noFiles), (e: ConfigError) => e.code === 39);
  const none = SEED.replace(/^STONEY_CLOUD_WIDE_CONFIGURATION.*$/m, '');
  assert.throws(() => parseGlobalConfig(none, noFiles), (e: ConfigError) => e.code === 2 && /STONEY_CLOUD_WIDE/.test(e.message));
});

test('the password comes from the environment, then a file, then the file itself, and never prints', () => {
  const fromEnv = parseGlobalConfig(SEED, { ...noFiles, env: { KVM_BACKUP_LDAP_PASSWORD: 'envpw' } });
  assert.equal(fromEnv.database.password.reveal(), 'envpw');
  const withFile = SEED.replace('ADMIN_PASSWORD = s3cret', 'ADMIN_PASSWORD_FILE = /etc/kvm-backup/ldap.secret');
  const fromFile = parseGlobalConfig(withFile, { env: {}, readSecretFile: (p) => (p === '/etc/kvm-backup/ldap.secret' ? 'filepw\n' : '') });
  assert.equal(fromFile.database.password.reveal(), 'filepw');
  const inline = parseGlobalConfig(SEED, noFiles);
  assert.equal(inline.database.password.reveal(), 's3cret');
  for (const text of [JSON.stringify(inline), inspect(inline, { depth: 5 }), String(inline.database.password)]) {
    assert.ok(!text.includes('s3cret'), `secret leaked in: ${text.slice(0, 80)}`);
  }
  assert.throws(() => parseGlobalConfig(withFile, noFiles), (e: ConfigError) => e.code === 2 && /password file/.test(e.message));
});

test('missing keys, template placeholders, wrong backends and garbage are clear errors', () => {
  assert.throws(() => parseGlobalConfig(SEED.replace(/^ENVIRONMENT.*$/m, ''), noFiles), /\[Global\] ENVIRONMENT is missing/);
  assert.throws(() => parseGlobalConfig(SEED.replace('node-01.example.org', '<STONEY-CLOUD-NODE-NAME>'), noFiles), /placeholder/);
  assert.throws(() => parseGlobalConfig(SEED.replace('BACKEND = LDAP', 'BACKEND = File'), noFiles), (e: ConfigError) => e.code === 36);
  assert.throws(() => parseGlobalConfig(SEED.replace('PORT = 389', 'PORT = ldap'), noFiles), (e: ConfigError) => e.code === 39);
  assert.throws(() => parseGlobalConfig(SEED.replace('LOG_INFO = 1', 'LOG_INFO = maybe'), noFiles), (e: ConfigError) => e.code === 39);
  assert.throws(() => parseGlobalConfig('KEY = before section', noFiles), /line 1/);
  assert.throws(() => parseIni('[A]\nno equals sign'), IniSyntaxError);
});

test('SERVER may be a URL; the environment overrides the Temporal address', () => {
  const url = SEED.replace('SERVER = ldap.example.org', 'SERVER = ldaps://ldap.example.org:636');
  const c = parseGlobalConfig(url, { ...noFiles, env: { TEMPORAL_ADDRESS: 'temporal:7233' }, temporalProfiles: loadTemporalProfiles });
  assert.equal(c.database.url, 'ldaps://ldap.example.org:636');
  assert.equal(c.temporal.address, 'temporal:7233');
});

test('logs: LOG_FORMAT json (default) or syslog, the [Service] SYSLOG tag checked, LOG_* switches each on their own', () => {
  const c = parseGlobalConfig(SEED.replace('LOG_DEBUG = 1', 'LOG_DEBUG = 0\nLOG_FORMAT = Syslog').replace('LOG_WARNING = 1', 'LOG_WARNING = no'), noFiles);
  assert.deepEqual(c.log, { debug: false, info: true, warning: false, err: true, format: 'syslog' });
  assert.equal(parseGlobalConfig(SEED.replace(/^LOG_.*$/gm, ''), noFiles).log.format, 'json');
  assert.equal(parseGlobalConfig(SEED.replace('SYSLOG = Backup-KVM', 'SYSLOG ='), noFiles).service.syslogTag, 'Backup-KVM');
  assert.throws(() => parseGlobalConfig(SEED.replace('LOG_ERR = 1', 'LOG_ERR = 1\nLOG_FORMAT = xml'), noFiles), (e: ConfigError) => e.code === 39 && /LOG_FORMAT "xml"/.test(e.message));
  assert.throws(() => parseGlobalConfig(SEED.replace('SYSLOG = Backup-KVM', 'SYSLOG = Backup KVM'), noFiles), (e: ConfigError) => e.code === 39 && /SYSLOG/.test(e.message));
});

test('metrics: no endpoint unless [Metrics] PORT is set; ADDRESS defaults to every interface', () => {
  assert.deepEqual(parseGlobalConfig(SEED, noFiles).metrics, { port: 0, address: '0.0.0.0' });
  assert.deepEqual(parseGlobalConfig(`${SEED}\n[Metrics]\nPORT = 9464\nADDRESS = 10.0.0.5\n`, noFiles).metrics, { port: 9464, address: '10.0.0.5' });
  assert.deepEqual(parseGlobalConfig(`${SEED}\n[Metrics]\nPORT = 9464\nADDRESS = ::\n`, noFiles).metrics, { port: 9464, address: '::' });
  for (const bad of ['PORT = 70000', 'PORT = http', 'PORT = -1', 'ADDRESS = 10.0.0.5 # comment?', 'ADDRESS = a/b']) {
    assert.throws(() => parseGlobalConfig(`${SEED}\n[Metrics]\n${bad}\n`, noFiles), (e: ConfigError) => e.code === 39, bad);
  }
});

test('[Backup] RESTIC_*: defaults, paths only (the password stays in its file), bad values 39', () => {
  const parse = (extra: string) => parseGlobalConfig(SEED.replace('[Backup]', `[Backup]\n${extra}`), { env: {}, readSecretFile: () => '' });
  assert.deepEqual(parse('').backup.restic, { binary: 'restic', verifyReadData: '100%', limitKiB: 0 });
  assert.deepEqual(
    parse('RESTIC_PASSWORD_FILE = /etc/kvm-backup/restic.password\nRESTIC_BINARY = /opt/restic\nRESTIC_SSH_IDENTITY_FILE = /etc/kvm-backup/id\nRESTIC_SSH_KNOWN_HOSTS = /etc/kvm-backup/kh\nRESTIC_CACHE_DIR = /var/cache/r\nRESTIC_LIMIT_KIB = 2048\nRESTIC_VERIFY_READ_DATA = 10%').backup.restic,
    { binary: '/opt/restic', verifyReadData: '10%', limitKiB: 2048, passwordFile: '/etc/kvm-backup/restic.password', sshIdentityFile: '/etc/kvm-backup/id', sshKnownHostsFile: '/etc/kvm-backup/kh', cacheDir: '/var/cache/r' },
  );
  for (const bad of ['RESTIC_PASSWORD_FILE = relative/file', 'RESTIC_LIMIT_KIB = fast', 'RESTIC_VERIFY_READ_DATA = 0%', 'RESTIC_VERIFY_READ_DATA = 101%', 'RESTIC_BINARY = a b']) {
    assert.throws(() => parse(bad), (e: unknown) => e instanceof ConfigError && e.code === 39, bad);
  }
});

test('[Backup] MAX_CONCURRENT_BACKUPS: 2 by default, 0 for no limit, up to 64; anything else 39', () => {
  assert.equal(parseGlobalConfig(SEED, noFiles).backup.maxConcurrentBackups, 2);
  assert.equal(parseGlobalConfig(SEED.replace('EXPORT_COMMAND = cp -p', 'EXPORT_COMMAND = cp -p\nMAX_CONCURRENT_BACKUPS = 5'), noFiles).backup.maxConcurrentBackups, 5);
  assert.equal(parseGlobalConfig(SEED.replace('EXPORT_COMMAND = cp -p', 'EXPORT_COMMAND = cp -p\nMAX_CONCURRENT_BACKUPS = 0'), noFiles).backup.maxConcurrentBackups, 0);
  for (const bad of ['65', '-1', 'two', '1.5', '', '1000']) {
    assert.throws(
      () => parseGlobalConfig(SEED.replace('EXPORT_COMMAND = cp -p', `EXPORT_COMMAND = cp -p\nMAX_CONCURRENT_BACKUPS = ${bad}`), noFiles),
      (e: ConfigError) => e.code === 39 && /MAX_CONCURRENT_BACKUPS/.test(e.message),
      bad,
    );
  }
});
