/**
 * core/failure-causes.ts on the error texts libvirt 9.0 / QEMU 7.2 print (measured on a host; the
 * list is in docs/exit-codes.md), and core/failures.ts turning a permanent cause into a
 * non-retryable failure whatever the code's flag.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codeOf, failure } from '../../core/failures.js';
import { CAUSE_RULES, causeOf, causeOfError, errorText, type Cause } from '../../core/failure-causes.js';
import { Code } from '../../core/exit-codes.js';

const PERMANENT = [
  'error: unable to parse diskspec: vda,snapshot=external,file=/a,b/o.qcow2',
  'error: unable to parse memspec: file=/a,b/m,snapshot=external',
  'error: Requested operation is not valid: domain is not running',
  "error: Requested operation is not valid: domain 'vm-1' is already active",
  'error: XML error: memory state cannot be saved with offline or disk-only snapshot',
  'error: XML error: memory snapshot file path (relative.mem) must be absolute',
  'error: Operation not supported: live snapshot creation is supported only during full system snapshots',
  "error: unsupported configuration: no disk named 'vdz'",
  'error: unsupported configuration: external snapshot file for disk vda already exists and is not a block device: /v/vm.qcow2.overlay-X',
  "error: invalid argument: disk 'vdz' not found in domain",
  "error: invalid argument: could not find image '/x' beneath '/v/vm.qcow2.overlay-X' in chain for 'vda'",
  "error: invalid argument: top '/v/vm.qcow2' in chain for 'vda' has no backing file",
  'error: invalid argument: disk vda does not have an active block job',
  'error: Requested operation is not valid: cannot undefine domain with nvram',
  'error: Requested operation is not valid: cannot undefine transient domain',
  "error: Cannot access storage file '/v/missing.qcow2' (as uid:64055, gid:64055): No such file or directory",
  "error: block copy still active: disk 'vda' already in active block job",
  'error: Requested operation is not valid: domain has active block job',
  "error: Failed to open file '/retain/vm-1.state': No such file or directory",
  "qemu-img: Could not open '/v/gone.qcow2': Could not open '/v/gone.qcow2': No such file or directory",
  "error: Cannot access storage file '/v/vm.qcow2' (as uid:64055, gid:64055): Permission denied",
  "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied",
  'qemu-img: This image format does not support checks',
];

const TRANSIENT = [
  "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
  "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused",
  'error: Cannot recv data: Connection reset by peer',
  'error: Cannot write data: Connection reset by peer',
  'error: End of file while reading data: Input/output error',
  'error: Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainBlockJobAbort)',
  'error: Timed out during operation: cannot acquire state change lock',
  "qemu-img: Could not open '/v/vm.qcow2': Failed to get \"write\" lock\nIs another process using the image [/v/vm.qcow2]?",
  "qemu-img: Could not open '/v/vm.qcow2': Failed to get shared \"write\" lock",
  'error: Resource temporarily unavailable',
  "error: block copy still active: disk 'vda' not ready for pivot yet",
  "error: internal error: unable to execute QEMU command 'job-complete': Job 'commit-vda-libvirt-3-format' in state 'running' cannot accept command verb 'complete'",
  "error: internal error: unable to execute QEMU command 'block-commit': Node 'libvirt-1-format' is busy: block device is in use by block job: copy",
];

const UNKNOWN = [
  "error: failed to get domain 'vm-1'",
  "error: Failed to create file '/nonexist/dir/m': No such file or directory",
  "error: failed to create image file '/nonexist/o.qcow2': No such file or directory",
  'error: internal error: qemu unexpectedly closed the monitor',
  '',
];

test('permanent: libvirt error classes, foreign block jobs, missing inputs, rights, raw checks', () => {
  for (const t of PERMANENT) assert.equal(causeOf(t), 'permanent', t);
});

test('transient: libvirtd away, locks, a block job not ready yet', () => {
  for (const t of TRANSIENT) assert.equal(causeOf(t), 'transient', t);
});

test('unknown: anything else, including a missing output directory and a missing domain', () => {
  for (const t of UNKNOWN) assert.equal(causeOf(t), 'unknown', t);
});

test('every rule is needed: each decides at least one of the texts above', () => {
  const all = [...PERMANENT, ...TRANSIENT];
  for (const rule of CAUSE_RULES) {
    const first = all.filter((t) => CAUSE_RULES.find((r) => r.pattern.test(t)) === rule);
    assert.ok(first.length > 0, `rule ${rule.pattern} decides no text (${rule.why})`);
  }
});

test("an error's text: message, the whole stderr of a command error, causes; a string as is", () => {
  const commandError = Object.assign(new Error('virsh failed (exit 1): error: cannot open'), {
    stderr: "error: block copy still active: disk 'vda' not ready for pivot yet",
  });
  assert.equal(causeOfError(commandError), 'transient');
  const wrapped = new Error('snapshot failed', { cause: new Error('error: Requested operation is not valid: domain is not running') });
  assert.equal(causeOfError(wrapped), 'permanent');
  assert.equal(errorText('error: XML error: x'), 'error: XML error: x');
  assert.equal(causeOfError(undefined), 'unknown');
});

const cases: Array<[Cause, string]> = [
  ['permanent', 'error: Requested operation is not valid: domain has active block job'],
  ['transient', 'error: Timed out during operation: cannot acquire state change lock'],
  ['unknown', 'error: internal error: something new'],
];

test('failure(): a permanent cause under a retryable code (5) is non-retryable; the code and message stay', () => {
  const f = failure(Code.CANNOT_SAVE_MACHINE_STATE, 'save of vm-1 failed', {}, { cause: new Error(cases[0][1]) });
  assert.equal(f.nonRetryable, true);
  assert.equal(f.type, 'CANNOT_SAVE_MACHINE_STATE');
  assert.equal(f.message, 'CANNOT_SAVE_MACHINE_STATE (5): save of vm-1 failed');
  assert.deepEqual(f.details, [{ cause: 'permanent', code: 5 }]);
  assert.equal(codeOf(f), 5);
});

test('failure(): a transient or unknown cause follows the table (5 stays retryable, 33 stays not)', () => {
  for (const [cause, text] of cases.slice(1)) {
    const f = failure(Code.CANNOT_SAVE_MACHINE_STATE, 'save failed', { vm: 'vm-1' }, { cause: text });
    assert.equal(f.nonRetryable, false, cause);
    assert.deepEqual(f.details, [{ vm: 'vm-1', cause, code: 5 }]);
    assert.equal(failure(Code.BACKEND_XML_UNCONSISTENCY, 'x', {}, { cause: text }).nonRetryable, true);
  }
  // without a cause: the table alone, no cause in the details
  const plain = failure(Code.CANNOT_SAVE_MACHINE_STATE, 'save failed');
  assert.equal(plain.nonRetryable, false);
  assert.deepEqual(plain.details, [{ code: 5 }]);
});
