import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BEGINNING_CSN, cookiePosition, cookieRid, csnMinusSeconds, csnOf, formatCookie, isCsn, maxCsn } from '../../core/csn.js';

const CSN = '20261127021447.601862Z#000000#000#000000';

test("the original's cookie format round-trips; the default cookie means the beginning", () => {
  assert.equal(cookiePosition('rid=001,csn='), BEGINNING_CSN);
  assert.equal(cookiePosition(undefined), BEGINNING_CSN);
  assert.equal(cookiePosition(''), BEGINNING_CSN);
  assert.equal(cookiePosition(formatCookie(CSN)), CSN);
  assert.equal(cookiePosition(`rid=007,csn=${CSN}\n`), CSN);
  assert.equal(cookieRid('rid=007,csn='), '007');
  assert.equal(cookieRid('garbage'), '001');
  assert.equal(cookiePosition('garbage'), BEGINNING_CSN);
});

test('CSNs: recognised, old format converted, ordered as strings, moved back in time', () => {
  assert.ok(isCsn(CSN));
  assert.equal(isCsn('20261127021447Z'), false);
  assert.equal(csnOf('rid=001,csn=20130101120000Z#000001#00#000000'), '20130101120000.000000Z#000001#000#000000');
  assert.ok(BEGINNING_CSN < CSN);
  assert.equal(maxCsn(CSN, BEGINNING_CSN), CSN);
  assert.equal(csnMinusSeconds(CSN, 3), '20261127021444.601862Z#000000#000#000000');
  assert.equal(csnMinusSeconds('20270101000001.000000Z#000005#000#000000', 2), '20261231235959.000000Z#000000#000#000000');
  assert.equal(csnMinusSeconds(BEGINNING_CSN, 3), BEGINNING_CSN);
  assert.ok(csnMinusSeconds(CSN, 3) < CSN);
});
