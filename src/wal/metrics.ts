// The write path's figures for /metrics (Prometheus text format) and /monitoring/load.
import type { Admission } from '../collector/admission.js';
import type { WritePath } from './write-path.js';

export function writePathSummary(wp: WritePath) {
  const l = wp.loader.stats;
  return {
    /** Events acknowledged by this run and not yet in storage. */
    queue_depth: Math.max(0, wp.log.stats.appendedRows - l.rowsTakenThisRun),
    flushes: l.blocks,
    wal_bytes: wp.log.usedBytes,
    wal_max_bytes: wp.log.maxBytes,
    unloaded_bytes: wp.log.loader.behindBytes,
    rows_loaded: l.rowsLoaded,
    last_flush_rows: l.lastLoadRows,
    last_flush_ms: Math.round(l.lastLoadMs * 10) / 10,
    load_failures: l.failures,
    storage_retrying: l.retrying,
    id_probes: l.idProbes,
    id_probes_skipped: l.idProbesSkipped,
    load_check_ms: Math.round(l.checkMs),
    load_insert_ms: Math.round(l.insertMs),
    id_filter: wp.storedIds ? {
      complete: wp.storedIds.complete, keys: wp.storedIds.filter.added, capacity: wp.storedIds.filter.size.capacity,
      bytes: wp.storedIds.filter.bytes, scanned_rows: wp.storedIds.stats.scannedRows, scan_ms: Math.round(wp.storedIds.stats.scanMs),
    } : undefined,
  };
}

export function writePathMetrics(wp: WritePath, admission?: Admission): string[] {
  const l = wp.loader.stats;
  const w = wp.log.stats;
  const out: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, values: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of values) out.push(`${name}${labels} ${v}`);
  };
  metric('puraify_monitoring_events_duplicate_total', 'counter', 'Resent events not stored twice (known at answer time, or dropped by the loader).', [['', wp.stats.answerDuplicates + l.duplicates]]);
  metric('puraify_monitoring_ingest_queue_depth', 'gauge', 'Events acknowledged (in the write-ahead log) and not yet in storage.', [['', Math.max(0, w.appendedRows - l.rowsTakenThisRun)]]);
  metric('puraify_monitoring_flushes_total', 'counter', 'Storage inserts made by the loader.', [['', l.blocks]]);
  metric('puraify_monitoring_flush_failures_total', 'counter', 'Storage inserts that failed (retried with backoff; the rows stay in the log).', [['', l.failures]]);
  metric('puraify_monitoring_last_flush_seconds', 'gauge', 'Duration of the last storage insert.', [['', Number((l.lastLoadMs / 1000).toFixed(4))]]);
  metric('puraify_monitoring_storage_insert_stuck_total', 'counter', 'Storage inserts that ran past their deadline.', [['', l.stuck]]);
  metric('puraify_monitoring_rows_loaded_total', 'counter', 'Rows moved from the write-ahead log into storage.', [['', l.rowsLoaded]]);
  metric('puraify_monitoring_id_probes_total', 'counter', 'Rows whose id the loader looked for in storage (made), or did not need to because the id filter knows the id is new (skipped).', [
    ['{result="made"}', l.idProbes], ['{result="skipped"}', l.idProbesSkipped],
  ]);
  metric('puraify_monitoring_load_seconds_total', 'counter', 'Time the loader spent on the duplicate check and on inserts.', [
    ['{step="check"}', Number((l.checkMs / 1000).toFixed(3))], ['{step="insert"}', Number((l.insertMs / 1000).toFixed(3))],
  ]);
  if (wp.storedIds) {
    const f = wp.storedIds.filter;
    metric('puraify_monitoring_id_filter_complete', 'gauge', '1 once the id filter holds every stored id (new ids then skip the storage check).', [['', wp.storedIds.complete ? 1 : 0]]);
    metric('puraify_monitoring_id_filter_keys', 'gauge', 'Ids added to the id filter (from the start scan and from every block loaded).', [['', f.added]]);
    metric('puraify_monitoring_id_filter_bytes', 'gauge', 'Memory of the id filter.', [['', f.bytes]]);
    metric('puraify_monitoring_id_filter_expected_false_positive_ratio', 'gauge', 'Share of new ids the id filter is expected to send to the storage check anyway.', [['', Number(f.expectedFpr().toFixed(5))]]);
  }
  metric('puraify_monitoring_quarantined_total', 'counter', 'Rows storage refused for a data reason, written to the dead-letter file instead.', [['', l.quarantined]]);
  metric('puraify_monitoring_wal_bytes', 'gauge', 'Bytes in the write-ahead log.', [['', wp.log.usedBytes]]);
  metric('puraify_monitoring_wal_max_bytes', 'gauge', 'Size limit of the write-ahead log.', [['', wp.log.maxBytes]]);
  metric('puraify_monitoring_wal_unloaded_bytes', 'gauge', 'Bytes of the log not yet in storage.', [['', wp.log.loader.behindBytes]]);
  metric('puraify_monitoring_wal_unobserved_bytes', 'gauge', 'Bytes of the log not yet seen by alert rules and error groups.', [['', wp.log.observer.behindBytes]]);
  metric('puraify_monitoring_wal_segments', 'gauge', 'Segment files of the write-ahead log.', [['', wp.log.segments]]);
  metric('puraify_monitoring_wal_fsyncs_total', 'counter', 'Durable writes of the log (O_DSYNC, one per group of requests).', [['', wp.log.fsyncs]]);
  metric('puraify_monitoring_wal_records_total', 'counter', 'Requests appended to the write-ahead log.', [['', w.appendedRecords]]);
  metric('puraify_monitoring_wal_repairs_total', 'counter', 'Torn or corrupted segment tails cut at the last valid record when the log was opened.', [['', wp.log.repairs.length]]);
  metric('puraify_monitoring_ingest_refused_total', 'counter', 'Ingest requests refused with 503/507 + Retry-After.', [
    ['{reason="log_full"}', w.refusedFull], ['{reason="log_busy"}', w.refusedBusy], ['{reason="log_write_failed"}', w.writeFailures],
    ['{reason="inflight"}', admission?.stats.shedInflight ?? 0], ['{reason="event_loop_lag"}', admission?.stats.shedLag ?? 0],
    ['{reason="queueing"}', admission?.stats.shedQueue ?? 0], ['{reason="parse_queue"}', admission?.stats.shedTurns ?? 0],
    ['{reason="memory"}', admission?.stats.shedMemory ?? 0],
  ]);
  metric('puraify_monitoring_ingest_parse_queue_seconds', 'gauge', 'Estimated work of the ingest requests waiting for their turn to be parsed.', [['', Number(((admission?.turns.queuedMs() ?? 0) / 1000).toFixed(4))]]);
  metric('puraify_monitoring_wal_memory_bytes', 'gauge', 'Estimated heap held by log records kept in memory for each consumer.', [
    ['{consumer="loader"}', wp.log.loader.memoryBytes], ['{consumer="observer"}', wp.log.observer.memoryBytes],
  ]);
  metric('puraify_monitoring_wal_fsync_waiting_bytes', 'gauge', 'Bytes of requests waiting for the next fsync.', [['', wp.log.fsyncWaitingBytes]]);
  metric('puraify_monitoring_ingest_inflight_requests', 'gauge', 'Ingest requests from their first byte to their answer.', [['', admission?.inflight ?? 0]]);
  metric('puraify_monitoring_ingest_inflight_bytes', 'gauge', 'Declared body bytes of the ingest requests in flight.', [['', admission?.inflightBytes ?? 0]]);
  metric('puraify_monitoring_event_loop_lag_seconds', 'gauge', 'Latest measured event-loop delay.', [['', Number(((admission?.lagMs ?? 0) / 1000).toFixed(4))]]);
  return out;
}
