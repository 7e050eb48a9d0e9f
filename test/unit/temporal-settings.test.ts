/**
 * The Temporal connection settings from the three layers (TOML profile < [Temporal] < TEMPORAL_*),
 * read through @temporalio/envconfig from a real TOML file and environment maps.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { inspect } from 'node:util';
import { loadTemporalProfiles } from '../../adapters/temporal/profile.js';
import { tlsOptions } from '../../adapters/temporal/connection.js';
import { ConfigError } from '../../core/config-error.js';
import { describeTemporal, resolveTemporalSettings } from '../../core/temporal-settings.js';

const dir = mkdtempSync(join(tmpdir(), 'kvmb-temporal-settings-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const toml = join(dir, 'temporal.toml');
writeFileSync(
  toml,
  `[profile.default]
address = "toml-default:7233"
namespace = "toml-ns"

[profile.cloud]
address = "ns.acct.tmprl.cloud:7233"
namespace = "ns.acct"
api_key = "toml-api-key"

[profile.mtls]
address = "toml-mtls:7233"
[profile.mtls.tls]
server_ca_cert_path = "/etc/ca.pem"
client_cert_path = "/etc/client.pem"
client_key_data = "-----BEGIN PRIVATE KEY-----\\nTOMLKEY\\n-----END PRIVATE KEY-----"
server_name = "temporal.internal"
`,
);

const resolve = (ini: Record<string, string>, env: Record<string, string | undefined> = {}, files: Record<string, string> = {}) =>
  resolveTemporalSettings(ini, {
    profiles: loadTemporalProfiles({ env, ...(ini['CONFIG_FILE'] ? { configFile: ini['CONFIG_FILE'] } : {}), ...(ini['PROFILE'] ? { profile: ini['PROFILE'] } : {}) }),
    readSecretFile: (p) => {
      if (p in files) return files[p]!;
      throw new Error(`ENOENT: ${p}`);
    },
    defaultControlTaskQueue: 'kvm-backup.control',
  });

test('defaults: 127.0.0.1:7233, namespace default, no TLS; the INI alone without the other layers', () => {
  const s = resolve({}, { HOME: join(dir, 'no-home') });
  assert.deepEqual([s.address, s.namespace, s.tls, s.apiKey, s.controlTaskQueue], ['127.0.0.1:7233', 'default', undefined, undefined, 'kvm-backup.control']);
  assert.equal(s.origins.tls, 'off (default)');
  const alone = resolveTemporalSettings({ ADDRESS: 'ini:7233' }, { readSecretFile: () => '', defaultControlTaskQueue: 'q' });
  assert.equal(alone.address, 'ini:7233');
});

test('layers: TOML profile < [Temporal] < TEMPORAL_* environment, field by field', () => {
  const fromToml = resolve({ CONFIG_FILE: toml });
  assert.deepEqual([fromToml.address, fromToml.namespace], ['toml-default:7233', 'toml-ns']);
  assert.match(fromToml.origins.address, /profile default of .*temporal\.toml/);
  const ini = resolve({ CONFIG_FILE: toml, ADDRESS: 'ini:7233' });
  assert.deepEqual([ini.address, ini.namespace, ini.origins.address], ['ini:7233', 'toml-ns', '[Temporal] ADDRESS']);
  const env = resolve({ CONFIG_FILE: toml, ADDRESS: 'ini:7233', NAMESPACE: 'ini-ns' }, { TEMPORAL_ADDRESS: 'env:7233' });
  assert.deepEqual([env.address, env.namespace, env.origins.address], ['env:7233', 'ini-ns', 'environment TEMPORAL_ADDRESS']);
  // the default file location is found through HOME (and XDG_CONFIG_HOME)
  const xdg = join(dir, 'xdg');
  mkdirSync(join(xdg, 'temporalio'), { recursive: true });
  writeFileSync(join(xdg, 'temporalio', 'temporal.toml'), '[profile.default]\naddress = "xdg:7233"\n');
  assert.equal(resolve({}, { XDG_CONFIG_HOME: xdg }).address, 'xdg:7233');
  // TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE win over CONFIG_FILE and PROFILE
  assert.equal(resolve({ CONFIG_FILE: join(xdg, 'temporalio', 'temporal.toml') }, { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'mtls' }).address, 'toml-mtls:7233');
});

test('TLS from the INI: CA, client certificate and key, server name; on when any is given, off when TLS = 0', () => {
  const s = resolve({ TLS_CA_FILE: '/ca.pem', TLS_CERT_FILE: '/c.pem', TLS_KEY_FILE: '/k.pem', TLS_SERVER_NAME: 'temporal.test' });
  assert.deepEqual(s.tls, { serverCa: { path: '/ca.pem' }, clientCert: { path: '/c.pem' }, clientKey: { path: '/k.pem' }, serverName: 'temporal.test' });
  assert.match(s.origins.tls, /^on/);
  assert.equal(resolve({ TLS: '1' }).tls !== undefined, true, 'TLS = 1 with the system CAs');
  assert.equal(resolve({ TLS: '0', TLS_CA_FILE: '/ca.pem' }).tls, undefined);
  assert.equal(resolve({ TLS_CA_FILE: '/ca.pem' }, { TEMPORAL_TLS: 'false' }).tls, undefined, 'the environment switches it off');
  assert.match(describeTemporal(s), /TLS, CA \/ca\.pem, client certificate \/c\.pem, server name temporal\.test/);
  assert.throws(() => resolve({ TLS: 'maybe' }), (e: ConfigError) => e.code === 39);
});

test('TLS from the TOML profile and the TEMPORAL_TLS_* variables; key data is a secret', () => {
  const s = resolve({ CONFIG_FILE: toml, PROFILE: 'mtls' });
  assert.deepEqual(s.tls?.serverCa, { path: '/etc/ca.pem' });
  assert.equal(s.tls?.serverName, 'temporal.internal');
  const key = s.tls?.clientKey;
  assert.ok(key && 'data' in key);
  assert.match(key.data.reveal(), /TOMLKEY/);
  assert.doesNotMatch(inspect(s, { depth: 5 }) + JSON.stringify(s) + describeTemporal(s), /TOMLKEY/);
  const env = resolve(
    { TLS_CA_FILE: '/ini-ca.pem' },
    { TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/env-ca.pem', TEMPORAL_TLS_CLIENT_CERT_PATH: '/env-c.pem', TEMPORAL_TLS_CLIENT_KEY_PATH: '/env-k.pem', TEMPORAL_TLS_SERVER_NAME: 'env.name' },
  );
  assert.deepEqual(env.tls, { serverCa: { path: '/env-ca.pem' }, clientCert: { path: '/env-c.pem' }, clientKey: { path: '/env-k.pem' }, serverName: 'env.name' });
  assert.throws(() => resolve({ CONFIG_FILE: toml, PROFILE: 'nope' }), (e: ConfigError) => e.code === 2 && /nope/.test(e.message));
  assert.throws(() => resolve({ CONFIG_FILE: join(dir, 'missing.toml') }), (e: ConfigError) => e.code === 2);
});

test('API key: environment, API_KEY_FILE or the profile, never inline in the INI; it implies TLS', () => {
  const env = resolve({}, { TEMPORAL_API_KEY: 'env-key' });
  assert.equal(env.apiKey?.reveal(), 'env-key');
  assert.ok(env.tls, 'an API key implies TLS');
  assert.equal(env.origins.apiKey, 'environment TEMPORAL_API_KEY');
  const file = resolve({ API_KEY_FILE: '/etc/kvm-backup/temporal.key' }, {}, { '/etc/kvm-backup/temporal.key': 'file-key\n' });
  assert.equal(file.apiKey?.reveal(), 'file-key');
  assert.equal(resolve({ CONFIG_FILE: toml, PROFILE: 'cloud' }).apiKey?.reveal(), 'toml-api-key');
  assert.throws(() => resolve({ API_KEY: 'inline' }), (e: ConfigError) => e.code === 39 && /API_KEY_FILE/.test(e.message) && !/inline/.test(e.message));
  assert.throws(() => resolve({ API_KEY_FILE: '/missing' }), (e: ConfigError) => e.code === 2);
  for (const s of [env, file]) assert.doesNotMatch(JSON.stringify(s) + inspect(s, { depth: 5 }) + describeTemporal(s), /env-key|file-key/);
});

test('a client certificate without its key (or the reverse) is refused; unreadable PEMs are a configuration error', () => {
  assert.throws(() => resolve({ TLS_CERT_FILE: '/c.pem' }), (e: ConfigError) => e.code === 2 && /only the certificate/.test(e.message));
  assert.throws(() => resolve({ TLS_KEY_FILE: '/k.pem' }), (e: ConfigError) => e.code === 2 && /only the key/.test(e.message));
  const s = resolve({ TLS_CA_FILE: join(dir, 'no-ca.pem') });
  assert.throws(() => tlsOptions(s), (e: ConfigError) => e.code === 2 && /server CA certificate/.test(e.message));
  writeFileSync(join(dir, 'ca.pem'), 'PEM');
  assert.deepEqual(tlsOptions(resolve({ TLS_CA_FILE: join(dir, 'ca.pem'), TLS_SERVER_NAME: 'x' })), { serverRootCACertificate: Buffer.from('PEM'), serverNameOverride: 'x' });
});

test('UI_URL: an http(s) URL without trailing slash', () => {
  assert.equal(resolve({ UI_URL: 'https://temporal.example.org:8233/' }).uiUrl, 'https://temporal.example.org:8233');
  assert.throws(() => resolve({ UI_URL: 'temporal.example.org' }), (e: ConfigError) => e.code === 39);
});
