// MonitoringClient: how an engine sends events to the Monitoring & Logs Engine cheaply and without
// ever blocking on it. log() only queues; batches go out one request at a time per client (the
// engine's group commit merges clients), are retried with exponential backoff + full jitter
// (honouring Retry-After), and are idempotent across retries because every event carries an id.
// Every outcome that is not "stored" is reported: onRejected (the event was wrong, with its field
// errors) or onDropped (it could not be delivered, with the reason). Only Node 20's fetch is used.
//
// Lifecycle: flush() and close() hold the process open (a ref'd handle) until they resolve, so a
// script ending in `await client.close()` never exits with 13 (unsettled top-level await) while
// batches wait out a retry; close({ timeoutMs }) gives up at the deadline and reports the rest
// through onDropped. A process whose loop empties with events still queued flushes them first
// (beforeExit). Several URLs: a network error, timeout or 5xx moves the client to the next one.
import { randomUUID } from 'node:crypto';

export type LogEvent = Record<string, unknown>;
export interface FieldError { field: string; message: string }

export interface MonitoringClientOptions {
  /**
   * The engine's base address (http://host:8080) or the full /monitoring/logs address; several
   * (engine nodes behind no balancer) are tried in turn when one fails.
   */
  url: string | readonly string[];
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
  /**
   * These events will never be stored: queue overflow, 401/403, 413, retries exhausted, closed, or
   * close({ timeoutMs }) ran out (a batch cut off in flight may have been stored: its reason says so).
   */
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

export interface CloseOptions {
  /** Give up after this long: what is still queued or in flight is reported through onDropped. */
  timeoutMs?: number;
}

/** Resolves after `ms`, or at once when `signal` aborts. Unref'd: a pending flush() holds the process. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    t.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Clients with queued events; when the process's loop empties they flush before it exits. */
const unsent = new Set<MonitoringClient>();
let exitHookInstalled = false;
function watchExit(c: MonitoringClient): void {
  unsent.add(c);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('beforeExit', () => {
    for (const client of unsent) void client.flush();
  });
}

/** `http://a:8080` or `http://a:8080/monitoring/logs` → the ingest endpoint. */
function ingestEndpoint(url: string): string {
  const base = url.replace(/\/+$/, '');
  return base.endsWith('/monitoring/logs') ? base : `${base}/monitoring/logs`;
}

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
  private readonly endpoints: string[];
  /** Index into endpoints of the one in use; moves on after a failure that another node may not share. */
  private current = 0;
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
  private closing: Promise<void> | undefined;
  /** Set when close({ timeoutMs }) ran out: the reason every remaining event is dropped with. */
  private abandoned: string | undefined;
  /** Aborts in-flight requests and retry waits when close gives up. */
  private readonly stop = new AbortController();
  /** flush()/close() calls pending; while > 0 a ref'd handle keeps the process alive. */
  private holders = 0;
  private holdHandle: NodeJS.Timeout | undefined;
  private readonly counters = { sent: 0, rejected: 0, dropped: 0, retries: 0 };

  constructor(opts: MonitoringClientOptions) {
    this.opts = opts;
    const urls = typeof opts.url === 'string' ? [opts.url] : [...opts.url];
    if (urls.length === 0) throw new TypeError('MonitoringClient: url is required');
    this.endpoints = urls.map(ingestEndpoint);
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
      // when it happened, not when its batch arrived (a batch may wait out an outage)
      if (ev.timestamp === undefined || ev.timestamp === null) ev.timestamp = Date.now();
      if (this.closed) {
        this.dropEvents([ev], 'client closed');
        return String(ev.id);
      }
      if (this.queue.length === 0) watchExit(this);
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

  /**
   * Send everything queued (including what is logged while it runs). Never rejects; keeps the
   * process alive until it resolves.
   */
  async flush(): Promise<void> {
    const release = this.hold();
    try {
      while ((this.queue.length > 0 || this.pumping) && !this.abandoned) {
        this.drain = true;
        await this.kick();
      }
      if (this.pumping) await this.pumping;
    } finally {
      release();
    }
  }

  /**
   * Flush, then stop. Events logged afterwards are dropped (reason "client closed"). With
   * `timeoutMs`, gives up at the deadline: queued and in-flight events go to onDropped.
   * Keeps the process alive until it resolves; calling it again returns the same promise.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.closing ??= this.closeWithin(opts.timeoutMs);
    return this.closing;
  }

  private async closeWithin(timeoutMs: number | undefined): Promise<void> {
    const release = this.hold();
    try {
      const flushed = this.flush();
      if (timeoutMs === undefined) return await flushed;
      let deadline: NodeJS.Timeout | undefined;
      const expired = await Promise.race([
        flushed.then(() => false),
        new Promise<boolean>((resolve) => { deadline = setTimeout(() => resolve(true), Math.max(0, timeoutMs)); }),
      ]);
      clearTimeout(deadline);
      if (expired) {
        this.abandoned = `close() timed out after ${timeoutMs} ms`;
        this.stop.abort();
        await flushed;
        this.dropEvents(this.queue.splice(0), this.abandoned);
      }
    } finally {
      unsent.delete(this);
      release();
    }
  }

  /** A ref'd handle while any flush/close is pending: the event loop cannot empty under them. */
  private hold(): () => void {
    if (this.holders++ === 0) this.holdHandle = setInterval(() => undefined, 1 << 30);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holders === 0) {
        clearInterval(this.holdHandle);
        this.holdHandle = undefined;
      }
    };
  }

  private arm(): void {
    if (this.timer || this.closed || this.abandoned) return;
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
        if (this.abandoned) return;
        if (this.queue.length >= this.batchSize || (this.drain && this.queue.length > 0)) void this.kick();
        else if (this.queue.length > 0) this.arm();
      });
    }
    return this.pumping;
  }

  private async pump(): Promise<void> {
    for (;;) {
      if (this.abandoned) {
        this.dropEvents(this.queue.splice(0), this.abandoned);
        return;
      }
      if (this.queue.length === 0) {
        this.drain = false;
        unsent.delete(this);
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
      const res = await fetch(this.endpoints[this.current], {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(batch),
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.stop.signal]),
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
      if (this.abandoned) {
        this.dropEvents(batch, this.abandoned);
        return;
      }
      const out = await this.post(batch);
      let reason: string;
      let retryAfterMs: number | undefined;
      if (out.kind === 'ok') {
        this.accepted(batch, out.body);
        return;
      }
      if (this.abandoned) {
        // cut off in flight: the engine may have stored it (a resend would have been deduplicated)
        this.dropEvents(batch, `${this.abandoned}; cut off in flight, the engine may have stored them`);
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
      // another node may be up: network errors, timeouts and 5xx move on (429 is the key's budget)
      if (out.kind === 'error' || (out.kind === 'status' && out.status >= 500)) this.current = (this.current + 1) % this.endpoints.length;
      if (attempt >= this.maxRetries) {
        this.dropEvents(batch, `gave up after ${attempt + 1} attempts; last: ${reason}`);
        return;
      }
      this.counters.retries++;
      const ceiling = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt);
      const backoff = Math.random() * ceiling;
      await sleep(retryAfterMs !== undefined ? Math.max(retryAfterMs, backoff) : backoff, this.stop.signal);
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
