import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decide, localDate, triage, type ChangedEntry } from '../../client/watcher/classify.js';
import { formatRdn } from '../../core/dn.js';
import { leafDn, parseLeafDn, vmBackupDn } from '../../core/naming.js';

const SUB = 'ou=virtualization,ou=services,dc=stoney-cloud,dc=org';
const CSN = '20261127021447.601862Z#000000#000#000000';
const entry = (dn: string, o: Partial<ChangedEntry> = {}): ChangedEntry => ({ dn, csn: CSN, state: '0', mode: 'snapshot', ...o });
const good = leafDn(SUB, 'vm-1', '20261127T030000Z');
const TODAY = '20261127';

test('triage: only leaves below the service subtree with state 0 are candidates; echoes are ignored', () => {
  assert.equal(triage(entry(good), SUB).kind, 'candidate');
  assert.equal(triage(entry(good, { state: '20261127T030501Z' }), SUB).kind, 'not-requested');
  assert.equal(triage(entry(good, { state: undefined }), SUB).kind, 'not-requested');
  for (const mode of ['snapshotting', 'snapshotted', 'initialized', 'deleted', 'retained']) {
    assert.deepEqual(triage(entry(good, { mode }), SUB), { kind: 'echo', mode });
  }
  assert.deepEqual(triage(entry(`sstVirtualMachine=vm-1,ou=virtual machines,${SUB}`), SUB), { kind: 'not-a-leaf', misplacedRequest: true });
  assert.deepEqual(triage(entry(`ou=backup,ou=configuration,${SUB}`, { mode: undefined }), SUB), { kind: 'not-a-leaf', misplacedRequest: false });
  const elsewhere = `ou=20261127T030000Z,ou=backup,sstVirtualMachine=vm-1,ou=virtual machines,ou=other,${SUB}`;
  assert.equal(triage(entry(elsewhere), SUB).kind, 'misplaced');
});

test('decide: the dispatch, or the code to answer', () => {
  const leaf = parseLeafDn(good)!;
  const d = decide(entry(good, { mode: 'merge' }), leaf, TODAY);
  assert.equal(d.kind, 'dispatch');
  assert.deepEqual(decide(entry(good, { mode: 'frobnicate' }), leaf, TODAY), { kind: 'answer', code: 18, reason: 'unknown sstProvisioningMode "frobnicate"' });
  assert.equal((decide(entry(good, { mode: undefined }), leaf, TODAY) as { code: number }).code, 18);
  for (const date of ['2026-11-27', '20261331', '20260230', 'today', '1']) {
    assert.equal((decide(entry(good, { executionDate: date }), leaf, TODAY) as { code: number }).code, 18, date);
  }
  assert.equal(decide(entry(good, { executionDate: '0' }), leaf, TODAY).kind, 'dispatch');
  assert.equal(decide(entry(good, { executionDate: TODAY }), leaf, TODAY).kind, 'dispatch');
  assert.deepEqual(decide(entry(good, { executionDate: '20261128' }), leaf, TODAY), { kind: 'defer', until: '20261128' });
  assert.deepEqual(decide(entry(good, { executionDate: '20261126' }), leaf, TODAY), { kind: 'expired', date: '20261126' });
});

test('decide: names that could escape the backup directory or a filter are answered 39', () => {
  const climbing = `${formatRdn('ou', '..')},${vmBackupDn(SUB, 'vm-1')}`;
  const evilVm = `${formatRdn('ou', '20261127T030000Z')},${vmBackupDn(SUB, 'a*)(sstNode=*')}`;
  const slash = `${formatRdn('ou', '20261127T030000Z')},${vmBackupDn(SUB, '../../etc')}`;
  for (const dn of [climbing, evilVm, slash]) {
    const t = triage(entry(dn), SUB);
    assert.equal(t.kind, 'candidate', dn);
    const d = decide(entry(dn), (t as { leaf: ReturnType<typeof parseLeafDn> & object }).leaf, TODAY);
    assert.equal((d as { code: number }).code, 39, dn);
  }
});

test('localDate is the local calendar date, as `date +%Y%m%d`', () => {
  const d = new Date(2026, 0, 2, 23, 59);
  assert.equal(localDate(d), '20260102');
});
