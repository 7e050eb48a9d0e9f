/**
 * Failures of the SSH gateway ([Service] TRANSPORTAPI = CLISSH), named in one place: the transport
 * (adapters/host/ssh.ts) words its errors with gatewayMessage(), core/failures.ts recognises them by
 * gatewayProblemIn() wherever a step wrapped them, and docs/exit-codes.md ("The SSH gateway") lists
 * what each becomes.
 *
 * - `refused`: the host refused the key (or the key file is unusable): configuration, never retried;
 * - `host-key`: the host's key is not in the known hosts, or changed: configuration, never retried;
 * - `unreachable`: no connection (refused, timed out, no route, unknown name): retried;
 * - `lost`: the connection broke while a command ran: retried; copies resume.
 */
export type GatewayProblem = 'refused' | 'host-key' | 'unreachable' | 'lost';

const WORDS: Record<GatewayProblem, string> = {
  refused: 'the key was refused',
  'host-key': 'the host key is not trusted',
  unreachable: 'unreachable',
  lost: 'connection lost',
};

/** `SSH gateway <user@host:port>: <problem words> (<detail>)`. */
export function gatewayMessage(gateway: string, problem: GatewayProblem, detail: string): string {
  return `SSH gateway ${gateway}: ${WORDS[problem]}${detail ? ` (${detail})` : ''}`;
}

const MARKER = new RegExp(`SSH gateway \\S+: (${Object.values(WORDS).join('|')})`);

/** The gateway problem a text names (an error message that wraps a transport error), if any. */
export function gatewayProblemIn(text: string): GatewayProblem | undefined {
  const words = MARKER.exec(text)?.[1];
  return (Object.entries(WORDS) as Array<[GatewayProblem, string]>).find(([, w]) => w === words)?.[0];
}

/** Problems an operator must fix (USER, DSA_FILE, the host's authorized_keys, KNOWN_HOSTS): retrying cannot help. */
export function isPermanentGatewayProblem(p: GatewayProblem): boolean {
  return p === 'refused' || p === 'host-key';
}

/**
 * What ssh's own failure (exit 255) says, from its stderr; undefined when the text is not ssh's
 * (a remote command that itself exited 255). OpenSSH 9.x wording.
 */
export function classifySshFailure(stderr: string): GatewayProblem | undefined {
  if (/Permission denied \(|Too many authentication failures|Load key "[^"]*": |no such identity|UNPROTECTED PRIVATE KEY FILE/i.test(stderr)) return 'refused';
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known/i.test(stderr)) return 'host-key';
  if (/ssh: connect to host|Could not resolve hostname|kex_exchange_identification|Connection timed out during banner exchange/i.test(stderr)) return 'unreachable';
  if (/closed by remote host|Connection closed by|Connection reset|Broken pipe|client_loop:|Timeout, server .* not responding|connection abort|packet_write_wait|ssh_dispatch_run_fatal/i.test(stderr)) return 'lost';
  return undefined;
}
