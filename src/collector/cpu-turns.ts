// Turns on the event loop for the CPU-heavy part of ingest requests (parsing, validation,
// redaction, encoding the log record). Without them, every request whose body completes in the same
// poll phase is parsed back to back: a stretch of hundreds of milliseconds during which nothing else
// is answered, not even a refusal. With them, one request's work runs per loop iteration (in the
// check phase) and the loop's I/O — new requests, refusals, fsync completions — is served between
// two turns. The requests waiting for a turn are also the engine's truest queue: admission reads
// how long they would take (queuedMs) and refuses new ones past its target.

/** Start of the calibration: 20 MB/s of parsing and validation (a conservative guess). */
const INITIAL_MS_PER_BYTE = 1 / 20_000;
/** Weight of the newest measurement in the running average of ms per byte. */
const EWMA = 0.1;
/** A turn whose gap to the next one is longer than this was idle time, not work: not measured. */
const MAX_MEASURED_MS = 1000;

interface Waiter {
  bytes: number;
  resolve: () => void;
}

export class CpuTurns {
  private readonly waiting: Waiter[] = [];
  private head = 0;
  private scheduled = false;
  private waitingBytes = 0;
  /** Running average of a turn's time per body byte (work and the I/O served after it). */
  msPerByte = INITIAL_MS_PER_BYTE;
  private last: { at: number; bytes: number } | undefined;
  readonly stats = { turns: 0 };

  /** Requests waiting for a turn. */
  get length(): number {
    return this.waiting.length - this.head;
  }

  /** How long the requests waiting now would take, at the measured rate. */
  queuedMs(): number {
    return this.waitingBytes * this.msPerByte;
  }

  /** Resolves when it is this request's turn; its synchronous work then runs alone. */
  take(bytes: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push({ bytes, resolve });
      this.waitingBytes += bytes;
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
    if (this.last && this.last.bytes > 0) {
      const ms = now - this.last.at;
      if (ms < MAX_MEASURED_MS) this.msPerByte += EWMA * (ms / this.last.bytes - this.msPerByte);
    }
    this.last = undefined;
    if (this.head === this.waiting.length) return;
    const w = this.waiting[this.head++];
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
    this.waitingBytes -= w.bytes;
    this.stats.turns++;
    this.last = { at: now, bytes: w.bytes };
    // the next turn is scheduled before this one's work runs (in the microtasks after this
    // callback): it lands in the next iteration whatever the work does
    this.schedule();
    w.resolve();
  };
}
