/**
 * Retention (core/retention.ts): keep-last plus the newest of each of the last D days, W ISO weeks
 * and M months that have an iteration. The fixture: three iterations a day (03:00, 11:00, 19:00
 * UTC) for ten ISO weeks, Monday 2025-11-10 to Sunday 2026-01-18, across a year end where ISO week
 * 2026-W01 begins on Monday 2025-12-29. Expected values are written out, not computed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBackupConfiguration } from '../../core/backup-config.js';
import { makeEntry } from '../../core/ldap-entry.js';
import { leafTimestamp } from '../../core/naming.js';
import {
  decideRetention, describeRetention, isoWeek, iterationsBeyond, keepLast, retentionPolicy, type RetentionPolicy,
} from '../../core/retention.js';

const DAY = 86_400_000;
const START = Date.UTC(2025, 10, 10); // Monday 2025-11-10
const HOURS = [3, 11, 19];

/** Three a day for `days` days from START, oldest first. */
function stamped(days = 70): string[] {
  const ous: string[] = [];
  for (let d = 0; d < days; d++) for (const h of HOURS) ous.push(leafTimestamp(new Date(START + d * DAY + h * 3_600_000)));
  return ous;
}
const all = stamped();
const policy = (p: Partial<RetentionPolicy>): RetentionPolicy => ({ last: 1, daily: 0, weekly: 0, monthly: 0, ...p });
const kept = (ous: readonly string[], p: RetentionPolicy) => decideRetention(ous, p).keep.map((k) => k.ou);
/** Kept and forgotten together are exactly the input: nothing lost, nothing twice. */
function partition(ous: readonly string[], p: RetentionPolicy): void {
  const d = decideRetention(ous, p);
  assert.deepEqual([...d.keep.map((k) => k.ou), ...d.forget].sort(), [...new Set(ous)].sort());
}

test('the fixture: 210 iterations over ten ISO weeks, across the year end', () => {
  assert.equal(all.length, 210);
  assert.equal(all[0], '20251110T030000Z');
  assert.equal(all.at(-1), '20260118T190000Z');
  assert.equal(new Set(all.map((ou) => isoWeek(new Date(Date.UTC(+ou.slice(0, 4), +ou.slice(4, 6) - 1, +ou.slice(6, 8)))))).size, 10);
});

test('ISO weeks: Monday to Sunday in UTC; the week-numbering year is that of its Thursday', () => {
  assert.equal(isoWeek(new Date('2025-12-28T23:59:59Z')), '2025-W52'); // a Sunday
  assert.equal(isoWeek(new Date('2025-12-29T00:00:00Z')), '2026-W01'); // the Monday after
  assert.equal(isoWeek(new Date('2026-01-04T12:00:00Z')), '2026-W01');
  assert.equal(isoWeek(new Date('2021-01-01T00:00:00Z')), '2020-W53'); // a Friday of 2020's last week
  assert.equal(isoWeek(new Date('2024-12-30T00:00:00Z')), '2025-W01');
  assert.equal(isoWeek(new Date('2025-11-10T03:00:00Z')), '2025-W46');
});

test('without calendar rules it is keep-last, as before: the newest N (at least 1), oldest deleted first', () => {
  for (const n of [0, 1, 2, 5, 209, 210, 500]) {
    const expectKept = Math.min(all.length, Math.max(1, n));
    const forget = iterationsBeyond(all, n);
    assert.deepEqual(forget, all.slice(0, all.length - expectKept), `keep ${n}`);
    assert.deepEqual(iterationsBeyond(all, keepLast(n)), forget, 'a bare count is keep-last');
    assert.deepEqual(decideRetention(all, keepLast(n)).keep.map((k) => k.rules), Array(expectKept).fill(['last']));
  }
  assert.deepEqual(iterationsBeyond([], 3), []);
});

test('keep-daily: the newest iteration of each of the last D days', () => {
  assert.deepEqual(kept(all, policy({ daily: 7 })), [
    '20260118T190000Z', '20260117T190000Z', '20260116T190000Z', '20260115T190000Z',
    '20260114T190000Z', '20260113T190000Z', '20260112T190000Z',
  ]);
  assert.deepEqual(decideRetention(all, policy({ daily: 2 })).keep, [
    { ou: '20260118T190000Z', rules: ['last', 'daily'] },
    { ou: '20260117T190000Z', rules: ['daily'] },
  ]);
  // a day's earlier iterations go even when that day is kept
  assert.ok(iterationsBeyond(all, policy({ daily: 7 })).includes('20260117T110000Z'));
  partition(all, policy({ daily: 7 }));
  assert.equal(decideRetention(all, policy({ daily: 70 })).keep.length, 70);
  assert.equal(decideRetention(all, policy({ daily: 1000 })).keep.length, 70, 'one per day, no more than there are days');
});

test('keep-daily counts UTC days: 23:59:59Z and 00:00:00Z are two days', () => {
  const ous = ['20260110T235959Z', '20260111T000000Z', '20260111T000001Z'];
  assert.deepEqual(kept(ous, policy({ daily: 2 })), ['20260111T000001Z', '20260110T235959Z']);
});

test('keep-weekly: the newest of each of the last W ISO weeks, across the year end', () => {
  // Sundays at 19:00: 2026-W03, W02, W01 (29 Dec to 4 Jan), 2025-W52
  assert.deepEqual(kept(all, policy({ weekly: 4 })), ['20260118T190000Z', '20260111T190000Z', '20260104T190000Z', '20251228T190000Z']);
  assert.equal(decideRetention(all, policy({ weekly: 52 })).keep.length, 10);
  // only up to Friday 2 Jan: that is W01's newest, not Wednesday 31 Dec (a calendar-year week would say so)
  const toJan2 = stamped(54);
  assert.equal(toJan2.at(-1), '20260102T190000Z');
  assert.deepEqual(kept(toJan2, policy({ weekly: 2 })), ['20260102T190000Z', '20251228T190000Z']);
  partition(all, policy({ weekly: 4 }));
});

test('keep-monthly: the newest of each of the last M months; no extra oldest one when fewer months exist', () => {
  assert.deepEqual(kept(all, policy({ monthly: 2 })), ['20260118T190000Z', '20251231T190000Z']);
  assert.deepEqual(kept(all, policy({ monthly: 12 })), ['20260118T190000Z', '20251231T190000Z', '20251130T190000Z']);
  partition(all, policy({ monthly: 12 }));
});

test('rules combined: an iteration is kept if any rule keeps it, each rule counts on its own', () => {
  const d = decideRetention(all, { last: 3, daily: 7, weekly: 4, monthly: 6 });
  assert.deepEqual(d.keep, [
    { ou: '20260118T190000Z', rules: ['last', 'daily', 'weekly', 'monthly'] },
    { ou: '20260118T110000Z', rules: ['last'] },
    { ou: '20260118T030000Z', rules: ['last'] },
    { ou: '20260117T190000Z', rules: ['daily'] },
    { ou: '20260116T190000Z', rules: ['daily'] },
    { ou: '20260115T190000Z', rules: ['daily'] },
    { ou: '20260114T190000Z', rules: ['daily'] },
    { ou: '20260113T190000Z', rules: ['daily'] },
    { ou: '20260112T190000Z', rules: ['daily'] },
    { ou: '20260111T190000Z', rules: ['weekly'] },
    { ou: '20260104T190000Z', rules: ['weekly'] },
    { ou: '20251231T190000Z', rules: ['monthly'] },
    { ou: '20251228T190000Z', rules: ['weekly'] },
    { ou: '20251130T190000Z', rules: ['monthly'] },
  ]);
  assert.equal(d.forget.length, 210 - 14);
  assert.equal(d.forget[0], '20251110T030000Z', 'oldest first');
  assert.ok(d.forget.every((ou, i) => i === 0 || d.forget[i - 1]! < ou), 'forget is sorted oldest first');
  partition(all, { last: 3, daily: 7, weekly: 4, monthly: 6 });
  // weekly and monthly without daily: the month's newest may be a weekday
  assert.deepEqual(kept(all, policy({ weekly: 2, monthly: 2 })), ['20260118T190000Z', '20260111T190000Z', '20251231T190000Z']);
});

test('the newest finished iteration is always kept, whatever the counts', () => {
  assert.deepEqual(kept(all, { last: 0, daily: 0, weekly: 0, monthly: 0 }), ['20260118T190000Z']);
  assert.deepEqual(kept(all, { last: -4, daily: -1, weekly: 0, monthly: 0 }), ['20260118T190000Z']);
  assert.deepEqual(kept(['20250101T000000Z'], { last: 0, daily: 3, weekly: 3, monthly: 3 }), ['20250101T000000Z']);
});

test('periods without an iteration use no slot: old iterations are not lost by time passing alone', () => {
  // backups stopped for a month after 20 Dec, then one on 18 Jan: daily 3 still keeps three days
  const gap = [...stamped(41), '20260118T030000Z'];
  assert.equal(stamped(41).at(-1), '20251220T190000Z');
  assert.deepEqual(kept(gap, policy({ daily: 3 })), ['20260118T030000Z', '20251220T190000Z', '20251219T190000Z']);
  // an ISO week with no iteration (W50: 8 to 14 Dec) is skipped, not counted
  const noW50 = all.filter((ou) => !(ou >= '20251208' && ou < '20251215'));
  assert.deepEqual(kept(noW50, policy({ weekly: 7 })).slice(-3), ['20251221T190000Z', '20251207T190000Z', '20251130T190000Z']);
});

test('input order and duplicates do not matter; anything that is not a UTC timestamp is left alone', () => {
  const shuffled = [...all].reverse().concat(all.slice(100, 110), ['lost+found', '20261331T000000Z', 'backup.tmp']);
  const p = { last: 2, daily: 5, weekly: 3, monthly: 2 };
  assert.deepEqual(decideRetention(shuffled, p), decideRetention(all, p));
  const d = decideRetention(shuffled, p);
  for (const stranger of ['lost+found', '20261331T000000Z', 'backup.tmp']) {
    assert.ok(!d.forget.includes(stranger) && !d.keep.some((k) => k.ou === stranger), stranger);
  }
});

test('the policy comes from the effective configuration; absent attributes leave keep-last alone', () => {
  const OC = ['top', 'organizationalUnit', 'sstVirtualizationBackupObjectClass'];
  const plain = parseBackupConfiguration(makeEntry('ou=backup', { objectClass: OC, sstBackupNumberOfIterations: '4' }));
  assert.deepEqual(retentionPolicy(plain.config), keepLast(4));
  assert.deepEqual(iterationsBeyond(all, retentionPolicy(plain.config)), iterationsBeyond(all, 4));
  assert.equal(plain.origin['keepDaily'], 'default');
  const full = parseBackupConfiguration(makeEntry('ou=backup', {
    objectClass: OC, sstBackupKeepDaily: '7', sstBackupKeepWeekly: '4', sstBackupKeepMonthly: '0',
  }));
  assert.deepEqual(retentionPolicy(full.config), { last: 1, daily: 7, weekly: 4, monthly: 0 });
  assert.equal(full.origin['keepDaily'], 'entry');
  assert.equal(full.origin['keepMonthly'], 'entry');
});

test('the summary line says every rule in use', () => {
  assert.equal(describeRetention(3), 'the newest 3');
  assert.equal(describeRetention(0), 'the newest 1');
  assert.equal(describeRetention({ last: 2, daily: 7, weekly: 1, monthly: 12 }), 'the newest 2, one a day for 7 days, one a week for 1 week, one a month for 12 months');
});
