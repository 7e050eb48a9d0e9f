/**
 * What one changed directory entry means to the watcher (docs/ldap-protocol.md, the original's v0.2.7 semantics), as pure
 * decisions the watcher then carries out. In order:
 *
 * 1. Not a backup leaf by its DN: no request of ours (a request mode on it is logged, since
 *    somebody asked at the wrong place), but a change the scheduler may care about.
 * 2. A leaf whose sstProvisioningState is not 0: processed or never requested; nothing to do.
 * 3. A leaf below a VM subtree other than `<SERVICE_SUBTREE>`'s: logged, nothing written.
 * 4. Echoes of work in progress (`snapshotting`, `snapshotted`, `finished`, …): ignored.
 * 5. Only then the node check (the caller reads the VM's sstNode): another node's leaf is ignored.
 * 6. For our node: an unknown or missing mode, or an execution date that is no date, answers 18;
 *    a VM name or ou that could escape the backup directory answers 39; a date in the future waits
 *    for its day, one in the past is not processed (as the original); everything else dispatches.
 */
import { sameDn } from '../../core/dn.js';
import { ANSWER_MODES, dispatchFor, REQUEST_MODES, type Dispatch } from '../../core/dispatch.js';
import { Code } from '../../core/exit-codes.js';
import { assertLeafOu, assertVmName, NamingError, parseLeafDn, vmDn, type LeafRef } from '../../core/naming.js';

/** The attributes of a changed entry the watcher reads. */
export interface ChangedEntry {
  dn: string;
  csn: string;
  mode?: string;
  state?: string;
  executionDate?: string;
}

export type Triage =
  | { kind: 'not-a-leaf'; misplacedRequest: boolean }
  | { kind: 'not-requested' }
  | { kind: 'misplaced'; reason: string }
  | { kind: 'echo'; mode: string }
  | { kind: 'candidate'; leaf: LeafRef };

/** Steps 1-4: everything that can be told from the entry alone. */
export function triage(entry: ChangedEntry, serviceSubtree: string): Triage {
  const leaf = parseLeafDn(entry.dn);
  if (!leaf) {
    const misplacedRequest = entry.state === '0' && !!entry.mode && (REQUEST_MODES as string[]).includes(entry.mode);
    return { kind: 'not-a-leaf', misplacedRequest };
  }
  if (entry.state !== '0') return { kind: 'not-requested' };
  let expected: string;
  try {
    expected = vmDn(serviceSubtree, leaf.vm);
  } catch {
    return { kind: 'misplaced', reason: 'the VM part of the DN cannot be read' };
  }
  if (!sameDn(leaf.vmDn, expected)) return { kind: 'misplaced', reason: `the VM entry is not ${expected}` };
  if (entry.mode && ANSWER_MODES.has(entry.mode)) return { kind: 'echo', mode: entry.mode };
  return { kind: 'candidate', leaf };
}

export type Decision =
  | { kind: 'dispatch'; dispatch: Dispatch }
  | { kind: 'answer'; code: number; reason: string }
  | { kind: 'defer'; until: string }
  | { kind: 'expired'; date: string };

const DATE = /^\d{8}$/;

/** Step 6, for a leaf of one of our nodes; `today` is the local date YYYYMMDD, as the original compared. */
export function decide(entry: ChangedEntry, leaf: LeafRef, today: string): Decision {
  const dispatch = entry.mode ? dispatchFor(entry.mode) : undefined;
  if (!dispatch) {
    return { kind: 'answer', code: Code.WRONG_STATE_INFORMATION, reason: entry.mode ? `unknown sstProvisioningMode "${entry.mode}"` : 'no sstProvisioningMode' };
  }
  const date = entry.executionDate ?? '0';
  if (date !== '0') {
    if (!DATE.test(date) || !validDate(date)) {
      return { kind: 'answer', code: Code.WRONG_STATE_INFORMATION, reason: `sstProvisioningExecutionDate "${date}" is neither 0 nor a date YYYYMMDD` };
    }
    if (date > today) return { kind: 'defer', until: date };
    if (date < today) return { kind: 'expired', date };
  }
  try {
    assertVmName(leaf.vm);
    assertLeafOu(leaf.ou);
  } catch (e) {
    if (e instanceof NamingError) return { kind: 'answer', code: e.code, reason: e.message };
    throw e;
  }
  return { kind: 'dispatch', dispatch };
}

function validDate(yyyymmdd: string): boolean {
  const [y, m, d] = [Number(yyyymmdd.slice(0, 4)), Number(yyyymmdd.slice(4, 6)), Number(yyyymmdd.slice(6, 8))];
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

/** The local date as the original's `date +%Y%m%d`. */
export function localDate(now: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}`;
}
