// What the pino and winston transports take: the SDK's options (plain data: pino's run in a worker
// thread, so no callbacks) plus what every record of this logger gets.
import { writeSync } from 'node:fs';
import type { MonitoringClientOptions } from './index.js';

/**
 * Straight to fd 2: in pino's worker thread process.stderr is relayed through the main thread,
 * which is already exiting when the last records are given up.
 */
function report(line: string): void {
  try {
    writeSync(2, line);
  } catch {
    // stderr closed: nowhere left to say it
  }
}

export interface LoggerTransportOptions
  extends Omit<MonitoringClientOptions, 'onRejected' | 'onDropped' | 'onError'> {
  /** The project of every record (not needed with a key bound to one project). */
  project_id?: string;
  /** The service the records come from (the engine's `engine` field). */
  engine?: string;
  /** How long closing the logger may take to send what is queued; the rest is reported on stderr. */
  closeTimeoutMs?: number;
}

/** Callbacks that report on stderr: a transport has no caller to tell, and losing logs silently is worse. */
export function stderrReporting(name: string): Pick<MonitoringClientOptions, 'onRejected' | 'onDropped'> {
  return {
    onRejected: (event, errors) =>
      report(`${name}: the engine refused a record (${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}): ${String(event.message ?? '').slice(0, 200)}\n`),
    onDropped: (events, reason) => report(`${name}: ${events.length} record(s) dropped: ${reason}\n`),
  };
}

/** The record's fixed fields from the options; what the record says itself wins. */
export function withDefaults(ev: Record<string, unknown>, o: LoggerTransportOptions): Record<string, unknown> {
  if (o.project_id !== undefined && ev.project_id === undefined) ev.project_id = o.project_id;
  if (o.engine !== undefined && ev.engine === undefined) ev.engine = o.engine;
  return ev;
}
