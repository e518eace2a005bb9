// Codecs at start: a store written with the previous release's codecs gets the current ones (a
// metadata change; its rows read the same), and a store already there is left alone.
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../../test/helpers.js';
import type { EventRow } from '../event.js';
import { emptyFilter } from '../query/filters.js';
import { listGroups } from '../aggregator/queries.js';
import { ChdbTransport } from './chdb-transport.js';
import { EventStore } from './event-store.js';
import { migrateEventStore, sameCodec } from './migrate.js';
import { ALL_FEATURES, EVENTS_TABLE, ROLLUP_STATES, ROLLUP_TABLE, eventColumnType, rollupStateCodec, schemaStatements } from './schema.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) removeDir(d);
});

/** The layout before the second storage pass: ZSTD(3) on message and on the rollup's states. */
const PREVIOUS_LAYOUT = schemaStatements(ALL_FEATURES).map((s) => s.replaceAll('ZSTD(9)', 'ZSTD(3)'));

const T0 = Date.parse('2026-11-20T10:00:00Z');
const rows: EventRow[] = Array.from({ length: 30 }, (_, i) => ({
  id: `ev-${i}`, timestamp: T0 + i * 1000, received_at: T0 + i * 1000 + 5, project_id: 'pa', event_type: 'execution', engine: 'execution',
  triggered_by: '', flow_id: 'flow-1', session_id: `s-${i % 3}`, user_id: `u-${i % 4}`, trace_id: '', span_id: '', platform: 'Slack',
  action: 'send', status: i % 3 === 0 ? 'error' : 'success', severity: 'info', error_type: i % 3 === 0 ? 'Timeout' : '',
  message: i % 3 === 0 ? `timed out after ${i} ms` : 'ok', stack: '', duration_ms: 12, retries: 0, fingerprint: i % 3 === 0 ? 'fp-1' : '',
  alert: 0, sampled: 0, attr_keys: ['region'], attr_values: ['eu'],
}));

const codecs = async (t: ChdbTransport, table: string) => Object.fromEntries((await t.query<{ name: string; compression_codec: string }>(
  `SELECT name, compression_codec FROM system.columns WHERE database = currentDatabase() AND table = '${table}'`,
)).map((c) => [c.name, c.compression_codec]));

describe('codecs at start', () => {
  it('reads back the codec the server shows as the one asked for', () => {
    expect(sameCodec('CODEC(Delta(8), ZSTD(1))', 'CODEC(Delta, ZSTD(1))')).toBe(true);
    expect(sameCodec('CODEC(ZSTD(1))', 'CODEC(ZSTD)')).toBe(true);
    expect(sameCodec('CODEC(ZSTD(3))', 'CODEC(ZSTD(9))')).toBe(false);
    expect(sameCodec('', 'CODEC(ZSTD(9))')).toBe(false);
    expect(sameCodec('CODEC(DoubleDelta(8), ZSTD(1))', 'CODEC(Delta, ZSTD(1))')).toBe(false);
  });

  it('a store with the previous codecs gets the current ones; its rows and groups read the same; the next start changes nothing', async () => {
    const dir = tempDir('pm-codec-');
    dirs.push(dir);
    const t = new ChdbTransport(dir);
    const store = new EventStore(t, 10_000);
    try {
      for (const s of PREVIOUS_LAYOUT) await t.exec(s);
      await store.insert(rows);
      const filter = { ...emptyFilter(), projects: ['pa'], from: T0, to: T0 + 3_600_000 };
      const before = await store.search(filter, { order: 'asc', limit: 100 });
      const groupsBefore = (await listGroups(store, filter, 'count', 10)).rows;
      expect(groupsBefore[0]).toMatchObject({ fingerprint: 'fp-1', count: 10 });

      const { changes } = await migrateEventStore(t);
      // exactly the columns whose codec moved: nothing else is touched (timestamp reads back Delta(8))
      const moved = [
        ...Object.keys(await codecs(t, EVENTS_TABLE)).filter((c) => eventColumnType(c, ALL_FEATURES).codec.includes('ZSTD(9)')),
        ...ROLLUP_STATES.map(([n]) => n),
      ];
      expect(changes).toHaveLength(moved.length);
      for (const c of changes) expect(c).toMatch(/^ALTER TABLE (events|error_rollup) MODIFY COLUMN \w+ .* CODEC\(ZSTD\(9\)\)$/);

      const ev = await codecs(t, EVENTS_TABLE);
      for (const [name, codec] of Object.entries(ev)) expect(sameCodec(codec, eventColumnType(name, ALL_FEATURES).codec), name).toBe(true);
      const ru = await codecs(t, ROLLUP_TABLE);
      for (const [name] of ROLLUP_STATES) expect(ru[name]).toBe(rollupStateCodec(ALL_FEATURES));

      // merged under the new codec, the same answers; new rows keep rolling up into the same group
      await t.exec(`OPTIMIZE TABLE ${EVENTS_TABLE} FINAL`);
      await t.exec(`OPTIMIZE TABLE ${ROLLUP_TABLE} FINAL`);
      expect(await store.search(filter, { order: 'asc', limit: 100 })).toEqual(before);
      expect((await listGroups(store, filter, 'count', 10)).rows).toEqual(groupsBefore);
      await store.insert([{ ...rows[0], id: 'after', timestamp: T0 + 60_000 }]);
      expect((await listGroups(store, filter, 'count', 10)).rows[0]).toMatchObject({ fingerprint: 'fp-1', count: 11 });

      expect((await migrateEventStore(t)).changes).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
