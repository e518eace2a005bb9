import { describe, expect, it } from 'vitest';
import { newEventId } from './ids.js';

describe('newEventId', () => {
  it('is a UUIDv7 carrying the timestamp', () => {
    const t = Date.parse('2025-07-25T14:01:00.123Z');
    const id = newEventId(t);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(t);
  });
  it('is unique across many calls and sorts by time', () => {
    const ids = new Set(Array.from({ length: 20_000 }, () => newEventId(1_700_000_000_000)));
    expect(ids.size).toBe(20_000);
    expect(newEventId(1_700_000_000_000) < newEventId(1_700_000_000_001)).toBe(true);
  });
});
