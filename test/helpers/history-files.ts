/**
 * The stored workflow histories the replay test replays (docs/upgrades.md): one file per recorded
 * run, `test/histories/<workflow>/<scenario>.json`, written by `npm run record-histories`; histories
 * kept from earlier builds lie below `test/histories/previous/<label>/`.
 *
 * A file is the run's facts and its history in Temporal's JSON form (`historyToJSON`, the form
 * `temporal workflow show --output json` prints), one event per line (`zcat … | less` reads it),
 * gzipped: as JSON the set is about 900 KB (each event ~750 bytes: base64 payloads, times, worker
 * metadata), gzipped about 120 KB; and since every recording changes names, times and IDs in every
 * event, a text diff of a re-recording would show nothing worth reading anyway. The reader also
 * takes plain `.json` (a history added by hand).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { historyFromJSON, historyToJSON, type History } from '@temporalio/common/lib/proto-utils.js';
import { PROJECT_ROOT } from '../../stack/paths.js';

export const HISTORIES_DIR = join(PROJECT_ROOT, 'test', 'histories');

export interface HistoryFacts {
  /** Histories do not carry the workflow ID; workflows that read it replay with the recorded one. */
  workflowId: string;
  workflowType: string;
  /** What the run shows (which path of the workflow it takes). */
  about: string;
  /** The run ends failed on purpose (a failure scenario). */
  fails?: boolean;
  recorded: { at: string; commit: string; sdk: string; server: string };
}

export interface StoredHistory extends HistoryFacts {
  /** Path below HISTORIES_DIR, without the extension, e.g. `backup/one-go`. */
  name: string;
  history: History;
}

/** The file's text: the facts, then the history with one event per line. */
function render(facts: HistoryFacts, history: History): string {
  const events = (JSON.parse(historyToJSON(history)) as { events: unknown[] }).events;
  return `{${Object.entries(facts).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')},\n"history":{"events":[\n${events.map((e) => JSON.stringify(e)).join(',\n')}\n]}}\n`;
}

/** Writes `<dir>/<name>.json.gz`, replacing a plain `.json` of that name; returns the path, its size in bytes and the number of events. */
export function writeStoredHistory(name: string, facts: HistoryFacts, history: History, dir = HISTORIES_DIR): { path: string; bytes: number; events: number } {
  const text = render(facts, history);
  const base = join(dir, `${name}.json`);
  mkdirSync(dirname(base), { recursive: true });
  rmSync(base, { force: true });
  rmSync(`${base}.gz`, { force: true });
  const data = gzipSync(text, { level: 9 });
  const path = `${base}.gz`;
  writeFileSync(path, data);
  return { path, bytes: data.length, events: history.events?.length ?? 0 };
}

function filesBelow(dir: string): string[] {
  const out: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesBelow(path));
    else if (e.name.endsWith('.json') || e.name.endsWith('.json.gz')) out.push(path);
  }
  return out;
}

export function readStoredHistory(path: string, dir = HISTORIES_DIR): StoredHistory {
  const raw = readFileSync(path);
  const text = path.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  const { history, ...facts } = JSON.parse(text) as HistoryFacts & { history: unknown };
  return { ...facts, name: relative(dir, path).replace(/\.json(\.gz)?$/, ''), history: historyFromJSON(history) };
}

/** Every stored history below `dir` (current and previous builds), in path order. */
export function readStoredHistories(dir = HISTORIES_DIR): StoredHistory[] {
  return filesBelow(dir).map((p) => readStoredHistory(p, dir));
}

/** The current set's files (not those kept below `previous/`). */
export function currentHistoryFiles(dir = HISTORIES_DIR): string[] {
  return filesBelow(dir).filter((p) => !relative(dir, p).startsWith(`previous/`));
}
