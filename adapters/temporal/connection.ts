/**
 * Connections to Temporal for workers, the watcher and the CLI, one code path for all three: the
 * effective settings (core/temporal-settings.ts: address, namespace, TLS, API key) become the SDK's
 * connection options here, PEM files read at connect time. And the product's search attributes,
 * registered where the namespace lets us (start-dev registers them only when it creates its
 * database; Temporal Cloud never lets a worker: they are then listed for the operator).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { ConfigError } from '../../core/config-error.js';
import { Code } from '../../core/exit-codes.js';
import { SEARCH_ATTRIBUTE_TYPES } from '../../core/search-attributes.js';
import { describeTemporal, type PemSource, type TemporalSettings } from '../../core/temporal-settings.js';

/** What a connection needs; a TemporalSettings, or a bare address and namespace (tests, benchmarks). */
export type TemporalTarget = Pick<TemporalSettings, 'address' | 'namespace'> & Partial<Pick<TemporalSettings, 'tls' | 'apiKey'>>;

/**
 * Temporal could not be reached or refused us (wrong address, TLS: unknown CA, missing or rejected
 * client certificate, wrong server name; API key). The CLI exits 1 (UNDEFINED_ERROR) with this
 * message, which names the address and the TLS files but never a secret; docs/exit-codes.md.
 */
export class TemporalConnectionError extends Error {
  readonly code = Code.UNDEFINED_ERROR;
  constructor(target: TemporalTarget, cause: unknown, handshake?: string) {
    const why = (cause as Error)?.message ?? String(cause);
    super(`cannot connect to Temporal at ${describeTemporal(target)}: ${why}${handshake ? ` (TLS handshake: ${handshake})` : ''}`, { cause });
    this.name = 'TemporalConnectionError';
  }
}

/**
 * Why a TLS connection fails, in OpenSSL's words ("self-signed certificate in certificate chain",
 * "Hostname/IP does not match certificate's altnames", "tlsv13 alert certificate required"): the
 * SDK only says it could not connect before the deadline. One handshake with the same CA, client
 * certificate and server name; undefined when it succeeds or the address does not answer at all.
 */
export async function tlsHandshakeProblem(target: TemporalTarget, timeoutMs = 5_000): Promise<string | undefined> {
  const tls = tlsOptions(target);
  if (!tls) return undefined;
  const at = target.address.lastIndexOf(':');
  const host = target.address.slice(0, at).replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port: Number(target.address.slice(at + 1)),
      // SNI carries names only (RFC 6066), never an IP address
      ...(tls.serverNameOverride || !isIP(host) ? { servername: tls.serverNameOverride ?? host } : {}),
      ALPNProtocols: ['h2'],
      ...(tls.serverRootCACertificate ? { ca: Buffer.from(tls.serverRootCACertificate) } : {}),
      ...(tls.clientCertPair ? { cert: Buffer.from(tls.clientCertPair.crt), key: Buffer.from(tls.clientCertPair.key) } : {}),
    });
    const done = (problem: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('error', (e: NodeJS.ErrnoException & { reason?: string }) =>
      // OpenSSL's errors carry a one-line `reason` beside a multi-line message
      done(e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH' ? undefined : (e.reason ?? e.message).replace(/\s+/g, ' ').trim()),
    );
    // with TLS 1.3 the server's verdict on our certificate arrives after our side finished: wait a moment for it
    socket.once('secureConnect', () => setTimeout(() => done(undefined), 500));
  });
}

function readPem(source: PemSource | undefined, what: string): Buffer | undefined {
  if (!source) return undefined;
  if ('data' in source) return Buffer.from(source.data.reveal());
  try {
    return readFileSync(source.path);
  } catch (e) {
    throw new ConfigError(Code.MISSING_PARAMETER_IN_CONFIG_FILE, `cannot read the Temporal ${what} ${source.path}: ${(e as Error).message}`);
  }
}

/** The SDK's TLS option: false for plain TCP, else the PEMs read now (ConfigError 2 if unreadable). */
export function tlsOptions(target: TemporalTarget): TLSConfig | false {
  const t = target.tls;
  if (!t) return false;
  const ca = readPem(t.serverCa, 'server CA certificate');
  const crt = readPem(t.clientCert, 'client certificate');
  const key = readPem(t.clientKey, 'client key');
  return {
    ...(ca ? { serverRootCACertificate: ca } : {}),
    ...(crt && key ? { clientCertPair: { crt, key } } : {}),
    ...(t.serverName ? { serverNameOverride: t.serverName } : {}),
  };
}

function options(target: TemporalTarget) {
  return {
    address: target.address,
    tls: tlsOptions(target),
    ...(target.apiKey ? { apiKey: target.apiKey.reveal() } : {}),
  };
}

/** A client (CLI, watcher, tests); the first call to the server happens here, so failures show now. */
export async function connectClient(target: TemporalTarget): Promise<Client> {
  const o = options(target);
  try {
    const connection = await Connection.connect({ ...o, connectTimeout: 10_000 });
    return new Client({ connection, namespace: target.namespace });
  } catch (e) {
    throw new TemporalConnectionError(target, e, await tlsHandshakeProblem(target));
  }
}

/**
 * The workers' native (Rust core) connection. The worker SDK is loaded here, not at the module's
 * top: the CLI and the watcher use this module too and start about 0.3 s sooner without it.
 */
export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  const o = options(target);
  const { NativeConnection } = await import('@temporalio/worker');
  try {
    return await NativeConnection.connect(o);
  } catch (e) {
    throw new TemporalConnectionError(target, e, await tlsHandshakeProblem(target));
  }
}

export interface SearchAttributeCheck {
  /** Attributes this call registered. */
  added: string[];
  /** Attributes still missing, `Name (Type)`, after this call; empty when all are there. */
  missing: string[];
  /** Why they could not be listed or registered (the server's message). */
  refusal?: string;
}

/**
 * Registers the product's search attributes where missing (an existing one of the same name is
 * left as it is). Never throws for a refusal: a namespace that does not let this client list or
 * register attributes (Temporal Cloud, a restricted role) is reported in `missing`/`refusal`, and the
 * caller logs what an administrator must register; workflows then start without those attributes
 * (their upserts fail the workflow task until they exist, so register them soon).
 */
export async function ensureSearchAttributes(client: Client, namespace: string): Promise<SearchAttributeCheck> {
  const all = Object.entries(SEARCH_ATTRIBUTE_TYPES);
  const describe = (names: Array<[string, string]>) => names.map(([n, t]) => `${n} (${t})`);
  let known: Set<string>;
  try {
    const existing = await client.connection.operatorService.listSearchAttributes({ namespace });
    known = new Set(Object.keys(existing.customAttributes ?? {}));
  } catch (e) {
    return { added: [], missing: describe(all), refusal: `cannot list the search attributes of namespace ${namespace}: ${(e as Error).message}` };
  }
  const missing = all.filter(([name]) => !known.has(name));
  if (missing.length === 0) return { added: [], missing: [] };
  const types = { Keyword: 2, Int: 3 } as const; // temporal.api.enums.v1.IndexedValueType
  try {
    await client.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, types[type]])),
    });
  } catch (e) {
    return { added: [], missing: describe(missing), refusal: `namespace ${namespace} refused to register them: ${(e as Error).message}` };
  }
  return { added: missing.map(([n]) => n), missing: [] };
}

/** The log line for a check that left attributes missing. */
export function missingAttributesMessage(check: SearchAttributeCheck): string {
  return `register these ${check.missing.length} search attributes in the namespace (e.g. temporal operator search-attribute create --name … --type …, or the Temporal Cloud UI/tcld): ${check.missing.join(', ')}`;
}
