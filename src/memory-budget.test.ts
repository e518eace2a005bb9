import { describe, expect, it } from 'vitest';
import { memoryBudgets, processMemoryBudgets } from './memory-budget.js';

const MB = 1 << 20;

describe('memory budgets from the heap limit', () => {
  it('keeps the log\'s budgets set for a large heap (V8 default on a big machine)', () => {
    expect(memoryBudgets(4096 * MB)).toEqual({
      heapLimitBytes: 4096 * MB, inflightBodyBytes: 128 * MB, fsyncWaitingLogBytes: 16 * MB,
      readAheadHeapBytes: 128 * MB, refuseHeapBytes: Math.floor(4096 * MB * 0.85),
    });
  });

  it('shrinks them with a small limit, leaving room for queries below the refusal line', () => {
    const b = memoryBudgets(768 * MB);
    expect(b.inflightBodyBytes).toBe(24 * MB);
    expect(b.readAheadHeapBytes).toBe(128 * MB);
    // rows waiting for the fsync are ~9× their log bytes
    expect(b.fsyncWaitingLogBytes * 9).toBeLessThanOrEqual(96 * MB);
    // the budgets that hold heap (two log consumers, rows waiting for the fsync, parsed bodies) stay under the refusal line
    expect(2 * b.readAheadHeapBytes + 9 * b.fsyncWaitingLogBytes + 10 * b.inflightBodyBytes).toBeLessThan(b.refuseHeapBytes);
    expect(b.refuseHeapBytes).toBeLessThan(768 * MB);
  });

  it('never goes below a floor that still lets one request through', () => {
    const b = memoryBudgets(1);
    expect(b.heapLimitBytes).toBe(64 * MB);
    expect(b.fsyncWaitingLogBytes).toBe(1 * MB);
    expect(b.readAheadHeapBytes).toBe(Math.floor(64 * MB / 6));
  });

  it('reads the running process\'s limit', () => {
    expect(processMemoryBudgets().heapLimitBytes).toBeGreaterThan(64 * MB);
  });
});
