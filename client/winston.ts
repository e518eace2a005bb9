// The winston transport: `new (require('puraify-monitoring/winston'))({ url, token })`, or
// `import PuraifyTransport from 'puraify-monitoring/winston'`. Built on the SDK (batching, retries,
// bounded queue). `logger.error(err)` hands winston the Error itself: its name and stack (not
// enumerable, so JSON would lose them) are read here, then the same conventions as for pino apply.
import Transport from 'winston-transport';
import { MonitoringClient, type CloseOptions } from './index.js';
import { applyLoggerConventions, serializeError } from './logger-conventions.js';
import { stderrReporting, withDefaults, type LoggerTransportOptions } from './transport-options.js';

export interface WinstonTransportOptions extends LoggerTransportOptions, Transport.TransportStreamOptions {}

/** A winston info object → an event (own enumerable string keys only; winston's symbols are internal). */
export function winstonInfoToEvent(info: Record<string, unknown>, o: LoggerTransportOptions): Record<string, unknown> {
  const ev: Record<string, unknown> = {};
  for (const k of Object.keys(info)) {
    const v = info[k];
    ev[k] = v instanceof Error ? serializeError(v) : v;
  }
  if (info instanceof Error) {
    // logger.error(err): the info object is the error
    ev.err = serializeError(info);
    delete ev.stack;
  } else if (typeof info.stack === 'string' && ev.err === undefined && ev.error === undefined) {
    // format.errors({ stack: true }) or logger.error('text', err): stack copied onto the info
    ev.err = { type: typeof info.name === 'string' ? info.name : 'Error', stack: info.stack };
    delete ev.stack;
  }
  applyLoggerConventions(ev);
  return withDefaults(ev, o);
}

export class PuraifyTransport extends Transport {
  readonly client: MonitoringClient;
  private readonly opts: WinstonTransportOptions;

  constructor(opts: WinstonTransportOptions) {
    super(opts);
    this.opts = opts;
    const { project_id: _p, engine: _e, closeTimeoutMs: _c, level: _l, silent: _s, format: _f, handleExceptions: _h, handleRejections: _r, ...clientOpts } = opts;
    this.client = new MonitoringClient({ ...clientOpts, ...stderrReporting('puraify-monitoring/winston') });
  }

  override log(info: Record<string, unknown>, next: () => void): void {
    this.client.log(winstonInfoToEvent(info, this.opts));
    next();
  }

  /** Sends what is queued; keeps the process alive until it resolves. */
  flush(): Promise<void> {
    return this.client.flush();
  }

  /** winston calls this when the logger closes; awaiting it yourself waits for the last records. */
  override close(opts: CloseOptions = {}): Promise<void> {
    return this.client.close({ timeoutMs: opts.timeoutMs ?? this.opts.closeTimeoutMs ?? 10_000 });
  }
}

export default PuraifyTransport;
