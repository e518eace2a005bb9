// Admission: past capacity the excess is refused at once (503 + Retry-After) instead of queueing
// until every request is late. Signals, all cheap to read before a body is parsed: how many ingest
// requests (and body bytes) are being handled, and how late the event loop runs. A loop that stays
// behind while many requests are in flight answers everyone late, so new work is refused until it
// has caught up; one client's big batch (a long but lone tick) is never refused for it.
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../http/errors.js';

export interface AdmissionOptions {
  /** Ingest requests handled at once (reading, parsing, waiting for their fsync). */
  maxInflight: number;
  /** Event-loop delay above which new ingest requests are refused. 0 = never. */
  maxLagMs: number;
}

const SAMPLE_MS = 10;
/** Lag sheds only with at least this many requests in flight: the backlog is theirs, not one batch's. */
const LAG_MIN_INFLIGHT = 16;
/** Body bytes in flight (Content-Length, or the body limit when absent): bounds memory under overload. */
const MAX_INFLIGHT_BYTES = 256 << 20;
const ASSUMED_BODY_BYTES = 5 << 20;

export class Admission {
  inflight = 0;
  inflightBytes = 0;
  /** Event-loop delay, smoothed over the last few samples. */
  lagMs = 0;
  readonly stats = { shedInflight: 0, shedLag: 0 };
  private timer: NodeJS.Timeout | undefined;
  private expected = 0;

  constructor(private readonly opts: AdmissionOptions) {}

  start(): void {
    if (this.timer || this.opts.maxLagMs <= 0) return;
    this.expected = performance.now() + SAMPLE_MS;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lagMs = 0.7 * this.lagMs + 0.3 * Math.max(0, now - this.expected);
      this.expected = now + SAMPLE_MS;
    }, SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Throws the 503 for a request that must not be taken now. */
  admit(bytes = 0): void {
    if (this.inflight >= this.opts.maxInflight || (this.inflight > 0 && this.inflightBytes + bytes > MAX_INFLIGHT_BYTES)) {
      this.stats.shedInflight++;
      throw new HttpError(503, 'overloaded', 'the engine is handling as many requests as it can; retry shortly', undefined, { 'Retry-After': '1' });
    }
    if (this.opts.maxLagMs > 0 && this.inflight >= LAG_MIN_INFLIGHT && this.lagMs > this.opts.maxLagMs) {
      this.stats.shedLag++;
      throw new HttpError(503, 'overloaded', 'the engine is behind; retry shortly', undefined, { 'Retry-After': '1' });
    }
  }

  /** Counts ingest requests from their first byte to their answer; refuses the excess up front. */
  install(app: FastifyInstance): void {
    const counted = new WeakMap<object, number>();
    app.addHook('onRequest', async (req) => {
      if (req.method !== 'POST') return;
      const len = Number(req.headers['content-length']);
      const bytes = Number.isFinite(len) && len >= 0 ? len : ASSUMED_BODY_BYTES;
      this.admit(bytes);
      this.inflight++;
      this.inflightBytes += bytes;
      counted.set(req, bytes);
    });
    const done = async (req: object) => {
      const bytes = counted.get(req);
      if (bytes === undefined) return;
      counted.delete(req);
      this.inflight--;
      this.inflightBytes -= bytes;
    };
    app.addHook('onResponse', done);
    app.addHook('onRequestAbort', done);
  }
}
