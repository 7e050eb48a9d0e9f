/**
 * The stoney cloud protocol on one backup leaf, as every leaf workflow speaks it (docs/ldap-protocol.md):
 *
 * - `begin(mode)`: the `…ing` answer. The first one locks the leaf: a leaf that cannot be written
 *   ends the workflow with CANNOT_LOCK_MACHINE (22) before anything else happens.
 * - `done(mode, …)`: the `…ed` answer, return value 0 and the durations in one modify, with the
 *   processed stamp when the request is complete.
 * - `fail(error, …)`: the exit code on the leaf in the `…ing` mode, stamped processed (no endless
 *   replays, as the original's framework), the code in the search attributes, the failure
 *   notification (workflows/notify.ts: mail, webhook), and the workflow failure with that code.
 */
import { log, proxyActivities, proxyLocalActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control/index.js';
import { Code } from '../core/exit-codes.js';
import { codeOf, DIRECTORY_RETRY, failure, messageOf } from '../core/failures.js';
import { endedChanges, failedChanges, processedChanges, startedChanges, type Phase } from '../core/provisioning.js';
import { SA } from '../core/search-attributes.js';
import { notifyFailure } from './notify.js';

/** The control worker's directory activities, as every workflow calls them. */
export const directory = proxyActivities<ControlActivities>({ startToCloseTimeout: '2 minutes', retry: DIRECTORY_RETRY });

/**
 * The same directory steps as local activities: run by the control worker inside the workflow task
 * that asks for them, with no round trip through the server's task queue. For the short answers a
 * backup writes between its node steps while it holds a node slot (a round trip there is node
 * time lost; BENCHMARKS.md, "A fleet"). Retried in the worker with the same policy.
 */
export const localDirectory = proxyLocalActivities<ControlActivities>({ startToCloseTimeout: '2 minutes', retry: DIRECTORY_RETRY });

export class LeafProtocol {
  private locked = false;

  /** The mode of the step now running (`…ing`): a failure is answered in it. */
  mode: string;

  /** How the answers after the first are written (`localDirectory` for a backup holding its node slot). */
  answers: typeof directory = directory;

  constructor(
    readonly leafDn: string,
    firstMode: string,
    /** Told the code before the failure is written (the workflow's own progress). */
    private readonly onFailure: (code: number) => void = () => undefined,
  ) {
    this.mode = firstMode;
  }

  async begin(mode: string = this.mode): Promise<void> {
    this.mode = mode;
    if (this.locked) {
      await this.answers.updateLeaf(this.leafDn, startedChanges(mode));
      return;
    }
    try {
      await directory.updateLeaf(this.leafDn, startedChanges(mode));
    } catch (e) {
      throw failure(Code.CANNOT_LOCK_MACHINE, `cannot lock the leaf ${this.leafDn}: ${messageOf(e)}`, { leafDn: this.leafDn });
    }
    this.locked = true;
  }

  async done(mode: string, o: { times?: Partial<Record<Phase, number>>; processed?: boolean } = {}): Promise<void> {
    await this.answers.updateLeaf(this.leafDn, { ...endedChanges(mode, 0, o.times), ...(o.processed ? processedChanges(new Date()) : {}) });
  }

  async fail(error: unknown, times?: Partial<Record<Phase, number>>): Promise<never> {
    const code = codeOf(error);
    this.onFailure(code);
    upsertSearchAttributes([{ key: SA.exitCode, value: code }]);
    await directory
      .updateLeaf(this.leafDn, { ...failedChanges(this.mode, code, times), ...processedChanges(new Date()) })
      .catch((e) => log.error('cannot write the failure to the leaf', { leafDn: this.leafDn, error: messageOf(e) }));
    await notifyFailure({ code, message: messageOf(error), leaf: this.leafDn });
    throw failure(code, messageOf(error), { leafDn: this.leafDn, mode: this.mode });
  }
}
