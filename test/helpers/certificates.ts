/**
 * A throw-away PKI for TLS tests, made with Debian's openssl: a CA, a server certificate for a
 * name (not for 127.0.0.1, so the client must send the server name), a client certificate for
 * mutual TLS, and a second, unrelated CA that must not be trusted. EC P-256 keys, valid two days.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

export interface Pem {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** Paths of the PEM files. */
  ca: Pem;
  otherCa: Pem;
  server: Pem;
  client: Pem;
  /** For a server on 127.0.0.1 (SAN IP:127.0.0.1, DNS:localhost), e.g. the test SMTP server. */
  localhost: Pem;
  serverName: string;
  clientName: string;
}

async function openssl(args: string[]): Promise<void> {
  await execa('openssl', args, { stdin: 'ignore' });
}

async function makeCa(dir: string, name: string, cn: string): Promise<Pem> {
  const pem = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-keyout', pem.key, '-out', pem.cert, '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return pem;
}

async function makeLeaf(dir: string, name: string, ca: Pem, cn: string, extensions: string[]): Promise<Pem> {
  const pem = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, [...extensions, 'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', ''].join('\n'));
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', pem.key, '-out', csr, '-subj', `/CN=${cn}`]);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-out', pem.cert, '-extfile', ext]);
  return pem;
}

export async function makeTestPki(dir: string): Promise<TestPki> {
  mkdirSync(dir, { recursive: true });
  const serverName = 'temporal.kvm-backup.test';
  const clientName = 'kvm-backup-worker.test';
  const ca = await makeCa(dir, 'ca', 'kvm-backup test CA');
  const otherCa = await makeCa(dir, 'other-ca', 'some other CA');
  const server = await makeLeaf(dir, 'server', ca, serverName, [`subjectAltName=DNS:${serverName}`, 'extendedKeyUsage=serverAuth']);
  const client = await makeLeaf(dir, 'client', ca, clientName, [`subjectAltName=DNS:${clientName}`, 'extendedKeyUsage=clientAuth']);
  const localhost = await makeLeaf(dir, 'localhost', ca, 'localhost', ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth']);
  return { dir, ca, otherCa, server, client, localhost, serverName, clientName };
}
