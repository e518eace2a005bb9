// The event store on chDB: a store of the first layout is migrated at start (and a second start
// changes nothing); the duplicate check reads the events themselves, in bounded chunks under one
// deadline, so a resent id is found whatever failed around its first insert.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIRST_LAYOUT } from '../../test/first-layout.js';
import { removeDir, tempDir } from '../../test/helpers.js';
import type { EventRow } from '../event.js';
import { emptyFilter } from '../query/filters.js';
import { listGroups } from '../aggregator/queries.js';
import { ChdbTransport } from './chdb-transport.js';
import { EventStore, idCheckChunks, RESEND_WINDOW_MS, type IdProbe } from './event-store.js';
import { migrateEventStore } from './migrate.js';
import { EVENT_INDEXES } from './schema.js';
import { QueryTimeoutError } from './transport.js';

const T0 = Date.parse('2026-11-20T10:00:00Z');
let n = 0;
function row(p: Partial<EventRow>): EventRow {
  n++;
  return {
    id: `ev-${n}`, timestamp: T0 + n * 1000, received_at: T0 + n * 1000 + 5, project_id: 'pa', event_type: 'execution', engine: 'execution',
    triggered_by: '', flow_id: 'flow-1', session_id: '', user_id: '', trace_id: '', span_id: '', platform: 'Slack', action: 'send',
    status: 'success', severity: 'info', error_type: '', message: 'ok', stack: '', duration_ms: 12, retries: 0, fingerprint: '',
    alert: 0, sampled: 0, attr_keys: ['region'], attr_values: ['eu'], ...p,
  };
}

let dir = '';
let store: EventStore;
const OLD_ROWS = Array.from({ length: 40 }, (_, i) => row({
  session_id: `s-${i % 4}`, trace_id: `t-${i % 8}`, user_id: `u-${i % 5}`,
  ...(i % 10 === 0 ? { status: 'error', error_type: 'Timeout', fingerprint: 'fp-1', message: `timed out ${i}` } : {}),
}));

beforeAll(async () => {
  dir = tempDir('pm-store-');
  const t = new ChdbTransport(dir);
  for (const s of FIRST_LAYOUT) await t.exec(s);
  store = new EventStore(t, 10_000);
  await store.insert(OLD_ROWS);
});
afterAll(async () => {
  await store?.close();
  if (dir) removeDir(dir);
});

const types = async () => Object.fromEntries((await store.query<{ name: string; type: string }>(
  "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'events'",
)).map((c) => [c.name, c.type]));

describe('a store written by the first layout', () => {
  it('is migrated at start: lookup table gone, typed columns, skip indexes, the same answers', async () => {
    const before = await store.search({ ...emptyFilter(), eq: { session_id: ['s-1'] } }, { order: 'asc', limit: 100 });
    expect(before.rows).toHaveLength(10);
    const { changes } = await migrateEventStore(store.transport);
    expect(changes.join('\n')).toMatch(/DROP TABLE IF EXISTS event_keys_mv[\s\S]*DROP TABLE IF EXISTS event_keys\b/);
    const tables = (await store.query<{ name: string }>('SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name')).map((r) => r.name);
    expect(tables).toEqual(['error_rollup', 'error_rollup_mv', 'events']);
    const t = await types();
    expect(t.platform).toBe('LowCardinality(String)');
    expect(t.user_id).toBe('LowCardinality(String)');
    expect(t.attr_keys).toBe('Array(LowCardinality(String))');
    const ddl = (await store.query<{ statement: string }>('SHOW CREATE TABLE events'))[0].statement;
    for (const [name] of EVENT_INDEXES) expect(ddl).toContain(`INDEX ${name} `);
    expect(ddl).toMatch(/`timestamp` Int64 CODEC\(Delta\(8\), ZSTD\(1\)\)/);
    expect(ddl).toMatch(/`message` String CODEC\(ZSTD\(3\)\)/);

    const after = await store.search({ ...emptyFilter(), eq: { session_id: ['s-1'] } }, { order: 'asc', limit: 100 });
    expect(after.rows).toEqual(before.rows);
  });

  it('changes nothing at the next start', async () => {
    expect((await migrateEventStore(store.transport)).changes).toEqual([]);
    await store.init();
  });

  it('keeps rolling errors up into the same groups, old rows and new', async () => {
    await store.insert([row({ status: 'error', error_type: 'Timeout', fingerprint: 'fp-1', message: 'timed out again', user_id: 'u-9' })]);
    const { rows: groups } = await listGroups(store, { ...emptyFilter(), projects: ['pa'], from: T0, to: T0 + 3 * 3_600_000 }, 'count', 10);
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ fingerprint: 'fp-1', count: 5, users: 2, error_type: 'Timeout', message: 'timed out again' });
  });
});

describe('the duplicate check', () => {
  it('finds stored events by project and id, at their own time or, engine-stamped, up to a day earlier or later', async () => {
    const own = row({ project_id: 'pd', id: 'own-ts' });
    const stamped = row({ project_id: 'pd', id: 'stamped' });
    stamped.received_at = stamped.timestamp;
    await store.insert([own, stamped]);
    const later = stamped.timestamp + RESEND_WINDOW_MS - 60_000;
    const found = await store.existingIds([
      { project_id: 'pd', id: 'own-ts', timestamp: own.timestamp, received_at: own.timestamp + 9 },
      // resent without a timestamp: stamped again, hours later
      { project_id: 'pd', id: 'stamped', timestamp: later, received_at: later },
      { project_id: 'pd', id: 'ev-1', timestamp: OLD_ROWS[0].timestamp, received_at: OLD_ROWS[0].received_at }, // pa's id, not pd's
      { project_id: 'pa', id: 'ev-1' }, // no times: the whole project
      { project_id: 'pa', id: 'nope' },
    ]);
    expect([...found].sort()).toEqual(['pa\u0000ev-1', 'pd\u0000own-ts', 'pd\u0000stamped']);
    // stamped earlier than the stored copy: a node loading its log after a retry of the same request
    // went to another node, which stamped and stored it later
    const earlier = stamped.timestamp - RESEND_WINDOW_MS + 60_000;
    expect(await store.existingIds([{ project_id: 'pd', id: 'stamped', timestamp: earlier, received_at: earlier }])).toEqual(new Set(['pd\u0000stamped']));
    // a different timestamp sent by the client is a different event time: not the stored one
    expect(await store.existingIds([{ project_id: 'pd', id: 'own-ts', timestamp: own.timestamp + 1, received_at: 1 }])).toEqual(new Set());
  });

  it('sees rows whose insert failed after they were written (a view failing behind them)', async () => {
    await store.transport.exec('CREATE TABLE boom_sink (x UInt8) ENGINE = Memory');
    await store.transport.exec("CREATE MATERIALIZED VIEW boom_mv TO boom_sink AS SELECT throwIf(message = 'boom') AS x FROM events");
    try {
      const rows = [row({ project_id: 'pf', id: 'half-1', message: 'boom' }), row({ project_id: 'pf', id: 'half-2', message: 'boom' })];
      await expect(store.insert(rows)).rejects.toThrow(/throwIf|FUNCTION_THROW_IF_VALUE_IS_NON_ZERO|boom/i);
      const stored = await store.query<{ n: number }>("SELECT count() AS n FROM events WHERE project_id = 'pf'");
      expect(Number(stored[0].n)).toBe(2); // written although the insert failed
      expect(await store.existingIds(rows)).toEqual(new Set(['pf\u0000half-1', 'pf\u0000half-2']));
    } finally {
      await store.transport.exec('DROP TABLE IF EXISTS boom_mv');
      await store.transport.exec('DROP TABLE IF EXISTS boom_sink');
    }
  });

  it('asks in bounded chunks, however many ids and however scattered in time', async () => {
    const rows = Array.from({ length: 5_000 }, (_, i) => row({ project_id: `pc${i % 7}`, id: `c-${i}`, timestamp: T0 + i * 60_000 }));
    await store.insert(rows);
    const probes: IdProbe[] = [...rows, ...rows.slice(0, 300).map((r) => ({ ...r, id: `${r.id}-new` }))];
    const chunks = idCheckChunks(probes);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    for (const c of chunks) {
      expect(c.ids.length).toBeLessThanOrEqual(2_000);
      expect(c.ranges.length).toBeLessThanOrEqual(64);
    }
    // every probe is covered by a range of the chunk that holds its id
    for (const p of probes) {
      const c = chunks.find((k) => k.ids.includes(p.id) && k.ranges.some((r) => r.project_id === p.project_id && (r.lo === undefined || (r.lo <= p.timestamp! && p.timestamp! <= r.hi!))));
      expect(c, p.id).toBeDefined();
    }
    const found = await store.existingIds(probes);
    expect(found.size).toBe(5_000);
    expect(found.has('pc0\u0000c-0-new')).toBe(false);
  });

  it('gives up at its deadline instead of running on', async () => {
    const probes = Array.from({ length: 20_000 }, (_, i) => ({ project_id: `pc${i % 7}`, id: `x-${i}`, timestamp: T0 + i * 60_000, received_at: 0 }));
    const t = performance.now();
    await expect(store.existingIds(probes, { timeoutMs: 5 })).rejects.toBeInstanceOf(QueryTimeoutError);
    expect(performance.now() - t).toBeLessThan(1_000);
  });
});

describe('search, newest first', () => {
  const DAY = 86_400_000;
  const now = Date.now();
  // project pw: 2 events in the last day (one stamped in the future), 6 over the days before,
  // two of them at the same millisecond (the id breaks the tie)
  const at = [now + 60_000, now - 3_600_000, now - DAY - 1, now - 2 * DAY, now - 2 * DAY, now - 3 * DAY, now - 5 * DAY, now - 9 * DAY];
  const rows = at.map((t, i) => row({ project_id: 'pw', id: `w-${i}`, timestamp: t, received_at: t }));
  const expected = [...rows].sort((a, b) => b.timestamp - a.timestamp || (b.id < a.id ? -1 : 1)).map((r) => r.id);
  const f = (extra: Partial<ReturnType<typeof emptyFilter>> = {}) => ({ ...emptyFilter(), projects: ['pw'], ...extra });
  beforeAll(async () => {
    await store.insert(rows);
  });

  it('fills a page from the newest day, then the days before, in order, never skipping or repeating', async () => {
    const first = await store.search(f(), { order: 'desc', limit: 5 });
    expect(first.rows.map((r) => r.id)).toEqual(expected.slice(0, 5));
    const seen = first.rows.map((r) => r.id);
    for (let after = first.next; after; ) {
      const page = await store.search(f(), { order: 'desc', limit: 2, after });
      seen.push(...page.rows.map((r) => r.id));
      after = page.next;
    }
    expect(seen).toEqual(expected);
    // a page the newest day fills alone, and a page past the end
    expect((await store.search(f(), { order: 'desc', limit: 2 })).rows.map((r) => r.id)).toEqual(expected.slice(0, 2));
    expect(await store.search(f({ to: now - 20 * DAY }), { order: 'desc', limit: 5 })).toEqual({ rows: [], next: undefined });
  });

  it('keeps to the asked range on both sides of the cut', async () => {
    const page = await store.search(f({ from: now - 4 * DAY, to: now }), { order: 'desc', limit: 10 });
    expect(page.rows.map((r) => r.id)).toEqual(expected.filter((id) => { const t = rows.find((r) => r.id === id)!.timestamp; return t >= now - 4 * DAY && t < now; }));
    expect(page.next).toBeUndefined();
  });
});
