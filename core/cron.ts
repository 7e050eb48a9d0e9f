/**
 * The backup schedule of a VM (sstCron* on its effective configuration entry) as a five-field cron
 * expression for a Temporal Schedule, with fc-brokerd's validity rules (docs/ldap-protocol.md, the scheduler):
 * sstCronActive must be TRUE, every field set, sstCronMinute not '*' (a backup every minute is a
 * typo, not a plan), and one of sstCronDay / sstCronDayOfWeek '*' (cron's "either day matches"
 * rule for two restricted day fields is not implemented by Temporal, and the broker refused it too).
 *
 * The broker read each field with atoi(), i.e. one number, and took the month as 0-based; this
 * reads the usual cron syntax (numbers, lists, ranges, steps; months 1-12, days of week 0-7 with
 * 0 and 7 = Sunday), a superset for every value the vm-manager writes. Anything else is refused
 * with a reason, never guessed. Pure.
 */
import type { CronSchedule } from './backup-config.js';

interface FieldRule {
  attribute: string;
  min: number;
  max: number;
}

const FIELDS = {
  minute: { attribute: 'sstCronMinute', min: 0, max: 59 },
  hour: { attribute: 'sstCronHour', min: 0, max: 23 },
  day: { attribute: 'sstCronDay', min: 1, max: 31 },
  month: { attribute: 'sstCronMonth', min: 1, max: 12 },
  dayOfWeek: { attribute: 'sstCronDayOfWeek', min: 0, max: 7 },
} as const satisfies Record<string, FieldRule>;

type FieldName = keyof typeof FIELDS;
const ORDER: FieldName[] = ['minute', 'hour', 'day', 'month', 'dayOfWeek'];

export type CronResult =
  | { ok: true; expression: string }
  | { ok: false; reason: string };

class CronFieldError extends Error {}

/** The values one field selects, or an error naming the attribute and the bad value. */
export function expandField(name: FieldName, text: string): number[] {
  const rule = FIELDS[name];
  const fail = (detail: string): never => {
    throw new CronFieldError(`${rule.attribute} "${text}": ${detail}`);
  };
  const number = (s: string): number => {
    if (!/^\d{1,2}$/.test(s)) fail(`"${s}" is not a number`);
    const n = Number(s);
    if (n < rule.min || n > rule.max) fail(`${n} is outside ${rule.min}-${rule.max}`);
    return n;
  };
  const selected = new Set<number>();
  if (text.trim() === '') fail('empty');
  for (const token of text.trim().split(',')) {
    const m = /^(\*|\d{1,2}(?:-\d{1,2})?)(?:\/(\d{1,2}))?$/.exec(token);
    if (!m) fail(`"${token}" is not a number, range, list or step`);
    const [, base, stepText] = m!;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) fail('a step must be at least 1');
    let from: number;
    let to: number;
    if (base === '*') [from, to] = [rule.min, rule.max];
    else if (base!.includes('-')) {
      const [a, b] = base!.split('-') as [string, string];
      [from, to] = [number(a), number(b)];
      if (from > to) fail(`range ${from}-${to} runs backwards`);
    } else {
      from = number(base!);
      // `5/15` means 5, 20, 35, 50 in most crons; a lone number is just itself
      to = stepText === undefined ? from : rule.max;
    }
    for (let v = from; v <= to; v += step) selected.add(name === 'dayOfWeek' && v === 7 ? 0 : v);
  }
  return [...selected].sort((a, b) => a - b);
}

function isEverything(name: FieldName, values: number[]): boolean {
  const { min, max } = FIELDS[name];
  const span = name === 'dayOfWeek' ? 7 : max - min + 1; // 0 and 7 are the same day
  return values.length === span;
}

/** Compact text for a value set: `*`, or a list of ranges (`1-5,7`). */
function formatField(name: FieldName, values: number[]): string {
  if (isEverything(name, values)) return '*';
  const parts: string[] = [];
  for (let i = 0; i < values.length; ) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j]! + 1) j++;
    parts.push(j === i ? `${values[i]}` : `${values[i]}-${values[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** The schedule fc-brokerd would have run for this configuration, or why there is none. */
export function cronExpression(cron: CronSchedule | undefined): CronResult {
  if (!cron) return { ok: false, reason: 'the effective configuration entry has no sstCronObjectClass' };
  if (!cron.active) return { ok: false, reason: 'sstCronActive is not TRUE' };
  const values = {} as Record<FieldName, number[]>;
  try {
    for (const name of ORDER) values[name] = expandField(name, cron[name]);
  } catch (e) {
    if (e instanceof CronFieldError) return { ok: false, reason: e.message };
    throw e;
  }
  if (isEverything('minute', values.minute)) {
    return { ok: false, reason: `sstCronMinute "${cron.minute}" selects every minute (fc-brokerd: must not be '*')` };
  }
  if (!isEverything('day', values.day) && !isEverything('dayOfWeek', values.dayOfWeek)) {
    return { ok: false, reason: `sstCronDay "${cron.day}" and sstCronDayOfWeek "${cron.dayOfWeek}" are both restricted; one must be '*'` };
  }
  return { ok: true, expression: ORDER.map((n) => formatField(n, values[n])).join(' ') };
}
