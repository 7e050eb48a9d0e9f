/**
 * The Temporal SDK's metric families (TypeScript SDK 1.24, its Core's Prometheus exporter with the
 * options of workers/sdk-metrics.ts), as a real worker serves them: taken from a scrape of a node and
 * a control worker against the test Temporal server after a failed backup.
 * test/integration/observability-endpoint.test.ts checks that each of them is really served, so the
 * unit test of the rules and the dashboard (monitoring-files.test.ts) can rely on this list.
 * Some families only appear once their event happened (a failed activity, a failed workflow).
 */
export const SDK_METRIC_FAMILIES: ReadonlyMap<string, 'counter' | 'gauge' | 'histogram'> = new Map([
  ['temporal_activity_execution_failed_total', 'counter'],
  ['temporal_activity_execution_latency_seconds', 'histogram'],
  ['temporal_activity_schedule_to_start_latency_seconds', 'histogram'],
  ['temporal_activity_succeed_endtoend_latency_seconds', 'histogram'],
  ['temporal_activity_task_received_total', 'counter'],
  ['temporal_long_request_latency_seconds', 'histogram'],
  ['temporal_long_request_total', 'counter'],
  ['temporal_num_pollers', 'gauge'],
  ['temporal_request_latency_seconds', 'histogram'],
  ['temporal_request_total', 'counter'],
  ['temporal_sticky_cache_hit_total', 'counter'],
  ['temporal_sticky_cache_size', 'gauge'],
  ['temporal_worker_start_total', 'counter'],
  ['temporal_worker_task_slots_available', 'gauge'],
  ['temporal_worker_task_slots_used', 'gauge'],
  ['temporal_workflow_endtoend_latency_seconds', 'histogram'],
  ['temporal_workflow_failed_total', 'counter'],
  ['temporal_workflow_task_execution_latency_seconds', 'histogram'],
  ['temporal_workflow_task_queue_poll_succeed_total', 'counter'],
  ['temporal_workflow_task_replay_latency_seconds', 'histogram'],
  ['temporal_workflow_task_schedule_to_start_latency_seconds', 'histogram'],
]);

/**
 * Families that appear only once a workflow task has failed: test/integration/worker-upgrade.test.ts
 * makes one fail with a non-determinism error and checks the control worker serves them, with the
 * `failure_reason="NonDeterminismError"` label the alert KvmBackupWorkflowNondeterminism reads.
 */
export const SDK_WORKFLOW_TASK_FAILURE_FAMILIES: ReadonlyMap<string, 'counter'> = new Map([['temporal_workflow_task_execution_failed_total', 'counter']]);
