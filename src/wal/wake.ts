// A sleep another part can cut short: new records for a cursor, a nudge or a stop for the loader.
export class Wakeable {
  private wakeUp: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  wake(): void {
    this.wakeUp?.();
  }
}

/**
 * How a long synchronous pass gives the event loop back: it asks `due()` as it goes, and when the
 * slice is used up awaits `next()` before going on.
 */
export interface Slicer {
  due(): boolean;
  next(): Promise<void>;
}

/** For a pass that runs whole (no one to give the loop to: tests, engine-internal writes). */
export const UNSLICED: Slicer = { due: () => false, next: () => Promise.resolve() };

/**
 * A long synchronous pass (decoding a read, a loader's block) cut into slices: past `ms` since the
 * last turn given, the pass gives the event loop one turn, so requests are not held behind it.
 */
export class TimeSlice implements Slicer {
  private started = performance.now();

  constructor(private readonly ms: number) {}

  /** Whether the slice is used up (then `await next()`). */
  due(): boolean {
    return performance.now() - this.started > this.ms;
  }

  async next(): Promise<void> {
    await yieldTurn();
    this.started = performance.now();
  }
}

/** One turn of the event loop: I/O and other requests run before the caller goes on. */
export function yieldTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
