// Turns on the event loop for the CPU-heavy part of ingest requests (parsing, validation,
// redaction, encoding the log record). Without them, every request whose body completes in the same
// poll phase is parsed back to back: a stretch of hundreds of milliseconds during which nothing else
// is answered, not even a refusal. With them, one request's work runs per loop iteration (in the
// check phase) and the loop's I/O — new requests, refusals, fsync completions — is served between
// two turns. The requests waiting for a turn are also the engine's truest queue: admission reads
// how long they would take (queuedMs) and refuses new ones past its target.
// A request's work is itself cut into slices of SLICE_MS: a batch of 500 events is ~10 ms of
// validation and encoding, and a query answered meanwhile waited for all of it (the engine's
// event-loop delay p99 was ~15 ms under 5,000 events/s, bench/README). Past its slice the request
// asks for another turn, ahead of the requests not yet started, so the oldest finishes first.

import type { Slicer } from '../wal/wake.js';

/** Start of the calibration: 20 MB/s of parsing and validation (a conservative guess). */
const INITIAL_MS_PER_BYTE = 1 / 20_000;
/** Weight of the newest measurement in the running average of ms per byte. */
const EWMA = 0.1;
/** A turn whose gap to the next one is longer than this was idle time, not work: not measured. */
const MAX_MEASURED_MS = 1000;
/** Longest a request's work runs before it gives the loop back (Turn.due()). */
export const SLICE_MS = 4;

/** One request's work, granted in turns: the slicer its synchronous passes consult. */
class Job implements Slicer {
  grantedAt = 0;
  /** Time of its turns so far, each with the I/O served after it. */
  spentMs = 0;
  measured = true;
  /** Asked for another turn during the current one. */
  again = false;

  constructor(private readonly turns: CpuTurns, readonly bytes: number) {}

  due(): boolean {
    return performance.now() - this.grantedAt > SLICE_MS;
  }

  next(): Promise<void> {
    return this.turns.resume(this);
  }
}

interface Waiter {
  job: Job;
  resolve: (job: Job) => void;
}

export class CpuTurns {
  private readonly waiting: Waiter[] = [];
  private head = 0;
  private scheduled = false;
  private waitingBytes = 0;
  /** Running average of a request's time per body byte (its turns and the I/O served after them). */
  msPerByte = INITIAL_MS_PER_BYTE;
  private current: Job | undefined;
  readonly stats = { turns: 0, requests: 0 };

  /** Requests waiting for a turn. */
  get length(): number {
    return this.waiting.length - this.head;
  }

  /** How long the requests waiting now would take, at the measured rate. */
  queuedMs(): number {
    return this.waitingBytes * this.msPerByte;
  }

  /**
   * Resolves when it is this request's turn; its synchronous work then runs alone, asking the
   * returned slicer whether its slice is used up.
   */
  take(bytes: number): Promise<Slicer> {
    return new Promise((resolve) => {
      this.waiting.push({ job: new Job(this, bytes), resolve });
      this.waitingBytes += bytes;
      this.schedule();
    });
  }

  /** A request past its slice: its next turn comes before any request's first. */
  resume(job: Job): Promise<void> {
    job.again = true;
    return new Promise((resolve) => {
      const w: Waiter = { job, resolve: () => resolve() };
      if (this.head > 0) this.waiting[--this.head] = w;
      else this.waiting.unshift(w);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.grant);
  }

  // one turn per check phase: a setImmediate queued during the check phase runs in the next loop
  // iteration, after that iteration's poll phase has served I/O
  private readonly grant = (): void => {
    this.scheduled = false;
    const now = performance.now();
    const last = this.current;
    this.current = undefined;
    if (last) {
      const ms = now - last.grantedAt;
      if (ms < MAX_MEASURED_MS) last.spentMs += ms;
      else last.measured = false;
      // its last turn is over: the whole request's time per byte joins the average
      if (!last.again && last.measured && last.bytes > 0) this.msPerByte += EWMA * (last.spentMs / last.bytes - this.msPerByte);
    }
    if (this.head === this.waiting.length) return;
    const w = this.waiting[this.head++];
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
    const job = w.job;
    if (job.again) job.again = false;
    else {
      this.waitingBytes -= job.bytes;
      this.stats.requests++;
    }
    this.stats.turns++;
    job.grantedAt = now;
    this.current = job;
    // the next turn is scheduled before this one's work runs (in the microtasks after this
    // callback): it lands in the next iteration whatever the work does
    this.schedule();
    w.resolve(job);
  };
}
