import { describe, expect, it } from 'vitest';
import { asBool, asDuration, asNumber, onlyParams, parseDuration } from './params.js';

describe('audit parameters', () => {
  it('parses durations with units or as milliseconds', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('5000')).toBe(5000);
    for (const bad of ['', '1w', '-1h', '1.5h', 'h', '1 h x']) expect(parseDuration(bad), bad).toBeUndefined();
  });

  it('names the field and the range when a value is out of bounds', () => {
    const errors: { field: string; message: string }[] = [];
    expect(asDuration('1ms', 'window', 1000, 86_400_000, errors)).toBeUndefined();
    expect(errors[0]).toEqual({ field: 'window', message: 'must be a duration from 1s to 1d (e.g. 30m, 2h, 1d, or milliseconds)' });
    expect(asNumber('0.5', 'factor', 1, 100, errors)).toBeUndefined();
    expect(asNumber('2.5', 'factor', 1, 100, errors)).toBe(2.5);
    expect(asNumber('1e3', 'factor', 1, 100, errors)).toBeUndefined();
    expect(asBool('yes', 'has_error', errors)).toBeUndefined();
    expect(asBool('false', 'has_error', errors)).toBe(false);
    expect(asBool(['true', 'false'], 'has_error', errors)).toBeUndefined();
    expect(errors.map((e) => e.field)).toEqual(['window', 'factor', 'factor', 'has_error', 'has_error']);
  });

  it('rejects parameters outside the allowed list', () => {
    const errors: { field: string; message: string }[] = [];
    onlyParams({ project_id: 'a', status: 'error', 'attr.x': '1' }, ['project_id'], errors);
    expect(errors).toEqual([
      { field: 'status', message: 'is not a known parameter' },
      { field: 'attr.x', message: 'is not a known parameter' },
    ]);
  });
});
