/**
 * The shipped monitoring files (deploy/prometheus/kvm-backup.rules.yml, deploy/grafana/kvm-backup-dashboard.json):
 * their PromQL expressions, the metric names in them, and promtool to check them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const RULES_FILE = join(REPO, 'deploy/prometheus/kvm-backup.rules.yml');
export const RULES_TEST_FILE = join(REPO, 'deploy/prometheus/kvm-backup.rules.test.yml');
export const DASHBOARD_FILE = join(REPO, 'deploy/grafana/kvm-backup-dashboard.json');

/** Series Prometheus makes itself for every target (not served by the worker). */
export const PROMETHEUS_SERIES = new Set(['up']);

export interface Query {
  where: string;
  expr: string;
}

export function ruleExpressions(): Query[] {
  const doc = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: String(r.expr) })));
}

interface Panel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

/** Every panel query, and each template variable's metric (`label_values(<metric>, <label>)`). */
export function dashboardQueries(): Query[] {
  const d = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as { panels: Panel[]; templating?: { list: Array<{ name: string; query?: unknown }> } };
  const out: Query[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating?.list ?? []) {
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    const m = q ? /^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$/.exec(q.trim()) : null;
    if (m) out.push({ where: `variable ${v.name}`, expr: m[1]! });
  }
  return out;
}

const NOT_METRICS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: identifiers outside strings, label matchers, ranges
 * and label lists that are not functions, aggregations or keywords. Grafana variables are dropped.
 */
export function metricNamesOf(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, ' ')
    .replace(/\boffset\s+-?[0-9a-z]+/g, ' ');
  const names = new Set<string>();
  for (const m of e.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const at = m.index!;
    if (at > 0 && /[0-9.]/.test(e[at - 1]!)) continue; // the exponent or unit of a number
    if (e.slice(at + m[0].length).trimStart().startsWith('(')) continue; // a function or an aggregation
    if (NOT_METRICS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

const PROMTOOL_DIR = join(REPO, '.tools', 'promtool');

/**
 * promtool: on the PATH, else from Debian's prometheus package, unpacked (not installed: no service
 * starts) into .tools/promtool once (~19 MB, a second). Undefined where there is no apt-get.
 */
export function promtool(): string | undefined {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return 'promtool';
  } catch {
    // not on the PATH
  }
  const unpacked = join(PROMTOOL_DIR, 'usr', 'bin', 'promtool');
  if (existsSync(unpacked)) return unpacked;
  try {
    execFileSync('apt-get', ['--version'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  mkdirSync(PROMTOOL_DIR, { recursive: true });
  execFileSync('apt-get', ['download', 'prometheus'], { cwd: PROMTOOL_DIR, stdio: 'ignore' });
  const deb = readdirSync(PROMTOOL_DIR).find((f) => f.startsWith('prometheus_') && f.endsWith('.deb'));
  if (!deb) throw new Error('apt-get download prometheus left no .deb');
  execFileSync('dpkg-deb', ['-x', join(PROMTOOL_DIR, deb), PROMTOOL_DIR]);
  // only promtool is needed: the package and the server binary go again
  rmSync(join(PROMTOOL_DIR, deb));
  rmSync(join(PROMTOOL_DIR, 'usr', 'bin', 'prometheus'), { force: true });
  return unpacked;
}
