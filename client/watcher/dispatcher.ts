/**
 * Carries out what a changed leaf asks for: the node check against the VM's sstNode, then a
 * workflow started under the leaf's ID (a duplicate of a running request attaches to it), or an
 * answer written on the leaf (18 for a mode nobody knows, 39 for a name that could escape the backup
 * directory, 23 for a VM without a node). Problems of the site rather than the leaf (LDAP or
 * Temporal unreachable, Temporal refusing the start) are thrown as `Transient`: the feed retries
 * the entry with backoff and never loses it.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { StoneyDirectoryModel } from '../../core/directory-model.js';
import { temporalReusePolicy, workflowIdFor, workflowInput, type Dispatch } from '../../core/dispatch.js';
import { Code } from '../../core/exit-codes.js';
import { codeOf } from '../../core/failures.js';
import type { LeafRef } from '../../core/naming.js';
import { endedChanges, processedChanges, type LeafChanges } from '../../core/provisioning.js';
import { SA } from '../../core/search-attributes.js';
import { decide, localDate, triage, type ChangedEntry } from './classify.js';
import { errorText, type Log } from './log.js';

/** A problem that passes: retry the entry later. */
export class Transient extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Transient';
  }
}

export type Outcome =
  | { kind: 'ignored'; why: string }
  | { kind: 'not-ours'; node: string }
  | { kind: 'started'; workflowId: string; runId: string }
  | { kind: 'already-done'; workflowId: string }
  | { kind: 'answered'; code: number }
  | { kind: 'deferred'; until: string }
  | { kind: 'directory-change' };

export interface DispatcherDeps {
  temporal: Client;
  /** The control task queue the workflows run on. */
  taskQueue: string;
  /** The VM lookups (node check) and the answers written on leaves, on the watcher's bound connection. */
  directory: StoneyDirectoryModel;
  serviceSubtree: string;
  /** Nodes this site runs workers for: a VM whose sstNode is another is somebody else's. */
  nodes: ReadonlySet<string>;
  log: Log;
  /** How long one start may take before it counts as Temporal being away (default 10 s). */
  startTimeoutMs?: number;
  /** Aborted when the watcher stops: ends a start in flight (a dead Temporal would hold it until its deadline). */
  stopping: AbortSignal;
  now?: () => Date;
}

/** gRPC codes of trouble that passes by itself: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE, UNKNOWN. */
const PASSING_GRPC = new Set([2, 4, 8, 10, 13, 14]);

function grpcCode(e: unknown): number | undefined {
  for (let x: unknown = e, depth = 0; x && depth < 5; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

export class RequestDispatcher {
  private readonly reportedDeferrals = new Set<string>();

  constructor(private readonly deps: DispatcherDeps) {}

  async handle(entry: ChangedEntry): Promise<Outcome> {
    const { log, serviceSubtree } = this.deps;
    const t = triage(entry, serviceSubtree);
    switch (t.kind) {
      case 'not-a-leaf':
        if (t.misplacedRequest) log.warn('a request outside any VM backup subtree: ignored', { dn: entry.dn, mode: entry.mode });
        return { kind: 'directory-change' };
      case 'not-requested':
        return { kind: 'ignored', why: 'state is not 0' };
      case 'misplaced':
        log.warn('a backup leaf outside the service subtree\'s virtual machines: ignored', { dn: entry.dn, reason: t.reason });
        return { kind: 'ignored', why: t.reason };
      case 'echo':
        return { kind: 'ignored', why: `echo ${t.mode}` };
    }
    const leaf = t.leaf;
    const node = await this.nodeOf(leaf);
    if (node === null) {
      log.warn('the leaf\'s VM has no sstNode: answered 23', { dn: entry.dn });
      return this.answer(leaf, Code.CANNOT_FIND_MACHINE, `VM entry ${leaf.vmDn} has no sstNode`);
    }
    if (node === undefined) return { kind: 'ignored', why: 'the VM entry is gone' };
    if (!this.deps.nodes.has(node)) {
      log.debug('a leaf of another node: ignored', { dn: entry.dn, node });
      return { kind: 'not-ours', node };
    }
    const decision = decide(entry, leaf, localDate(this.now()));
    switch (decision.kind) {
      case 'answer':
        log.warn(`bad request: answered ${decision.code}`, { dn: entry.dn, reason: decision.reason });
        return this.answer(leaf, decision.code, decision.reason);
      case 'defer': {
        const key = `${entry.dn}@${entry.csn}`;
        if (!this.reportedDeferrals.has(key)) log.info(`request for ${decision.until}: waits for its day`, { dn: entry.dn, mode: entry.mode });
        this.reportedDeferrals.add(key);
        return { kind: 'deferred', until: decision.until };
      }
      case 'expired':
        log.warn(`request dated ${decision.date}, a day that has passed: not processed (as the original)`, { dn: entry.dn, mode: entry.mode });
        return { kind: 'ignored', why: 'expired' };
      case 'dispatch':
        return this.start(leaf, decision.dispatch);
    }
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  /** The VM's sstNode; null when it has none; undefined when the entry is gone. */
  private async nodeOf(leaf: LeafRef): Promise<string | null | undefined> {
    let vm;
    try {
      vm = await this.deps.directory.vm(leaf.vm);
    } catch (e) {
      throw new Transient(`cannot read ${leaf.vmDn}: ${errorText(e)}`, { cause: e });
    }
    if (!vm) return undefined;
    return vm.node ?? null;
  }

  private async start(leaf: LeafRef, dispatch: Dispatch): Promise<Outcome> {
    const { temporal, taskQueue, log } = this.deps;
    const workflowId = workflowIdFor(leaf, dispatch);
    try {
      const deadline = Date.now() + (this.deps.startTimeoutMs ?? 10_000);
      const handle = await temporal.withAbortSignal(this.deps.stopping, () => temporal.withDeadline(deadline, () => temporal.workflow.start(dispatch.workflow, {
        taskQueue,
        workflowId,
        args: [workflowInput(leaf.dn, dispatch)],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: temporalReusePolicy(dispatch),
        typedSearchAttributes: [
          { key: SA.vm, value: leaf.vm },
          { key: SA.operation, value: dispatch.operation },
          { key: SA.leaf, value: leaf.dn },
        ],
        staticSummary: `${dispatch.mode} of ${leaf.vm} (${leaf.ou})`,
      })));
      log.info(`${dispatch.mode}: ${dispatch.workflow} ${workflowId}`, { dn: leaf.dn, workflowId, runId: handle.firstExecutionRunId });
      return { kind: 'started', workflowId, runId: handle.firstExecutionRunId };
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError) return this.alreadyDone(leaf, dispatch, workflowId);
      // Temporal away, or the site misconfigured (namespace, search attributes not registered yet):
      // never the leaf's fault, so the request is kept and retried, not answered with an error
      const code = grpcCode(e);
      const why = code === undefined || PASSING_GRPC.has(code) ? 'Temporal unreachable' : `Temporal refused it (gRPC ${code})`;
      throw new Transient(`cannot start ${workflowId}: ${why}: ${errorText(e)}`, { cause: e });
    }
  }

  /**
   * The request's workflow already ran and completed (only a completed run refuses a new start):
   * the step ran once, and the leaf gets that run's answer if it still shows the request.
   */
  private async alreadyDone(leaf: LeafRef, dispatch: Dispatch, workflowId: string): Promise<Outcome> {
    const current = await this.deps.directory.leaf(leaf.dn).catch((e: unknown) => {
      throw new Transient(`cannot read ${leaf.dn}: ${errorText(e)}`, { cause: e });
    });
    if (current && current.state === '0' && current.mode === dispatch.mode) {
      this.deps.log.info(`${dispatch.mode} already done by ${workflowId}; not run again, its answer written`, { dn: leaf.dn, workflowId });
      await this.write(leaf, { ...endedChanges(dispatch.doneMode, 0), ...processedChanges(this.now()) });
    }
    return { kind: 'already-done', workflowId };
  }

  private async answer(leaf: LeafRef, code: number, reason: string): Promise<Outcome> {
    await this.write(leaf, { sstProvisioningReturnValue: String(code), ...processedChanges(this.now()) });
    this.deps.log.debug('answer written', { dn: leaf.dn, code, reason });
    return { kind: 'answered', code };
  }

  private async write(leaf: LeafRef, changes: LeafChanges): Promise<void> {
    try {
      await this.deps.directory.answerLeaf(leaf.dn, changes);
    } catch (e) {
      // the leaf may have been removed meanwhile; anything else is the directory being away
      if (codeOf(e) === Code.CANNOT_WORK_ON_UNDEFINED_OBJECT) return;
      throw new Transient(`cannot write to ${leaf.dn}: ${errorText(e)}`, { cause: e });
    }
  }
}

