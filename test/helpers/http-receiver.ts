/** A webhook receiver on 127.0.0.1 (node:http) that records every request: method, path, headers, body. */
import { createServer } from 'node:http';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface HttpReceiver {
  url: string;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

/** `status` answers each request (default 204); it may look at the request number (0-based). */
export async function startHttpReceiver(status: (n: number) => number = () => 204): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const n = requests.length;
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(status(n)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the receiver has no port');
  return {
    url: `http://127.0.0.1:${address.port}/hooks/kvm-backup?token=t0ken`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
