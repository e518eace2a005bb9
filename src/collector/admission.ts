// Admission: past capacity the excess is refused at once (503 + Retry-After) instead of queueing
// until every request is late. Signals, all cheap to read before a body is parsed:
// - in-flight ingest requests and body bytes (bounds memory whatever the clients do);
// - queueing delay, CoDel-style: when even the quickest request answered in the last interval spent
//   more than the target waiting (its time minus what its size explains), requests are queueing
//   inside the engine — as with a client that caps its sockets and keeps them all busy;
// - event-loop delay with many requests in flight: requests queue before the engine even sees them;
// - the work waiting for a turn (cpu-turns.ts): bodies read and not yet parsed, at the measured rate.
// - the JavaScript heap in use near V8's limit (memory-budget.ts): refusing beats V8 ending the process.
// A lone client's big batch (one long tick, one slow request) is never refused for it, and neither is
// a queue of fewer than QUEUE_MIN_INFLIGHT requests: a fixed set of clients sending batches back to
// back (an SDK's senders, a log shipper's workers) always keeps a queue of its own size, and refusing
// it only idles the engine while the refused wait to resend (16 clients × 1,000 events: 28k ev/s
// acked with those refusals, 37–51k without, bench/README). Such a queue is bounded by the clients'
// count; overload is a queue that keeps growing past it.
// Per key fairness: past capacity the keys holding more than their share of the requests in flight
// are refused first, so one key flooding the engine does not starve the others. A key below its
// share is admitted past the soft cap (maxInflight), up to a hard cap of twice it.
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../http/errors.js';
import { collectGarbage, heapUsedBytes } from '../memory-budget.js';
import { CpuTurns } from './cpu-turns.js';
import { UNSLICED, type Slicer } from '../wal/wake.js';

export interface AdmissionOptions {
  /** Ingest requests handled at once (reading, parsing, waiting for their fsync). */
  maxInflight: number;
  /** Target queueing delay and event-loop delay; past it new ingest requests are refused. 0 = never. */
  maxLagMs: number;
  /** Body bytes in flight (Content-Length, or the body limit when absent); default 256 MB. */
  maxInflightBytes?: number;
  /** JavaScript heap in use past which new ingest requests are refused (memory-budget.ts); default never. */
  refuseHeapBytes?: number;
  /** The heap in use now, and a full collection (injectable for tests). */
  heapUsed?: () => number;
  collectGarbage?: () => void;
}

const SAMPLE_MS = 10;
const INTERVAL_MS = 100;
/**
 * Queueing and lag shed only with at least this many requests in flight: the backlog is theirs, not
 * one batch's, nor a few clients' sending back to back.
 */
const QUEUE_MIN_INFLIGHT = 16;
/** Body bytes in flight by default: bounds memory under overload. */
const MAX_INFLIGHT_BYTES = 256 << 20;
/** How long a reading of the heap in use stands (reading it costs a few µs; requests come faster). */
const HEAP_READ_MS = 20;
const GC_EVERY_MS = 1000;
const ASSUMED_BODY_BYTES = 5 << 20;
/** What a request's size explains of its time (a conservative 20 MB/s of parsing and validation). */
const BYTES_PER_MS = 20_000;

/** Whose request it is, for fairness (the API key's id; the admin token and keyless callers share one). */
export type AdmissionKey = (req: { principal?: { keyId?: string } | null }) => string;
const defaultKey: AdmissionKey = (req) => req.principal?.keyId ?? '';

export class Admission {
  inflight = 0;
  inflightBytes = 0;
  /** Requests in flight per key (keys with none are not kept). */
  readonly perKey = new Map<string, number>();
  /** The latest measured event-loop delay. */
  lagMs = 0;
  /** Set while requests have been queueing longer than the target. */
  congested = false;
  readonly stats = { shedInflight: 0, shedLag: 0, shedQueue: 0, shedTurns: 0, shedMemory: 0, admittedFair: 0 };
  /** The parsing and validation of admitted requests, one per loop iteration. */
  readonly turns = new CpuTurns();
  private timer: NodeJS.Timeout | undefined;
  private expected = 0;
  private intervalEnds = 0;
  private minExcess = Infinity;

  /** Each admitted request, from its first byte to its answer; its turns once it has had its first. */
  private readonly counted = new WeakMap<object, { bytes: number; at: number; key: string; turn?: Slicer }>();

  private heapReadAt = -Infinity;
  private heapBytes = 0;
  private collectedAt = -Infinity;

  constructor(private readonly opts: AdmissionOptions) {}

  /**
   * Whether the heap in use is past the refusal line (read at most every HEAP_READ_MS). Past it, a
   * full collection (at most one a second) tells live data from garbage V8 has not collected yet.
   */
  private shortOfMemory(line: number): boolean {
    const now = performance.now();
    if (now - this.heapReadAt < HEAP_READ_MS) return this.heapBytes > line;
    const used = this.opts.heapUsed ?? heapUsedBytes;
    this.heapBytes = used();
    this.heapReadAt = now;
    if (this.heapBytes > line && now - this.collectedAt >= GC_EVERY_MS) {
      (this.opts.collectGarbage ?? collectGarbage)();
      this.collectedAt = performance.now();
      this.heapBytes = used();
    }
    return this.heapBytes > line;
  }

  start(): void {
    if (this.timer || this.opts.maxLagMs <= 0) return;
    this.expected = performance.now() + SAMPLE_MS;
    this.intervalEnds = performance.now() + INTERVAL_MS;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lagMs = Math.max(0, now - this.expected);
      this.expected = now + SAMPLE_MS;
      if (now >= this.intervalEnds) {
        // no answer in the interval: the state stands while requests are in flight
        if (this.minExcess !== Infinity) this.congested = this.minExcess > this.opts.maxLagMs;
        else if (this.inflight === 0) this.congested = false;
        this.minExcess = Infinity;
        this.intervalEnds = now + INTERVAL_MS;
      }
    }, SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Whether `key` holds less than its share of what is in flight: fewer than `total` split evenly
   * over the keys in flight, this one counted. A key alone never is.
   */
  private belowShare(key: string, total: number): boolean {
    const mine = this.perKey.get(key) ?? 0;
    const keys = this.perKey.size + (mine === 0 ? 1 : 0);
    return keys > 1 && mine < Math.floor(total / keys);
  }

  /** Throws the 503 for a request that must not be taken now. */
  admit(bytes = 0, key = ''): void {
    if (this.inflight > 0 && this.inflightBytes + bytes > (this.opts.maxInflightBytes ?? MAX_INFLIGHT_BYTES)) {
      this.stats.shedInflight++;
      throw overloaded('the engine is handling as many requests as it can; retry shortly');
    }
    // near the heap limit a request is refused rather than risk V8 ending the process for it
    if (this.opts.refuseHeapBytes !== undefined && this.shortOfMemory(this.opts.refuseHeapBytes)) {
      this.stats.shedMemory++;
      throw overloaded('the engine is short of memory; retry shortly');
    }
    if (this.inflight >= this.opts.maxInflight) {
      // past the soft cap only a key below its share of the cap gets in (up to twice the cap)
      if (this.inflight >= 2 * this.opts.maxInflight || !this.belowShare(key, this.opts.maxInflight)) {
        this.stats.shedInflight++;
        throw overloaded('the engine is handling as many requests as it can; retry shortly');
      }
      this.stats.admittedFair++;
      return;
    }
    if (this.opts.maxLagMs <= 0 || this.inflight < QUEUE_MIN_INFLIGHT) return;
    // congested or behind: the keys with the biggest share of what is queueing go first
    const fair = this.belowShare(key, this.inflight);
    if (this.congested && !fair) {
      this.stats.shedQueue++;
      throw overloaded('requests are queueing in the engine; retry shortly');
    }
    if (this.turns.length >= 2 && this.turns.queuedMs() > this.opts.maxLagMs && !fair) {
      this.stats.shedTurns++;
      throw overloaded('requests are waiting to be parsed; retry shortly');
    }
    const lag = Math.max(this.lagMs, performance.now() - this.expected);
    if (lag > this.opts.maxLagMs && !fair) {
      this.stats.shedLag++;
      throw overloaded('the engine is behind; retry shortly');
    }
  }

  /** A request was answered after `ms`; its size explains `bytes / BYTES_PER_MS` of that. */
  private answered(ms: number, bytes: number): void {
    const excess = ms - bytes / BYTES_PER_MS;
    if (excess < this.minExcess) this.minExcess = excess;
  }

  /** The slicer of a request's parsing and validation (one that never yields outside admission). */
  turnOf(req: object): Slicer {
    return this.counted.get(req)?.turn ?? UNSLICED;
  }

  /** Counts ingest requests from their first byte to their answer; refuses the excess up front. */
  install(app: FastifyInstance, keyOf: AdmissionKey = defaultKey): void {
    // runs after authentication (an app-wide hook): the caller's key is known
    app.addHook('onRequest', async (req) => {
      if (req.method !== 'POST') return;
      const len = Number(req.headers['content-length']);
      const bytes = Number.isFinite(len) && len >= 0 ? len : ASSUMED_BODY_BYTES;
      const key = keyOf(req);
      this.admit(bytes, key);
      this.inflight++;
      this.inflightBytes += bytes;
      this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1);
      this.counted.set(req, { bytes, at: performance.now(), key });
    });
    // the body is read: its parsing and validation wait for a turn of their own on the event loop
    app.addHook('preHandler', async (req) => {
      const c = this.counted.get(req);
      if (!c) return;
      const body = req.body as string | Buffer | undefined;
      c.turn = await this.turns.take(body?.length ?? 0);
    });
    const done = (req: object, ok: boolean) => {
      const c = this.counted.get(req);
      if (!c) return;
      this.counted.delete(req);
      this.inflight--;
      this.inflightBytes -= c.bytes;
      const left = (this.perKey.get(c.key) ?? 1) - 1;
      if (left > 0) this.perKey.set(c.key, left);
      else this.perKey.delete(c.key);
      if (ok) this.answered(performance.now() - c.at, c.bytes);
    };
    app.addHook('onResponse', async (req, reply) => done(req, reply.statusCode < 300));
    app.addHook('onRequestAbort', async (req) => done(req, false));
  }
}

function overloaded(message: string): HttpError {
  return new HttpError(503, 'overloaded', message, undefined, { 'Retry-After': '1' });
}
