/**
 * A real SMTP server on 127.0.0.1 for the notification tests: aiosmtpd (PyPI, pinned, installed by
 * scripts/setup.sh into .tools/smtp) with STARTTLS required before AUTH, and AUTH LOGIN/PLAIN
 * required before MAIL, checking one user and password. Every accepted message is written as one
 * JSON file (envelope, whole message, whether the session was TLS and who logged in) into `dir`.
 * Started and stopped by PID (stack/daemon.ts), dying with the test process.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, portOpen, startDaemon, type Daemon } from '../../stack/daemon.js';
import { PROJECT_ROOT } from '../../stack/paths.js';

const SERVER = String.raw`
import email, email.policy, json, os, signal, ssl, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

host, port, cert, key, user, password, outdir = sys.argv[1:8]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)

class Store:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Store.count += 1
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        record = {
            "headers": {k.lower(): str(v) for k, v in message.items()},
            "body": message.get_body(preferencelist=("plain",)).get_content(),
            "mailFrom": envelope.mail_from,
            "rcptTos": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "login": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
        }
        path = os.path.join(outdir, "%04d.json" % Store.count)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK stored"

def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode()
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

controller = Controller(
    Store(), hostname=host, port=int(port), tls_context=context, require_starttls=True,
    authenticator=authenticate, auth_required=True, auth_require_tls=True, ready_timeout=10,
)
controller.start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
print("ready", flush=True)
stop.wait()
controller.stop()
`;

export interface ReceivedMail {
  /** Header fields by lower-case name, unfolded and decoded (Python's email parser). */
  headers: Record<string, string>;
  /** The decoded text/plain body. */
  body: string;
  mailFrom: string;
  rcptTos: string[];
  /** The whole message as received (headers and body). */
  data: string;
  tls: boolean;
  login: string | null;
}

export interface SmtpServer {
  host: string;
  port: number;
  messages(): ReceivedMail[];
  stop(): Promise<void>;
}

export async function startSmtpServer(o: { dir: string; cert: string; key: string; user: string; password: string }): Promise<SmtpServer> {
  const python = join(PROJECT_ROOT, '.tools', 'smtp', 'bin', 'python');
  if (!existsSync(python)) throw new Error(`${python} is missing: run scripts/setup.sh (it installs aiosmtpd)`);
  const outdir = join(o.dir, 'received');
  mkdirSync(outdir, { recursive: true });
  const script = join(o.dir, 'smtp_server.py');
  writeFileSync(script, SERVER);
  const port = await freePort();
  const daemon: Daemon = await startDaemon({
    name: 'aiosmtpd',
    command: python,
    args: [script, '127.0.0.1', String(port), o.cert, o.key, o.user, o.password, outdir],
    logFile: join(o.dir, 'smtp.log'),
    ready: () => portOpen(port),
    dieWithParent: true,
  });
  return {
    host: '127.0.0.1',
    port,
    messages: () =>
      readdirSync(outdir)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => JSON.parse(readFileSync(join(outdir, f), 'utf8')) as ReceivedMail),
    stop: () => daemon.stop(),
  };
}
