/**
 * The worker's Prometheus endpoint: GET /metrics on [Metrics] ADDRESS:PORT (or `--metrics-port`),
 * plain node:http. Anything else is 404; only GET and HEAD are answered.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EXPOSITION_CONTENT_TYPE } from './prometheus.js';

export interface MetricsServer {
  /** The bound port (the one asked for, or the one the system chose for 0). */
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(render: () => string | Promise<string>, o: { port: number; address?: string }): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    Promise.resolve()
      .then(render)
      .then(
        (body) => {
          res.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (e: unknown) => {
          // a collect callback that threw: a 500 Prometheus reports as a failed scrape, never a dead worker
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics could not be rendered: ${e instanceof Error ? e.message : String(e)}\n`);
        },
      );
  });
  // a scrape is quick; a client that keeps a connection open must not hold up the worker's exit
  server.keepAliveTimeout = 5_000;
  const address = o.address ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  // the URL to reach it from this host (a wildcard address is not one to connect to)
  const local = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  const host = local.includes(':') ? `[${local}]` : local;
  return {
    port,
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
