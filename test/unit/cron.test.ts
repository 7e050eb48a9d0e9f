import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CronSchedule } from '../../core/backup-config.js';
import { cronExpression, expandField } from '../../core/cron.js';

const cron = (o: Partial<CronSchedule>): CronSchedule => ({ minute: '0', hour: '3', day: '*', month: '*', dayOfWeek: '*', active: true, ...o });

test('the values the vm-manager writes become the same cron expression', () => {
  assert.deepEqual(cronExpression(cron({})), { ok: true, expression: '0 3 * * *' });
  assert.deepEqual(cronExpression(cron({ minute: '30', hour: '2', dayOfWeek: '0' })), { ok: true, expression: '30 2 * * 0' });
  assert.deepEqual(cronExpression(cron({ day: '1', month: '6' })), { ok: true, expression: '0 3 1 6 *' });
});

test('lists, ranges and steps are read; Sunday is 0 or 7', () => {
  assert.deepEqual(expandField('minute', '0,15-17,*/20'), [0, 15, 16, 17, 20, 40]);
  assert.deepEqual(expandField('hour', '5/6'), [5, 11, 17, 23]);
  assert.deepEqual(expandField('dayOfWeek', '7'), [0]);
  assert.deepEqual(cronExpression(cron({ dayOfWeek: '1-5,7' })), { ok: true, expression: '0 3 * * 0-5' });
  assert.deepEqual(cronExpression(cron({ dayOfWeek: '0-7' })), { ok: true, expression: '0 3 * * *' });
});

test("fc-brokerd's rules: active, every field, minute not '*', one day field '*'", () => {
  const reason = (c: CronSchedule | undefined) => {
    const r = cronExpression(c);
    assert.equal(r.ok, false);
    return (r as { reason: string }).reason;
  };
  assert.match(reason(undefined), /no sstCronObjectClass/);
  assert.match(reason(cron({ active: false })), /sstCronActive/);
  assert.match(reason(cron({ minute: '*' })), /every minute/);
  assert.match(reason(cron({ minute: '*/1' })), /every minute/);
  assert.match(reason(cron({ day: '1', dayOfWeek: '1' })), /both restricted/);
  assert.match(reason(cron({ hour: '' })), /sstCronHour "": empty/);
});

test('garbage is refused with the attribute and value, never guessed', () => {
  for (const [field, bad] of [
    ['minute', '60'], ['hour', '24'], ['day', '0'], ['month', '13'], ['dayOfWeek', '8'], ['hour', 'three'],
    ['minute', '5-1'], ['minute', '1/0'], ['hour', '1,,2'], ['hour', '$(reboot)'], ['month', 'JAN'], ['minute', '-1'],
  ] as const) {
    const r = cronExpression(cron({ [field]: bad }));
    assert.equal(r.ok, false, `${field}=${bad}`);
    assert.match((r as { reason: string }).reason, new RegExp(`sstCron`), `${field}=${bad}`);
  }
});
