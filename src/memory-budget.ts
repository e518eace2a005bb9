// The engine's in-memory budgets, derived from V8's heap limit so that one limit (npm start gives
// V8 768 MB, README "Memory") bounds them all: under a small limit the engine refuses requests
// (503 + Retry-After) before the heap runs out, instead of V8 ending the process.
// The log's budgets were set for V8's own limit on a large machine (~4 GB) and stay the same there;
// bodies in flight are a fraction of the limit everywhere (128 MB at 4 GB, was 256).
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MemoryBudgets {
  /** V8's heap limit the budgets were derived from. */
  heapLimitBytes: number;
  /** Ingest request bodies in flight (admission); their parsed rows take ~10× that of heap. */
  inflightBodyBytes: number;
  /** Log bytes waiting for their fsync; their rows are held as objects, ~9× their log bytes. */
  fsyncWaitingLogBytes: number;
  /** Heap a log consumer (loader, observer) may hold in records read ahead, per consumer. */
  readAheadHeapBytes: number;
  /** Heap in use past which ingest is refused: the margin left is for queries and the work in flight. */
  refuseHeapBytes: number;
}

const MB = 1 << 20;

/** Pure: the budgets for a heap limit (bytes). */
export function memoryBudgets(heapLimitBytes: number): MemoryBudgets {
  const limit = Math.max(64 * MB, heapLimitBytes);
  return {
    heapLimitBytes: limit,
    // a body's parsed rows hold ~10× its bytes of heap (wal/cursor.ts measures 9× per log byte)
    inflightBodyBytes: Math.min(256 * MB, Math.floor(limit / 32)),
    fsyncWaitingLogBytes: Math.max(1 * MB, Math.min(16 * MB, Math.floor(limit / 72))),
    // the loader takes a block a second: a budget that holds less than a few seconds of a busy log
    // sends it back to the segment files, re-reading and decoding on the event loop (at 48 MB the
    // sustained ingest fell 40 %, bench/README.md)
    readAheadHeapBytes: Math.max(1 * MB, Math.min(128 * MB, Math.floor(limit / 6))),
    refuseHeapBytes: Math.floor(limit * 0.85),
  };
}

/** The budgets for this process's heap limit (`--max-old-space-size`, or V8's default). */
export function processMemoryBudgets(): MemoryBudgets {
  return memoryBudgets(getHeapStatistics().heap_size_limit);
}

/** The JavaScript heap in use now, garbage not yet collected included. */
export function heapUsedBytes(): number {
  return getHeapStatistics().used_heap_size;
}

let gc: (() => void) | null | undefined;

/**
 * A full garbage collection, now. The heap in use counts garbage until V8 collects it, and V8
 * collects old garbage only when it allocates more: an engine refusing requests for memory allocates
 * little, so it would go on refusing for garbage it never collects. Blocks for as long as the
 * collection takes (tens of ms per 100 MB live). Does nothing where the runtime does not allow it.
 */
export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
}
