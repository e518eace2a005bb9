import { describe, expect, it } from 'vitest';
import { insertIsolating, isClickHouseDataError } from './isolate.js';

class DataError extends Error {
  clickhouseCode = 26;
}

describe('insertIsolating', () => {
  it('stores every good row and returns only the poisoned ones, in input order', async () => {
    const stored: number[] = [];
    const rows = Array.from({ length: 37 }, (_, i) => i);
    const poison = new Set([3, 20, 36]);
    const res = await insertIsolating(rows, async (part) => {
      if (part.some((r) => poison.has(r))) throw new DataError('Cannot parse escape sequence');
      stored.push(...part);
    }, isClickHouseDataError);
    expect(res.failed.map((f) => f.row)).toEqual([3, 20, 36]);
    expect(stored.sort((a, b) => a - b)).toEqual(rows.filter((r) => !poison.has(r)));
    expect(res.attempts).toBeGreaterThan(1);
  });

  it('makes one insert when nothing fails', async () => {
    const res = await insertIsolating([1, 2, 3], async () => {}, isClickHouseDataError);
    expect(res).toEqual({ failed: [], attempts: 1 });
  });

  it('fails the whole batch on a storage error instead of splitting it', async () => {
    let calls = 0;
    const down = Object.assign(new Error('Connection refused'), { code: 'ECONNREFUSED' });
    await expect(insertIsolating([1, 2, 3, 4], async () => {
      calls++;
      throw down;
    }, isClickHouseDataError)).rejects.toBe(down);
    expect(calls).toBe(1);
  });
});

describe('isClickHouseDataError', () => {
  it('tells input errors from storage errors', () => {
    expect(isClickHouseDataError({ clickhouseCode: 26, message: 'x' })).toBe(true);
    expect(isClickHouseDataError({ clickhouseCode: 243, message: 'Cannot reserve 1.00 MiB' })).toBe(false);
    expect(isClickHouseDataError(new Error('Code: 27. DB::Exception: Cannot parse input'))).toBe(true);
    expect(isClickHouseDataError(new Error('socket hang up'))).toBe(false);
  });
});
