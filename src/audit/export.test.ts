import { describe, expect, it } from 'vitest';
import { convertRows, planCuts, windowsFromCuts } from './export.js';
import { CSV_COLUMNS } from './csv.js';
import { row } from './test-rows.js';

describe('export windows', () => {
  it('cuts runs of buckets at most maxRows long and sets oversized buckets aside', () => {
    const b = (start: number, n: number) => ({ start, n });
    expect(planCuts([b(0, 40), b(10, 50), b(20, 30), b(30, 30)], 10, 100)).toEqual({ cuts: [20], oversized: [] });
    expect(planCuts([b(0, 40), b(10, 500), b(20, 30), b(40, 90)], 10, 100)).toEqual({ cuts: [10, 20, 40], oversized: [b(10, 500)] });
    expect(planCuts([b(0, 500)], 10, 100)).toEqual({ cuts: [10], oversized: [b(0, 500)] });
    expect(planCuts([], 10, 100)).toEqual({ cuts: [], oversized: [] });
  });

  it('turns cut points into consecutive windows covering the whole range', () => {
    expect(windowsFromCuts([30, 10, 10], undefined, undefined)).toEqual([{ from: undefined, to: 10 }, { from: 10, to: 30 }, { from: 30, to: undefined }]);
    expect(windowsFromCuts([5, 10, 30, 40], 10, 40)).toEqual([{ from: 10, to: 30 }, { from: 30, to: 40 }]);
    expect(windowsFromCuts([], 1, 2)).toEqual([{ from: 1, to: 2 }]);
  });

  it('converts rows to NDJSON timeline entries or CSV lines', () => {
    const rows = [row({ id: 'a', user_id: 'u' }), row({ id: 'b', message: '=1+1' })];
    const nd = convertRows(rows, 'ndjson');
    expect(nd.trimEnd().split('\n').map((l) => JSON.parse(l).id)).toEqual(['a', 'b']);
    expect(JSON.parse(nd.split('\n')[0]).who.user_id).toBe('u');
    const csv = convertRows(rows, 'csv');
    expect(csv.split('\r\n')).toHaveLength(3);
    expect(csv.split('\r\n')[1].split(',')[CSV_COLUMNS.indexOf('message')]).toBe("'=1+1");
    expect(convertRows([], 'csv')).toBe('');
  });
});
