// Admission: past capacity the excess is refused at once (503 + Retry-After) instead of queueing
// until every request is late. Two signals, both cheap to read before a body is parsed: how many
// ingest requests are being handled, and how late the event loop runs (a loop that is behind answers
// everyone late, so new work is refused until it has caught up).
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../http/errors.js';

export interface AdmissionOptions {
  /** Ingest requests handled at once (reading, parsing, waiting for their fsync). */
  maxInflight: number;
  /** Event-loop delay above which new ingest requests are refused. 0 = never. */
  maxLagMs: number;
}

const SAMPLE_MS = 10;

export class Admission {
  inflight = 0;
  /** The latest measured event-loop delay. */
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
      this.lagMs = Math.max(0, now - this.expected);
      this.expected = now + SAMPLE_MS;
    }, SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Throws the 503 for a request that must not be taken now. */
  admit(): void {
    if (this.inflight >= this.opts.maxInflight) {
      this.stats.shedInflight++;
      throw new HttpError(503, 'overloaded', 'the engine is handling as many requests as it can; retry shortly', undefined, { 'Retry-After': '1' });
    }
    // the loop is late now, or it has not checked in for longer than the limit (it is busy)
    const silent = performance.now() - this.expected;
    if (this.opts.maxLagMs > 0 && (this.lagMs > this.opts.maxLagMs || silent > this.opts.maxLagMs)) {
      this.stats.shedLag++;
      throw new HttpError(503, 'overloaded', 'the engine is behind; retry shortly', undefined, { 'Retry-After': '1' });
    }
  }

  /** Counts ingest requests from their first byte to their answer; refuses the excess up front. */
  install(app: FastifyInstance): void {
    const counted = new WeakSet<object>();
    app.addHook('onRequest', async (req) => {
      if (req.method !== 'POST') return;
      this.admit();
      this.inflight++;
      counted.add(req);
    });
    const done = async (req: object) => {
      if (counted.delete(req)) this.inflight--;
    };
    app.addHook('onResponse', done);
    app.addHook('onRequestAbort', done);
  }
}
