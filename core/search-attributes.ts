/**
 * Search attributes the workflows set as they move, so the Temporal UI can filter
 * "all running backups on node X" or "failed restores of VM Y". SQLite visibility allows 10
 * Keyword and 3 Int attributes per namespace; these stay well below.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA = {
  vm: defineSearchAttributeKey('KvmVm', SearchAttributeType.KEYWORD),
  pool: defineSearchAttributeKey('KvmPool', SearchAttributeType.KEYWORD),
  node: defineSearchAttributeKey('KvmNode', SearchAttributeType.KEYWORD),
  operation: defineSearchAttributeKey('KvmOperation', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('KvmPhase', SearchAttributeType.KEYWORD),
  snapshotMethod: defineSearchAttributeKey('KvmSnapshotMethod', SearchAttributeType.KEYWORD),
  leaf: defineSearchAttributeKey('KvmLeaf', SearchAttributeType.KEYWORD),
  /**
   * The node whose worker has not picked up a step (workflows/node-wait.ts) or a compensation
   * (compensateOnNode) of this workflow in time: down, or busy; removed once that step or
   * compensation ran.
   */
  waitingFor: defineSearchAttributeKey('KvmWaitingFor', SearchAttributeType.KEYWORD),
  exitCode: defineSearchAttributeKey('KvmExitCode', SearchAttributeType.INT),
  guestPauseMs: defineSearchAttributeKey('KvmGuestPauseMs', SearchAttributeType.INT),
} as const;

/** name → type, for `temporal server start-dev --search-attribute Name=Type` and the OperatorService. */
export const SEARCH_ATTRIBUTE_TYPES: Record<string, 'Keyword' | 'Int'> = Object.fromEntries(
  Object.values(SA).map((k) => [k.name, k.type === SearchAttributeType.INT ? 'Int' : 'Keyword']),
);
