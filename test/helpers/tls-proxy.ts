/**
 * A TLS-terminating TCP proxy on 127.0.0.1 in front of the plain Temporal dev server (the pinned
 * CLI's `temporal server start-dev` has no TLS options): it speaks TLS with ALPN h2, demands a
 * client certificate signed by the given CA (mutual TLS), and pipes the decrypted gRPC bytes to
 * the upstream. It records who got in (the client certificates' CNs) and which handshakes failed.
 */
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { createServer, type TLSSocket } from 'node:tls';

export interface TlsProxy {
  address: string;
  /** Subject CN of each accepted client certificate, one per connection. */
  accepted: string[];
  /** The error of each refused handshake. */
  refused: string[];
  close(): Promise<void>;
}

export async function startTlsProxy(o: { upstream: string; cert: string; key: string; clientCa: string }): Promise<TlsProxy> {
  const [host, port] = [o.upstream.slice(0, o.upstream.lastIndexOf(':')), Number(o.upstream.slice(o.upstream.lastIndexOf(':') + 1))];
  const accepted: string[] = [];
  const refused: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer(
    {
      cert: readFileSync(o.cert),
      key: readFileSync(o.key),
      ca: readFileSync(o.clientCa),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (tls: TLSSocket) => {
      const cn = tls.getPeerCertificate().subject?.CN;
      accepted.push(Array.isArray(cn) ? cn.join(',') : String(cn));
      const up = connect(port, host);
      sockets.add(tls).add(up);
      const end = () => {
        tls.destroy();
        up.destroy();
        sockets.delete(tls);
        sockets.delete(up);
      };
      tls.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
      tls.pipe(up).pipe(tls);
    },
  );
  server.on('tlsClientError', (e) => refused.push(e.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the TLS proxy has no port');
  return {
    address: `127.0.0.1:${address.port}`,
    accepted,
    refused,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
