// MonitoringClient: how an engine sends events to the Monitoring & Logs Engine cheaply and without
// ever blocking on it. log() only queues; batches go out one request at a time per client (the
// engine's group commit merges clients), are retried with exponential backoff + full jitter
// (honouring Retry-After), and are idempotent across retries because every event carries an id.
// Every outcome that is not "stored" is reported: onRejected (the event was wrong, with its field
// errors) or onDropped (it could not be delivered, with the reason). Only Node 20's fetch is used.
import { randomUUID } from 'node:crypto';

export type LogEvent = Record<string, unknown>;
export interface FieldError { field: string; message: string }

export interface MonitoringClientOptions {
  /** The engine's base address (http://host:8080) or the full /monitoring/logs address. */
  url: string;
  /** An admin token or a project key with the `ingest` scope. */
  token: string;
  batchSize?: number;
  flushIntervalMs?: number;
  /** Events waiting to be sent before the oldest are dropped. */
  maxQueue?: number;
  /** Retries of one batch on 429/503/5xx/network errors/timeouts before it is dropped. */
  maxRetries?: number;
  /** Longest one request may take. */
  timeoutMs?: number;
  /** First backoff ceiling; doubles per attempt up to retryMaxMs (full jitter below it). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** The engine refused this event; `errors` name the fields. */
  onRejected?(event: LogEvent, errors: FieldError[]): void;
  /** These events will never be stored: queue overflow, 401/403, 413, retries exhausted, closed. */
  onDropped?(events: LogEvent[], reason: string): void;
  /** Transport failures (each failed attempt) and callbacks that threw. */
  onError?(err: unknown): void;
}

export interface MonitoringClientStats {
  /** Waiting or in flight. */
  queued: number;
  sent: number;
  rejected: number;
  dropped: number;
  retries: number;
}

type Outcome =
  | { kind: 'ok'; body: any }
  | { kind: 'status'; status: number; body: any; retryAfterMs?: number }
  | { kind: 'error'; error: unknown };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

function parseRetryAfter(v: string | null): number | undefined {
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function errorMessage(body: any, status: number): string {
  const m = body?.error?.message;
  return typeof m === 'string' ? m : `HTTP ${status}`;
}

export class MonitoringClient {
  private readonly endpoint: string;
  private readonly token: string;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly maxQueue: number;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly opts: MonitoringClientOptions;

  private queue: LogEvent[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | null = null;
  private drain = false;
  private closed = false;
  private readonly counters = { sent: 0, rejected: 0, dropped: 0, retries: 0 };

  constructor(opts: MonitoringClientOptions) {
    this.opts = opts;
    const base = opts.url.replace(/\/+$/, '');
    this.endpoint = base.endsWith('/monitoring/logs') ? base : `${base}/monitoring/logs`;
    this.token = opts.token;
    this.batchSize = Math.max(1, Math.min(opts.batchSize ?? 500, 10_000));
    this.flushIntervalMs = Math.max(0, opts.flushIntervalMs ?? 1000);
    this.maxQueue = Math.max(1, opts.maxQueue ?? 100_000);
    this.maxRetries = Math.max(0, opts.maxRetries ?? 8);
    this.timeoutMs = Math.max(1, opts.timeoutMs ?? 10_000);
    this.retryBaseMs = Math.max(1, opts.retryBaseMs ?? 200);
    this.retryMaxMs = Math.max(this.retryBaseMs, opts.retryMaxMs ?? 30_000);
  }

  get stats(): MonitoringClientStats {
    return { queued: this.queue.length + this.inFlight, ...this.counters };
  }

  /** Queue one event; never throws, never waits. Returns the event's id (assigned when absent). */
  log(event: LogEvent): string | undefined {
    try {
      if (event === null || typeof event !== 'object' || Array.isArray(event)) {
        this.counters.rejected++;
        this.safe(() => this.opts.onRejected?.(event, [{ field: '(event)', message: 'must be a JSON object' }]));
        return undefined;
      }
      const ev: LogEvent = { ...event };
      if (ev.id === undefined || ev.id === null || ev.id === '') ev.id = randomUUID();
      if (this.closed) {
        this.dropEvents([ev], 'client closed');
        return String(ev.id);
      }
      this.queue.push(ev);
      if (this.queue.length > this.maxQueue) {
        this.dropEvents(this.queue.splice(0, this.queue.length - this.maxQueue), `queue full (maxQueue ${this.maxQueue}): oldest events dropped`);
      }
      if (this.queue.length >= this.batchSize) void this.kick();
      else this.arm();
      return String(ev.id);
    } catch (err) {
      this.safe(() => this.opts.onError?.(err));
      return undefined;
    }
  }

  /** Send everything queued (including what is logged while it runs). Never rejects. */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.pumping) {
      this.drain = true;
      await this.kick();
    }
  }

  /** Flush, then stop the timer. Events logged afterwards are dropped (reason "client closed"). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private arm(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain = true;
      void this.kick();
    }, this.flushIntervalMs);
    this.timer.unref();
  }

  private kick(): Promise<void> {
    if (!this.pumping) {
      this.pumping = this.pump().finally(() => {
        this.pumping = null;
        if (this.queue.length >= this.batchSize || (this.drain && this.queue.length > 0)) void this.kick();
        else if (this.queue.length > 0) this.arm();
      });
    }
    return this.pumping;
  }

  private async pump(): Promise<void> {
    for (;;) {
      if (this.queue.length === 0) {
        this.drain = false;
        return;
      }
      if (!this.drain && this.queue.length < this.batchSize) return;
      const batch = this.queue.splice(0, this.batchSize);
      this.inFlight = batch.length;
      try {
        await this.deliver(batch);
      } catch (err) {
        this.safe(() => this.opts.onError?.(err));
        this.dropEvents(batch, `internal error: ${String(err)}`);
      } finally {
        this.inFlight = 0;
      }
    }
  }

  private async post(batch: LogEvent[]): Promise<Outcome> {
    try {
      const res = await fetch(this.endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(batch),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await res.text();
      let body: any;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      if (res.status >= 200 && res.status < 300) return { kind: 'ok', body };
      return { kind: 'status', status: res.status, body, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) };
    } catch (error) {
      return { kind: 'error', error };
    }
  }

  private async deliver(batch: LogEvent[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const out = await this.post(batch);
      let reason: string;
      let retryAfterMs: number | undefined;
      if (out.kind === 'ok') {
        this.accepted(batch, out.body);
        return;
      }
      if (out.kind === 'error') {
        this.safe(() => this.opts.onError?.(out.error));
        const e = out.error as { name?: string; message?: string };
        reason = e?.name === 'TimeoutError' ? `timed out after ${this.timeoutMs} ms` : `network error: ${e?.message ?? String(out.error)}`;
      } else {
        const { status, body } = out;
        const msg = errorMessage(body, status);
        if (status === 400) {
          this.allRejected(batch, body, msg);
          return;
        }
        if (status === 413) {
          if (batch.length > 1) {
            const half = Math.ceil(batch.length / 2);
            await this.deliver(batch.slice(0, half));
            await this.deliver(batch.slice(half));
          } else {
            this.dropEvents(batch, `too large (413): ${msg}`);
          }
          return;
        }
        const retryable = status === 408 || status === 429 || status >= 500;
        if (!retryable) {
          const what = status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : 'refused';
          this.dropEvents(batch, `${what} (${status}): ${msg}`);
          return;
        }
        reason = `HTTP ${status}: ${msg}`;
        retryAfterMs = out.retryAfterMs;
      }
      if (attempt >= this.maxRetries) {
        this.dropEvents(batch, `gave up after ${attempt + 1} attempts; last: ${reason}`);
        return;
      }
      this.counters.retries++;
      const ceiling = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt);
      const backoff = Math.random() * ceiling;
      await sleep(retryAfterMs !== undefined ? Math.max(retryAfterMs, backoff) : backoff);
    }
  }

  private accepted(batch: LogEvent[], body: any): void {
    const rejected: { index: number; errors: FieldError[] }[] = Array.isArray(body?.rejected) ? body.rejected : [];
    let bad = 0;
    for (const r of rejected) {
      const ev = batch[r.index];
      if (!ev) continue;
      bad++;
      this.counters.rejected++;
      this.safe(() => this.opts.onRejected?.(ev, r.errors ?? []));
    }
    this.counters.sent += typeof body?.accepted === 'number' ? body.accepted : batch.length - bad;
  }

  /** 400: nothing in the batch was accepted. */
  private allRejected(batch: LogEvent[], body: any, msg: string): void {
    const details = body?.error?.details;
    const byIndex = new Map<number, FieldError[]>();
    if (Array.isArray(details?.rejected)) for (const r of details.rejected) byIndex.set(r.index, r.errors ?? []);
    const common: FieldError[] = Array.isArray(details?.errors) && details.errors.length > 0
      ? details.errors
      : [{ field: '(batch)', message: msg }];
    batch.forEach((ev, i) => {
      this.counters.rejected++;
      this.safe(() => this.opts.onRejected?.(ev, byIndex.get(i) ?? common));
    });
  }

  private dropEvents(events: LogEvent[], reason: string): void {
    if (events.length === 0) return;
    this.counters.dropped += events.length;
    this.safe(() => this.opts.onDropped?.(events, reason));
  }

  private safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      try {
        this.opts.onError?.(err);
      } catch {
        // a throwing onError must not break sending
      }
    }
  }
}
