// Collector on its own: validation in the request's turns gives the same rows as at once.
import { describe, expect, it } from 'vitest';
import type { Principal } from '../auth/principal.js';
import type { EventRow } from '../event.js';
import { Collector, type AcceptOptions } from './ingest.js';

const admin: Principal = { name: 'admin-token', scopes: new Set(['ingest', 'read', 'admin']), projects: '*' };

/** Keeps what it is given: the write-ahead log's place, without the disk. */
function keptRows() {
  const kept: { rows: EventRow[]; opts: AcceptOptions }[] = [];
  return { kept, sink: { accept: async (rows: EventRow[], opts: AcceptOptions) => (kept.push({ rows, opts }), { duplicates: 0 }) } };
}

describe('Collector', () => {
  it('validates in slices when the request\'s turn says so, accepting and rejecting the same events', async () => {
    const items = Array.from({ length: 100 }, (_, i) => (i % 10 === 3
      ? { project_id: 'p', timestamp: 'not a time', message: `m${i}` }
      : { project_id: 'p', id: `id-${i}`, timestamp: 1_700_000_000_000 + i, message: `m${i}`, event_type: 'execution', engine: 'execution' }));
    const whole = keptRows();
    const sliced = keptRows();
    let turns = 0;
    const alwaysDue = { due: () => true, next: async () => void turns++ };
    const a = await new Collector(whole.sink, []).ingest(items, admin);
    const b = await new Collector(sliced.sink, []).ingest(items, admin, { turn: alwaysDue });
    // one look every 16 events: the loop was given back 6 times for 100 events
    expect(turns).toBe(6);
    expect(b.accepted).toBe(90);
    expect(b.rejected.map((r) => r.index)).toEqual(a.rejected.map((r) => r.index));
    const strip = (rows: EventRow[]) => rows.map(({ received_at: _r, ...rest }) => rest);
    expect(strip(sliced.kept[0].rows)).toEqual(strip(whole.kept[0].rows));
    // the log's encoding is handed the same turn
    expect(sliced.kept[0].opts.turn).toBe(alwaysDue);
  });
});
