/**
 * A throwaway OpenLDAP server: its own directory, the stoney cloud schema, seeded offline with
 * slapadd (which also sets entryCSN), started in the foreground on a loopback port, syncprov
 * loaded so `ldapsearch -E sync=rp` and contextCSN work as on a real stoney cloud directory.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { Client } from 'ldapts';
import { startDaemon, type Daemon } from './daemon.js';
import { SCHEMA_DIR } from './paths.js';

export interface SlapdOptions {
  /** Holds slapd.conf, the database and the log. Kept between runs (an existing DB is not re-seeded). */
  dir: string;
  port: number;
  suffix: string;
  rootDn: string;
  rootPassword: string;
  /** LDIF loaded with slapadd when the database is new. */
  seedLdif?: string;
}

export interface Slapd extends Daemon {
  url: string;
  /** Restart on the same port and database (for "LDAP restarted under the watcher" tests). */
  restart(): Promise<Slapd>;
}

function slapdConf(o: SlapdOptions): string {
  const systemSchema = ['core', 'cosine', 'nis', 'inetorgperson'].map((s) => `include /etc/ldap/schema/${s}.schema`);
  return [
    ...systemSchema,
    `include ${join(SCHEMA_DIR, 'stoney-cloud.schema')}`,
    `include ${join(SCHEMA_DIR, 'dhcp-minimal.schema')}`,
    `pidfile ${join(o.dir, 'slapd.pid')}`,
    `argsfile ${join(o.dir, 'slapd.args')}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    'moduleload syncprov',
    'sizelimit unlimited',
    'database mdb',
    'maxsize 104857600',
    `suffix "${o.suffix}"`,
    `rootdn "${o.rootDn}"`,
    // slapd.conf is 0600 in a directory of ours; the password never reaches a command line
    `rootpw ${o.rootPassword}`,
    `directory ${join(o.dir, 'db')}`,
    'index objectClass eq',
    'index entryCSN,entryUUID eq',
    'index sstProvisioningState eq',
    'overlay syncprov',
    'syncprov-checkpoint 100 10',
    'syncprov-sessionlog 100',
    '',
  ].join('\n');
}

async function binds(url: string, dn: string, password: string): Promise<boolean> {
  const client = new Client({ url, timeout: 1_000, connectTimeout: 1_000 });
  try {
    await client.bind(dn, password);
    return true;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

export async function startSlapd(options: SlapdOptions): Promise<Slapd> {
  const dbDir = join(options.dir, 'db');
  const fresh = !existsSync(join(dbDir, 'data.mdb'));
  mkdirSync(dbDir, { recursive: true });
  const conf = join(options.dir, 'slapd.conf');
  writeFileSync(conf, slapdConf(options), { mode: 0o600 });
  chmodSync(conf, 0o600);
  await execa('slaptest', ['-u', '-f', conf]);
  if (fresh && options.seedLdif) {
    const ldif = join(options.dir, 'seed.ldif');
    writeFileSync(ldif, options.seedLdif);
    await execa('slapadd', ['-q', '-f', conf, '-l', ldif]);
  }
  const url = `ldap://127.0.0.1:${options.port}`;
  const daemon = await startDaemon({
    name: 'slapd',
    dieWithParent: true,
    command: 'slapd',
    args: ['-h', `${url}/`, '-f', conf, '-d', '0'],
    logFile: join(options.dir, 'slapd.log'),
    ready: () => binds(url, options.rootDn, options.rootPassword),
    readyTimeoutMs: 15_000,
    pollMs: 50,
  });
  return { ...daemon, url, restart: async () => (await daemon.stop(), startSlapd({ ...options, seedLdif: undefined })) };
}
