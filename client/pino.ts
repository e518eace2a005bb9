// The pino transport: `pino.transport({ target: 'puraify-monitoring/pino', options: { url, token } })`.
// Runs in pino's worker thread; every record goes through the SDK (batching, retries, bounded queue).
// pino's own fields map onto the event: msg → message, time → timestamp, level → severity,
// err → error_type / message / stack; pid, hostname and the rest stay as attributes.
import build from 'pino-abstract-transport';
import { MonitoringClient } from './index.js';
import { applyLoggerConventions } from './logger-conventions.js';
import { stderrReporting, withDefaults, type LoggerTransportOptions } from './transport-options.js';

export type PinoTransportOptions = LoggerTransportOptions;

/** One pino record (already parsed by pino-abstract-transport) → an event. */
export function pinoRecordToEvent(record: Record<string, unknown>, o: LoggerTransportOptions): Record<string, unknown> {
  const ev = { ...record };
  applyLoggerConventions(ev);
  return withDefaults(ev, o);
}

export default async function pinoTransport(opts: PinoTransportOptions) {
  const { project_id: _p, engine: _e, closeTimeoutMs = 10_000, ...clientOpts } = opts;
  const client = new MonitoringClient({ ...clientOpts, ...stderrReporting('puraify-monitoring/pino') });
  return build(
    async (source: AsyncIterable<Record<string, unknown>>) => {
      for await (const record of source) client.log(pinoRecordToEvent(record, opts));
    },
    {
      // pino ends the stream at logger end / process exit and waits for the worker to finish
      close: async () => client.close({ timeoutMs: closeTimeoutMs }),
    },
  );
}
