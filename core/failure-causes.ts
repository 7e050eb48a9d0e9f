/**
 * Whether a libvirt, virsh or qemu-img error will happen again the same way (permanent), passes by
 * itself (transient), or cannot be told (unknown), read from its text. core/failures.ts makes a
 * failure with a permanent cause non-retryable whatever its exit code says (docs/exit-codes.md,
 * "Retried or not: by cause"). The texts are libvirt 9.0 / QEMU 7.2's, measured on a host
 * (docs/exit-codes.md lists them); libvirt prints its error class first ("Requested operation is
 * not valid: …", "invalid argument: …"), and those classes are what most rules match.
 */

export type Cause = 'permanent' | 'transient' | 'unknown';

interface CauseRule {
  cause: Exclude<Cause, 'unknown'>;
  /** Matched against the whole text (several lines: virsh prints `error:` lines, qemu-img its own). */
  pattern: RegExp;
  /** Why, and an example text. */
  why: string;
}

/**
 * The rules, first match wins. The order matters where two match one text: a block job that is
 * merely not ready yet is reported under libvirt's "block copy still active" class; a refused
 * connection to libvirtd's socket says "Permission denied" when it is a rights problem, not a restart.
 */
export const CAUSE_RULES: readonly CauseRule[] = [
  {
    cause: 'transient',
    pattern: /not ready for pivot|\bjob\b.*\bnot ready\b|cannot accept command verb|active block job '[^']*' cannot be completed/i,
    why: "a block job that is not ready yet: `block copy still active: disk 'vda' not ready for pivot yet`",
  },
  { cause: 'permanent', pattern: /Permission denied/, why: "rights of a file, directory or socket: `Cannot access storage file '…' (as uid:64055, gid:64055): Permission denied`" },
  { cause: 'transient', pattern: /failed to connect to the hypervisor/i, why: 'libvirtd is restarting or not up yet' },
  { cause: 'transient', pattern: /Cannot recv data/i, why: 'the connection to libvirtd broke: `Cannot recv data: Connection reset by peer`' },
  { cause: 'transient', pattern: /End of file while reading data/i, why: 'libvirtd went away mid-call' },
  { cause: 'transient', pattern: /Connection reset/i, why: 'the connection to libvirtd broke' },
  {
    cause: 'transient',
    pattern: /Timed out during operation|cannot acquire state change lock/i,
    why: 'another call holds the domain: `Timed out during operation: cannot acquire state change lock`',
  },
  { cause: 'transient', pattern: /Failed to get (shared )?"write" lock/i, why: 'qemu-img: another process (QEMU, a copy) holds the image' },
  { cause: 'transient', pattern: /Resource temporarily unavailable/i, why: 'EAGAIN' },
  { cause: 'transient', pattern: /\bis busy\b|Device or resource busy/i, why: "a QEMU node or a file in use: `Node 'libvirt-1-format' is busy: block device is in use by block job`" },
  { cause: 'permanent', pattern: /cannot undefine/i, why: '`Requested operation is not valid: cannot undefine domain with nvram`' },
  { cause: 'permanent', pattern: /already in active block job|block copy still active|has active block job/i, why: "someone else's block job: `block copy still active: disk 'vda' already in active block job`" },
  { cause: 'permanent', pattern: /Cannot access storage file/i, why: "an image missing at start: `Cannot access storage file '…': No such file or directory`" },
  {
    cause: 'permanent',
    pattern: /(Failed to open file|Could not open|cannot open file|cannot read)\b.*No such file or directory/i,
    why: "a named input file is missing: `Failed to open file '…': No such file or directory` (restore, save-image-dumpxml)",
  },
  { cause: 'permanent', pattern: /does not support checks/i, why: '`qemu-img check` of a raw image: `This image format does not support checks`' },
  { cause: 'permanent', pattern: /unable to parse/i, why: 'bad arguments: `unable to parse diskspec: vda,snapshot=external,file=/a,b/o.qcow2`' },
  { cause: 'permanent', pattern: /Requested operation is not valid/i, why: 'wrong domain state: `Requested operation is not valid: domain is not running`' },
  { cause: 'permanent', pattern: /invalid argument/i, why: "`invalid argument: disk 'vdz' not found in domain`" },
  { cause: 'permanent', pattern: /unsupported configuration/i, why: '`unsupported configuration: external snapshot file for disk vda already exists …`' },
  { cause: 'permanent', pattern: /XML error/i, why: '`XML error: memory state cannot be saved with offline or disk-only snapshot`' },
  { cause: 'permanent', pattern: /Operation not supported/i, why: '`Operation not supported: live snapshot creation is supported only during full system snapshots`' },
];

/**
 * The cause of a libvirt/virsh/qemu-img error text (stderr, or a message that contains it):
 * the first rule of CAUSE_RULES that matches, 'unknown' when none does (a missing output directory,
 * `failed to get domain 'X'`, anything not listed).
 */
export function causeOf(text: string): Cause {
  return CAUSE_RULES.find((r) => r.pattern.test(text))?.cause ?? 'unknown';
}

/**
 * The text an error carries: a string as is; for an object its `message`, its `stderr` (the
 * command runner's CommandError keeps the whole of it, its message only the last lines) and those
 * of its `cause` chain (at most 10 deep), one per line.
 */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    if (typeof e === 'string') {
      parts.push(e);
      break;
    }
    if (typeof e !== 'object') {
      parts.push(String(e));
      break;
    }
    const { message, stderr, cause } = e as { message?: unknown; stderr?: unknown; cause?: unknown };
    if (typeof message === 'string') parts.push(message);
    if (typeof stderr === 'string') parts.push(stderr);
    e = cause;
  }
  return parts.join('\n');
}

/** causeOf(errorText(error)). */
export function causeOfError(error: unknown): Cause {
  return causeOf(errorText(error));
}
