import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplicationFailure, ActivityFailure, RetryState } from '@temporalio/common';
import { Code, EXIT_CODES, exitCode, NON_RETRYABLE_NAMES } from '../../core/exit-codes.js';
import { codeOf, failure, STEP_RETRY } from '../../core/failures.js';

test('the table holds the seed codes 0-48 without 14, names as the original daemon (docs/exit-codes.md)', () => {
  const numbers = EXIT_CODES.map((c) => c.code);
  assert.deepEqual(numbers, [...Array(49).keys()].filter((n) => n !== 14));
  assert.equal(exitCode(3)?.name, 'CONFIGURED_RAM_DISK_IS_NOT_VALUD'); // the seed's spelling
  assert.equal(Code.NOT_ENOUGH_DISK_SPACE, 47);
  assert.equal(Code.NO_DISK_SPACE_INFORMATION, 48);
  assert.equal(Code.CANNOT_COPY_BACKEND_FILE_TO_BACKUP_LOCATION, 10);
  assert.equal(exitCode(14), undefined);
  for (const c of EXIT_CODES) assert.ok(c.reason.length > 10, `code ${c.code} has a reason`);
});

test('a failure carries the name as type, the number in details and nonRetryable from the table', () => {
  const f = failure(Code.BACKEND_XML_UNCONSISTENCY, 'vda differs');
  assert.equal(f.type, 'BACKEND_XML_UNCONSISTENCY');
  assert.equal(f.nonRetryable, true);
  assert.deepEqual(f.details, [{ code: 33 }]);
  assert.match(f.message, /BACKEND_XML_UNCONSISTENCY \(33\): vda differs/);
  const retryable = failure(Code.CANNOT_COPY_FILE_TO_BACKUP_LOCATION, 'EIO');
  assert.equal(retryable.nonRetryable, false);
});

test('unknown numbers (raw libvirt codes) never leak: they become UNDEFINED_ERROR', () => {
  const f = failure(9999, 'libvirt said 9999');
  assert.equal(f.type, 'UNDEFINED_ERROR');
  assert.deepEqual(f.details, [{ code: 1 }]);
});

test('codeOf finds the code through ActivityFailure causes, by details or by type', () => {
  const inner = failure(Code.CANNOT_MERGE_DISK_IMAGES, 'job failed');
  const wrapped = new ActivityFailure('activity failed', 'mergeBack', '1', RetryState.NON_RETRYABLE_FAILURE, 'id', inner);
  assert.equal(codeOf(wrapped), 11);
  assert.equal(codeOf(ApplicationFailure.create({ type: 'CANNOT_FIND_MACHINE', message: 'x' })), 23);
  assert.equal(codeOf(new Error('plain')), 1);
});

test('the retry policy refuses exactly the non-retryable codes', () => {
  assert.ok(STEP_RETRY.nonRetryableErrorTypes?.includes('NOT_ENOUGH_DISK_SPACE'));
  assert.ok(!STEP_RETRY.nonRetryableErrorTypes?.includes('CANNOT_MERGE_DISK_IMAGES'));
  assert.ok(!NON_RETRYABLE_NAMES.includes('SUCCESS_CODE'));
});
