// The server transport against a real clickhouse-server (Debian's 18.16 in CI): the same EventStore
// and the same stage SQL as on chDB, with the same answers. Started by scripts/clickhouse-server.sh.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, freePort, qs, removeDir, startEngine, tempDir } from '../../test/helpers.js';
import type { EventRow } from '../event.js';
import fc from 'fast-check';
import { eventArb, printQuery, queryArb } from '../../test/query-arbitraries.js';
import { emptyFilter, ParamBag, parseFilter, whereClause, type EventFilter } from '../query/filters.js';
import { matchesFilter } from '../query/match.js';
import { EVENTS_TABLE } from './schema.js';
import { countGroups, groupTop, groupTotals, listGroups, projectsWithFingerprint } from '../aggregator/queries.js';
import { load, performance, timeseries } from '../performance/queries.js';
import { ChdbTransport } from './chdb-transport.js';
import { EventStore, type SearchOptions } from './event-store.js';
import { ClickHouseServerError, clusterSchemaStatements, HttpTransport, shardStatement } from './http-transport.js';
import { QueryTimeoutError } from './transport.js';
import { migrateEventStore } from './migrate.js';
import { FIRST_LAYOUT } from '../../test/first-layout.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'scripts', 'clickhouse-server.sh');
const INSTALL_HINT = 'clickhouse-server is not installed: run `bash scripts/install-system-deps.sh` (it installs Debian\'s clickhouse-server, which these tests need)';

function serverInstalled(): boolean {
  return ['/usr/sbin/clickhouse-server', '/usr/bin/clickhouse-server', '/usr/bin/clickhouse'].some((p) => existsSync(p));
}


let dir = '';
let url = '';
let server: HttpTransport;
let onServer: EventStore;
let chdbDir = '';
let onChdb: EventStore;

// ---- a small data set -------------------------------------------------------------------------

const T0 = Date.parse('2025-07-25T10:00:00Z');
const NOW = Date.now();
const HOSTILE = [
  "it's", 'back\\slash', 'quote\'\\\'', 'nul\u0000byte', 'line\nbreak\r\ttab', '{p0:String}', '{x:Array(String)}',
  'ünïcødé ДАННЫЕ 日本語 😀', "'; DROP TABLE events; --", '\\x41\\0', '\u0001\u001f\u007f', '/* c */ -- d',
];

let n = 0;
function row(p: Partial<EventRow>): EventRow {
  n++;
  return {
    id: `ev-${String(n).padStart(4, '0')}`, timestamp: T0 + n * 1000, received_at: T0 + n * 1000,
    project_id: 'pa', event_type: 'execution', engine: 'execution', triggered_by: '', flow_id: '', session_id: '',
    user_id: '', trace_id: '', span_id: '', platform: '', action: '', status: 'success', severity: '', error_type: '',
    message: '', stack: '', duration_ms: null, retries: null, fingerprint: '', alert: 0, sampled: 0,
    attr_keys: [], attr_values: [],
    ...p,
  };
}

function dataSet(): EventRow[] {
  const rows: EventRow[] = [];
  // project pa: Slack sends (durations, some errors and retries), Notion pages (timeouts)
  for (let i = 0; i < 30; i++) {
    const err = i % 5 === 0;
    rows.push(row({
      timestamp: T0 + i * 60_000, platform: 'Slack', action: 'send_message', flow_id: `flow-${i % 3}`,
      session_id: `s-${i % 4}`, user_id: `u-${i % 6}`, duration_ms: 100 + ((i * 37) % 200) + (i === 7 ? 5000 : 0),
      retries: i % 3, status: err ? 'error' : 'success', event_type: err ? 'error' : 'execution',
      error_type: err ? 'TokenExpired' : '', message: err ? `Failed to send message – token expired #${i}` : 'sent',
      fingerprint: err ? 'fp-token' : '', severity: err ? 'high' : 'info', trace_id: `tr-${i % 2}`,
      attr_keys: ['region', 'tier'], attr_values: [i % 2 ? 'eu' : 'us', `t${i % 3}`],
    }));
  }
  for (let i = 0; i < 12; i++) {
    rows.push(row({
      timestamp: T0 + i * 120_000 + 500, platform: 'Notion', action: 'create_page', engine: 'platform_builder',
      duration_ms: 300 + ((i * 53) % 900), retries: 1, status: i % 4 === 0 ? 'timeout' : 'success',
      error_type: i % 4 === 0 ? 'api_timeout' : '', fingerprint: i % 4 === 0 ? 'fp-timeout' : '',
      user_id: i % 2 ? 'u-1' : '', session_id: 's-n', message: i % 4 === 0 ? 'Notion API Timeout' : 'ok',
    }));
  }
  // project pb: the same fingerprint elsewhere, an alert, hostile text, recent receive times for load()
  HOSTILE.forEach((h, i) => rows.push(row({
    project_id: 'pb', timestamp: T0 + i * 30_000 + 7, received_at: NOW - 1000 * i, message: h, stack: `at ${h}`,
    error_type: i % 2 ? 'TokenExpired' : 'Ünicode', fingerprint: i % 2 ? 'fp-token' : 'fp-uni', user_id: h, session_id: `sb-${i % 3}`,
    engine: 'vault', alert: i === 3 ? 1 : 0, attr_keys: ['h'], attr_values: [h],
  })));
  // events of the last minute, for load()
  for (let i = 0; i < 6; i++) {
    rows.push(row({ project_id: 'pl', timestamp: NOW - 60_000 + i, received_at: NOW - i * 1000, engine: i % 3 ? 'vault' : 'execution' }));
  }
  // same timestamp, ids decide the order (cursor tie-break)
  for (let i = 0; i < 5; i++) rows.push(row({ project_id: 'pc', timestamp: T0, id: `tie-${i}`, message: `tie ${i}` }));
  return rows;
}
const ROWS = dataSet();

/** The schema, as the engine creates it. */
async function withSchema(store: EventStore): Promise<EventStore> {
  await store.init();
  return store;
}

beforeAll(async () => {
  if (!serverInstalled()) throw new Error(INSTALL_HINT);
  dir = tempDir('pm-chs-');
  const httpPort = await freePort();
  let tcpPort = await freePort();
  while (tcpPort === httpPort) tcpPort = await freePort();
  url = execFileSync('bash', [SCRIPT, 'start', join(dir, 'server'), String(httpPort), String(tcpPort)], { encoding: 'utf8' }).trim();
  server = await HttpTransport.connect({ url, database: 'pm_store' });
  onServer = await withSchema(new EventStore(server, 10_000));
  chdbDir = tempDir('pm-chdb-');
  onChdb = await withSchema(new EventStore(new ChdbTransport(chdbDir), 10_000));
  await onServer.insert(ROWS);
  await onChdb.insert(ROWS);
});

afterAll(async () => {
  await server?.close();
  await onChdb?.close();
  if (dir) {
    try {
      execFileSync('bash', [SCRIPT, 'stop', join(dir, 'server')]);
    } finally {
      removeDir(dir);
    }
  }
  if (chdbDir) removeDir(chdbDir);
});

/** Both engines' answer, rounded to 9 significant digits (float sums may differ in the last bit). */
async function both<T>(fn: (s: EventStore) => Promise<T>): Promise<{ server: T; chdb: T }> {
  const [a, b] = await Promise.all([fn(onServer), fn(onChdb)]);
  return { server: round(a), chdb: round(b) };
}
function round<T>(v: T): T {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isInteger(x) ? Number(x.toPrecision(9)) : x))) as T;
}
const f = (p: Partial<EventFilter>): EventFilter => ({ ...emptyFilter(), ...p });
const RANGE = { from: T0, to: T0 + 3_600_000 };

describe('the server', () => {
  it('is the one CI installs, with what it supports detected', async () => {
    expect(server.version).toMatch(/^\d+\.\d+/);
    if (server.version.startsWith('18.')) {
      expect(server.nativeParams).toBe(false);
      expect(server.compactInput).toBe(false);
    }
    expect(await onServer.ping()).toBe(true);
  });

  it('reports server errors with the server\'s message and no stack trace', async () => {
    const e = await onServer.query('SELECT nosuchcolumn FROM events').catch((x) => x);
    expect(e).toBeInstanceOf(ClickHouseServerError);
    expect(e.message).toMatch(/nosuchcolumn/);
    expect(e.message).not.toMatch(/Stack trace|e\.what\(\)/);
    expect(e.clickhouseCode).toBe(47);
  });

  it('turns a query past its timeout into QueryTimeoutError', async () => {
    const t = Date.now();
    await expect(onServer.query('SELECT sleep(2)', {}, { timeoutMs: 300 })).rejects.toBeInstanceOf(QueryTimeoutError);
    expect(Date.now() - t).toBeLessThan(1500);
    await expect(onServer.ping()).resolves.toBe(true);
  });
});

describe('parameters bound on a server without query parameters', () => {
  it('round-trips hostile strings exactly', async () => {
    for (const s of HOSTILE) {
      const [r] = await onServer.query<{ v: string; a: string[]; inn: number; l: number }>(
        'SELECT {v:String} AS v, {a:Array(String)} AS a, {v:String} IN {a:Array(String)} AS inn, length({v:String}) AS l',
        { v: s, a: [s, 'other'] },
      );
      expect(r.v).toBe(s);
      expect(r.a).toEqual([s, 'other']);
      expect(r.inn).toBe(1);
      expect(r.l).toBe(Buffer.byteLength(s));
    }
  });

  it('binds numbers, arrays of numbers, and empty and long lists after IN', async () => {
    const [r] = await onServer.query<Record<string, unknown>>(
      `SELECT {i:Int64} AS i, {neg:Int64} AS neg, 10 - {neg:Int64} AS minus, {x:Float64} AS x, {big:Int64} AS big,
        toString({huge:Int64}) AS huge, {ia:Array(Int64)}[2] AS second, 'a' IN {none:Array(String)} AS in_none, 'k999' IN {many:Array(String)} AS in_many,
        {u:UInt32} AS u`,
      { i: 1_753_401_600_000, neg: -5, x: 0.25, big: 2 ** 53 - 1, huge: 9_223_372_036_854_775_807n, ia: [7, -8, 9], none: [],
        many: Array.from({ length: 1000 }, (_, k) => `k${k}`), u: 4_000_000_000 },
    );
    expect(r).toEqual({ i: 1_753_401_600_000, neg: -5, minus: 15, x: 0.25, big: 2 ** 53 - 1, huge: '9223372036854775807', second: -8, in_none: 0, in_many: 1, u: 4_000_000_000 });
    await expect(onServer.query('SELECT {s:String}', { s: 5 as unknown as string })).rejects.toThrow(/expected a string/);
    await expect(onServer.query('SELECT {d:Date}', { d: '2025-01-01' })).rejects.toThrow(/cannot be bound/);
    await expect(onServer.query('SELECT {q:Int64}', {})).rejects.toThrow(/q is missing/);
  });
});

describe('EventStore on the server', () => {
  it('stores every row as chDB does (hostile text, nulls, arrays, 64-bit numbers)', async () => {
    const all = f({});
    const opts: SearchOptions = { order: 'asc', limit: 1000 };
    const { server: a, chdb: b } = await both((s) => s.search(all, opts));
    expect(a.rows).toHaveLength(ROWS.length);
    expect(a).toEqual(b);
    const byId = new Map(a.rows.map((r) => [r.id, r]));
    for (const r of ROWS) expect(byId.get(r.id)).toEqual(r);
  });

  it('finds the ids it has (project-scoped), also in long lists', async () => {
    const pairs = [
      { project_id: 'pa', id: 'ev-0001' }, { project_id: 'pb', id: 'ev-0001' }, { project_id: 'pb', id: ROWS[45].id },
      ...Array.from({ length: 500 }, (_, i) => ({ project_id: 'pa', id: `missing-${i}` })),
    ];
    const { server: a, chdb: b } = await both(async (s) => [...(await s.existingIds(pairs))].sort());
    expect(a).toEqual(['pa\u0000ev-0001', `pb\u0000${ROWS[45].id}`]);
    expect(a).toEqual(b);
  });

  const filters: [string, EventFilter][] = [
    ['tenant guard', f({ projects: ['pb', 'pc'] })],
    ['no project visible', f({ projects: [] })],
    ['one value', f({ eq: { platform: ['Slack'] } })],
    ['several values', f({ eq: { status: ['error', 'timeout'], engine: ['execution', 'platform_builder'] } })],
    ['keyed: session', f({ projects: ['pa'], eq: { session_id: ['s-1', 's-n'] } })],
    ['keyed: fingerprint across projects', f({ eq: { fingerprint: ['fp-token'] }, from: T0, to: T0 + 1_000_000 })],
    ['keyed: hostile user id', f({ eq: { user_id: [HOSTILE[0], HOSTILE[3], HOSTILE[7]] } })],
    ['attribute', f({ attrs: [{ key: 'region', values: ['eu'] }, { key: 'tier', values: ['t0', 't2'] }] })],
    ['hostile attribute', f({ attrs: [{ key: 'h', values: [HOSTILE[5]] }] })],
    ['time range', f({ from: T0 + 600_000, to: T0 + 1_200_000 })],
    ['text, any case', f({ q: 'TOKEN EXPIRED' })],
    ['text, unicode case', f({ q: 'данные' })],
    ['text, hostile', f({ q: "'; drop" })],
    ['alerts', f({ alert: true })],
    ['durations of errors', f({ hasDuration: true, hasFingerprint: true })],
  ];

  it.each(filters)('searches by %s and pages with the cursor as chDB does', async (_name, filter) => {
    for (const order of ['asc', 'desc'] as const) {
      const { server: whole, chdb: expected } = await both((s) => s.search(filter, { order, limit: 1000 }));
      expect(whole).toEqual(expected);
      // pages of 4: the same rows, in the same order, none twice
      const paged: string[] = [];
      let after: SearchOptions['after'];
      for (let i = 0; i < 100; i++) {
        const page = await onServer.search(filter, { order, limit: 4, after });
        paged.push(...page.rows.map((r) => r.id));
        if (!page.next) break;
        after = page.next;
      }
      expect(paged).toEqual(whole.rows.map((r) => r.id));
    }
    const some = await onServer.search(filter, { order: 'asc', limit: 1000 });
    if (filter.q === 'TOKEN EXPIRED') expect(some.rows.length).toBe(6);
    if (filter.projects?.length === 0) expect(some.rows).toEqual([]);
  });

});

describe('the query language on the server', () => {
  it('selects what the in-memory evaluator selects, on 18.16 as on chDB (generated queries, fixed seed)', async () => {
    // the data set above (hostile text included) plus generated events in project pg
    const extra = fc.sample(eventArb, { seed: 7, numRuns: 60 }).map((e, i) => ({ ...e, id: `g-${i}`, project_id: 'pg' }));
    await Promise.all([onServer.insert(extra), onChdb.insert(extra)]);
    const rows = [...ROWS, ...extra];
    const texts = fc.sample(fc.tuple(queryArb, fc.nat(31)), { seed: 42, numRuns: 240 }).map(([q, style]) => printQuery(q, style));
    const key = (r: { project_id: string; id: string }) => `${r.project_id}/${r.id}`;
    for (let i = 0; i < texts.length; i += 40) {
      const batch = texts.slice(i, i + 40);
      const filters = batch.map((text) => {
        const errors: { field: string; message: string }[] = [];
        const fl = parseFilter({ query: text }, [], errors);
        expect(errors, text).toEqual([]);
        return fl;
      });
      const bag = new ParamBag();
      const sql = `SELECT project_id, id, ${filters.map((fl, j) => `(${whereClause(fl, bag)}) AS m${j}`).join(', ')} FROM ${EVENTS_TABLE}`;
      const got = await both((st) => st.query<Record<string, unknown> & { project_id: string; id: string }>(sql, bag.params));
      filters.forEach((fl, j) => {
        const want = rows.filter((r) => matchesFilter(fl, r)).map(key).sort();
        for (const [where, res] of Object.entries(got)) {
          expect(res.filter((r) => Number(r[`m${j}`]) === 1).map(key).sort(), `${where}: ${batch[j]}`).toEqual(want);
        }
      });
    }
  });
});

describe('the stages\' SQL on the server', () => {
  it('error groups: list, totals, trends, top values, projects — as on chDB', async () => {
    // ties (the same count in two projects) may come in either order, on either engine
    const key = (g: { project_id: string; fingerprint: string }) => `${g.project_id}\u0000${g.fingerprint}`;
    for (const sort of ['count', 'last_seen', 'first_seen', 'users'] as const) {
      const { server: a, chdb: b } = await both(async (s) => (await listGroups(s, f({}), sort, 50)).rows);
      expect([...a].sort((x, y) => key(x).localeCompare(key(y)))).toEqual([...b].sort((x, y) => key(x).localeCompare(key(y))));
      const field = sort === 'users' ? 'users' : sort;
      for (let i = 1; i < a.length; i++) expect(a[i - 1][field]).toBeGreaterThanOrEqual(a[i][field]);
    }
    // the total: in the same pass on chDB (window functions), from the count query on 18.16
    const pages = await both(async (s) => {
      const first = await listGroups(s, f({}), 'count', 2, { withTotal: true });
      const past = await listGroups(s, f({}), 'count', 2, { offset: 1000, withTotal: true });
      return { total: first.total, rows: first.rows.length, past: past.total, counted: await countGroups(s, f({})) };
    });
    expect(pages.chdb.counted).toBeGreaterThan(2);
    expect(pages.chdb).toEqual({ total: pages.chdb.counted, rows: 2, past: undefined, counted: pages.chdb.counted });
    expect(pages.server).toEqual({ total: undefined, rows: 2, past: undefined, counted: pages.chdb.counted });
    const { server: groups } = await both(async (s) => (await listGroups(s, f({ projects: ['pa', 'pb'] }), 'count', 50)).rows);
    const token = groups.find((g) => g.project_id === 'pa' && g.fingerprint === 'fp-token')!;
    expect(token).toMatchObject({ count: 6, users: 6, sessions: 4, error_type: 'TokenExpired', message: 'Failed to send message – token expired #25', first_seen: T0, last_seen: T0 + 25 * 60_000 });

    // all-time totals of the groups active in a range, without naming the page's groups
    const totals = await both(async (s) => [...(await groupTotals(s, f({ projects: ['pa', 'pb'], eq: { fingerprint: ['fp-token', 'fp-uni'] }, ...RANGE })))].sort());
    expect(totals.server).toEqual(totals.chdb);
    expect(totals.server.map(([k, g]) => [k, g.count])).toEqual([['pa\u0000fp-token', 6], ['pb\u0000fp-token', 6], ['pb\u0000fp-uni', 6]]);
    expect(totals.server[0]).toEqual(['pa\u0000fp-token', { count: 6, first_seen: T0, last_seen: T0 + 25 * 60_000 }]);
    const before = await both(async (s) => (await groupTotals(s, f({ projects: ['pa', 'pb'], from: T0 - 7_200_000, to: T0 - 3_600_000 }))).size);
    expect(before).toEqual({ server: 0, chdb: 0 });
    // a named project is read whole; groups last seen before the range are left out
    const named = await both(async (s) => [...(await groupTotals(s, f({ eq: { project_id: ['pa'] }, ...RANGE })))].map(([k, g]) => [k, g.count]).sort());
    expect(named.server).toEqual(named.chdb);
    expect(named.server).toContainEqual(['pa\u0000fp-token', 6]);
    expect(named.server.every(([k]) => String(k).startsWith('pa\u0000'))).toBe(true);
    const later = await both(async (s) => (await groupTotals(s, f({ eq: { project_id: ['pa'] }, from: T0 + 7_200_000, to: T0 + 9_000_000 }))).size);
    expect(later).toEqual({ server: 0, chdb: 0 });

    // trends in the listing's own pass: raw events (10-minute buckets), the rollup with raw edges (hours)
    const trended = (from: number, to: number, intervalMs: number) => both(async (s) =>
      (await listGroups(s, f({ from, to }), 'count', 50, { trendMs: intervalMs })).rows
        .map((g) => [key(g), g.count, [...g.trend!].sort((x, y) => x[0] - y[0])] as const).sort((x, y) => x[0].localeCompare(y[0])));
    const tenMinutes = await trended(RANGE.from, RANGE.to, 600_000);
    expect(tenMinutes.server).toEqual(tenMinutes.chdb);
    expect(tenMinutes.server.find(([k]) => k === 'pa\u0000fp-token')![2]).toEqual([[T0, 2], [T0 + 600_000, 2], [T0 + 1_200_000, 2]]);
    const hours = await trended(T0 - 1_800_000, T0 + 3 * 3_600_000 + 1, 3_600_000);
    expect(hours.server).toEqual(hours.chdb);
    expect(hours.server.find(([k]) => k === 'pa\u0000fp-token')![2]).toEqual([[T0, 6]]);
    for (const [k, count, buckets] of [...tenMinutes.server, ...hours.server]) {
      expect(buckets.reduce((n, [, c]) => n + c, 0), k).toBe(count);
    }

    const top = await both((s) => groupTop(s, f({ eq: { fingerprint: ['fp-token'] } }), 2));
    expect(top.server).toEqual(top.chdb);
    expect(top.server.filter((t) => t.dimension === 'platform')).toEqual([{ dimension: 'platform', value: 'Slack', count: 6 }]);
    expect(top.server.filter((t) => t.dimension === 'user_id')).toHaveLength(2);

    const projects = await both(async (s) => (await projectsWithFingerprint(s, undefined, 'fp-token')).sort());
    expect(projects.server).toEqual(['pa', 'pb']);
    expect(projects.server).toEqual(projects.chdb);
  });

  it('performance, timeseries and load — as on chDB', async () => {
    const byGroup = <T extends { group: Record<string, string> }>(xs: T[]) => [...xs].sort((x, y) => JSON.stringify(x.group).localeCompare(JSON.stringify(y.group)));
    for (const groupBy of [[], ['platform', 'action'], ['engine'], ['project_id', 'status']] as const) {
      const { server: a, chdb: b } = await both(async (s) => byGroup(await performance(s, f({}), groupBy, RANGE)));
      expect(a).toEqual(b);
    }
    const { server: perf } = await both(async (s) => performance(s, f({ projects: ['pa'] }), ['platform'], RANGE));
    const slack = perf.find((g) => g.group.platform === 'Slack')!;
    const durations = Array.from({ length: 30 }, (_, i) => 100 + ((i * 37) % 200) + (i === 7 ? 5000 : 0)).sort((x, y) => x - y);
    expect(slack).toMatchObject({ count: 30, errors: 6, p50: durations[15], p95: durations[28], p99: durations[29], max: 5000 + 100 + 259 % 200, max_retries: 2, timeouts: 0 });
    expect(slack.avg_retries).toBeCloseTo(1, 10);
    expect(perf.find((g) => g.group.platform === 'Notion')).toMatchObject({ count: 12, timeouts: 3, errors: 3 });

    for (const metric of ['count', 'errors', 'error_rate', 'p50', 'p95', 'p99', 'retries', 'timeouts', 'avg_duration'] as const) {
      for (const groupBy of [[], ['platform']] as const) {
        const { server: a, chdb: b } = await both(async (s) => byGroup(await timeseries(s, f({ projects: ['pa'] }), metric, groupBy, RANGE, 900_000)));
        expect(a, `${metric} by ${groupBy.join()}`).toEqual(b);
      }
    }
    const { server: counts } = await both((s) => timeseries(s, f({ projects: ['pa'], eq: { platform: ['Slack'] } }), 'count', [], RANGE, 900_000));
    expect(counts[0].points.map((p) => p.value)).toEqual([15, 15, 0, 0]);

    const sortLoad = (l: Awaited<ReturnType<typeof load>>) => ({
      by_project: [...l.by_project].sort((x, y) => x.project_id.localeCompare(y.project_id)),
      by_engine: [...l.by_engine].sort((x, y) => x.engine.localeCompare(y.engine)),
    });
    const { server: la, chdb: lb } = await both(async (s) => sortLoad(await load(s, f({}), 60_000)));
    expect(la).toEqual(lb);
    expect(la).toEqual(round({ by_project: [{ project_id: 'pl', events_per_s: 6 / 60 }], by_engine: [{ engine: 'execution', events_per_s: 2 / 60 }, { engine: 'vault', events_per_s: 4 / 60 }] }));
  });
});

describe('a store of the first layout on the server', () => {
  it('is migrated at start (event_keys dropped, rollup view renewed), answers the same, and the next start changes nothing', async () => {
    const old = await HttpTransport.connect({ url, database: 'pm_first' });
    try {
      for (const stmt of FIRST_LAYOUT) await old.exec(stmt);
      const store = new EventStore(old, 10_000);
      await store.insert(ROWS);
      const filter = f({ projects: ['pa'], eq: { session_id: ['s-1'] } });
      const before = await store.search(filter, { order: 'asc', limit: 100 });
      expect(before.rows.length).toBeGreaterThan(0);
      const { changes } = await migrateEventStore(old);
      expect(changes).toEqual(expect.arrayContaining(['DROP TABLE IF EXISTS event_keys_mv', 'DROP TABLE IF EXISTS event_keys', 'DROP TABLE IF EXISTS error_rollup_mv']));
      const tables = (await old.query<{ name: string }>("SELECT name FROM system.tables WHERE database = 'pm_first' ORDER BY name")).map((t) => t.name);
      expect(tables).toEqual(['error_rollup', 'error_rollup_mv', 'events']);
      expect(await store.search(filter, { order: 'asc', limit: 100 })).toEqual(before);
      expect((await migrateEventStore(old)).changes).toEqual([]);
      // the renewed view keeps rolling up, into the groups the first view filled
      const key = (g: { project_id: string; fingerprint: string }) => `${g.project_id}\u0000${g.fingerprint}`;
      const groups = async () => round((await listGroups(store, f({ from: T0, to: T0 + 3 * 3_600_000 }), 'count', 50)).rows).sort((x, y) => key(x).localeCompare(key(y)));
      const g0 = await groups();
      expect(g0).toEqual(await (async () => round((await listGroups(onServer, f({ from: T0, to: T0 + 3 * 3_600_000 }), 'count', 50)).rows).sort((x, y) => key(x).localeCompare(key(y))))());
      await store.insert([{ ...ROWS.find((r) => r.fingerprint === 'fp-token')!, id: 'after-migration', timestamp: T0 + 90_000 }]);
      const g1 = await groups();
      const count = (g: typeof g0) => g.find((x) => x.project_id === 'pa' && x.fingerprint === 'fp-token')!.count;
      expect(count(g1)).toBe(count(g0) + 1);
    } finally {
      await old.close();
    }
  });
});

describe('a Distributed schema over a one-shard cluster', () => {
  it('shards the DDL ON CLUSTER, and without ON CLUSTER (one server) gives the same answers', async () => {
    const ddl = clusterSchemaStatements('puraify_single', 'pm_dist');
    expect(ddl.filter((s) => s.includes('ON CLUSTER puraify_single'))).toHaveLength(ddl.length);
    expect(ddl.join('\n')).toMatch(/ENGINE = Distributed\(puraify_single, pm_dist, events_local, cityHash64\(project_id, if\(session_id = '', id, session_id\)\)\)/);
    expect(ddl.join('\n')).toMatch(/pm_dist.error_rollup_mv ON CLUSTER puraify_single TO pm_dist.error_rollup_local AS[\s\S]*FROM pm_dist.events_local WHERE/);
    expect(shardStatement('DROP TABLE IF EXISTS event_keys', 'c', 'd')).toEqual(['DROP TABLE IF EXISTS d.event_keys ON CLUSTER c', 'DROP TABLE IF EXISTS d.event_keys_local ON CLUSTER c']);
    expect(shardStatement('ALTER TABLE events DROP PARTITION 20250725', 'c', 'd')).toEqual(['ALTER TABLE d.events_local ON CLUSTER c DROP PARTITION 20250725']);
    expect(() => shardStatement('DROP TABLE events', 'c', 'd')).toThrow(/cannot shard/);
    // ON CLUSTER needs distributed DDL (ZooKeeper), which one test server does not have
    const dist = await HttpTransport.connect({ url, database: 'pm_dist', cluster: 'puraify_single', onCluster: false });
    try {
      const store = await withSchema(new EventStore(dist, 10_000));
      await store.insert(ROWS);
      const filter = f({ projects: ['pa', 'pb'], eq: { fingerprint: ['fp-token'] } });
      const [a, b] = await Promise.all([store.search(filter, { order: 'desc', limit: 100 }), onServer.search(filter, { order: 'desc', limit: 100 })]);
      expect(a.rows.length).toBe(12);
      expect(a).toEqual(b);
      expect(await store.existingIds([{ project_id: 'pa', id: 'ev-0002' }])).toEqual(new Set(['pa\u0000ev-0002']));
      const key = (g: { project_id: string; fingerprint: string }) => `${g.project_id}\u0000${g.fingerprint}`;
      const groups = async (s: EventStore) => round((await listGroups(s, f({ from: T0 + 1, to: T0 + 3 * 3_600_000 }), 'count', 50)).rows).sort((x, y) => key(x).localeCompare(key(y)));
      expect(await groups(store)).toEqual(await groups(onServer));
      // the listing's own pass (trend) and the all-time totals beside it, through the Distributed tables
      const trended = async (s: EventStore) => (await listGroups(s, f({ from: T0 - 1_800_000, to: T0 + 3 * 3_600_000 + 1 }), 'count', 50, { trendMs: 3_600_000 })).rows
        .map((g) => [key(g), g.count, [...g.trend!]] as const).sort((x, y) => x[0].localeCompare(y[0]));
      expect(await trended(store)).toEqual(await trended(onServer));
      const totals = async (s: EventStore) => [...(await groupTotals(s, f({ projects: ['pa', 'pb'], from: T0, to: T0 + 3_600_000 })))].sort();
      expect((await totals(store)).length).toBeGreaterThan(2);
      expect(await totals(store)).toEqual(await totals(onServer));
      const tables = await dist.query<{ name: string; engine: string }>("SELECT name, engine FROM system.tables WHERE database = 'pm_dist' AND name NOT LIKE '.inner%' ORDER BY name");
      expect(tables.map((t) => `${t.name}:${t.engine}`)).toEqual([
        'error_rollup:Distributed', 'error_rollup_local:AggregatingMergeTree', 'error_rollup_mv:MaterializedView',
        'events:Distributed', 'events_local:MergeTree',
      ]);
    } finally {
      await dist.close();
    }
  });
});

describe('the engine on the server (MONITORING_CLICKHOUSE_URL)', () => {
  it('takes the spec examples and gives them back', async () => {
    const t = await startEngine({ MONITORING_CLICKHOUSE_URL: url, MONITORING_CLICKHOUSE_DATABASE: 'pm_engine' });
    try {
      expect((await call(t.url, 'GET', '/ready')).status).toBe(200);
      const execution = { project_id: 'pf_123', event_type: 'execution', platform: 'Slack', action: 'send_message', status: 'success', duration_ms: 842, timestamp: '2025-07-25T14:01:00Z' };
      const error = { project_id: 'pf_880', flow_id: 'lead_submit', engine: 'execution', status: 'error', error_type: 'api_timeout', platform: 'Notion', duration_ms: 4232, timestamp: '2025-07-25T18:45:00Z' };
      const alert = { project_id: 'pf_123', event_type: 'error', severity: 'high', message: 'Failed to send message – token expired', triggered_by: 'execution_engine', notified: true };
      const r1 = await call(t.url, 'POST', '/monitoring/logs', { body: execution });
      expect(r1.status).toBe(200);
      expect(r1.body.accepted).toBe(1);
      const r2 = await call(t.url, 'POST', '/monitoring/logs', { body: [error, { ...error, timestamp: '2025-07-25T18:46:00Z' }] });
      expect(r2.body.accepted).toBe(2);
      const r3 = await call(t.url, 'POST', '/monitoring/alert', { body: alert });
      expect(r3.status).toBe(200);
      // the same event again (same id) is stored once
      expect((await call(t.url, 'POST', '/monitoring/logs', { body: { ...execution, id: r1.body.ids[0] } })).status).toBe(200);

      const logs = (p: Record<string, string>) => call(t.url, 'GET', `/monitoring/logs?${qs(p)}`);
      const got = await logs({ project_id: 'pf_123', platform: 'Slack', action: 'send_message' });
      expect(got.status).toBe(200);
      expect(got.body.logs).toHaveLength(1);
      expect(got.body.logs[0]).toMatchObject({ id: r1.body.ids[0], duration_ms: 842, timestamp: '2025-07-25T14:01:00.000Z', status: 'success' });
      const errs = await logs({ project_id: 'pf_880', flow_id: 'lead_submit', error_type: 'api_timeout', order: 'asc' });
      expect(errs.body.logs.map((l: { event_type: string }) => l.event_type)).toEqual(['error', 'error']);
      const alerts = await logs({ project_id: 'pf_123', alert: 'true' });
      expect(alerts.body.logs[0]).toMatchObject({ id: r3.body.id, severity: 'high', alert: true, attributes: { notified: 'true' } });
      const byText = await logs({ q: 'TOKEN expired' });
      expect(byText.body.logs.map((l: { id: string }) => l.id)).toEqual([r3.body.id]);

      const groups = await call(t.url, 'GET', `/monitoring/errors?${qs({ project_id: 'pf_880', from: '2025-07-25T18:00:00Z', to: '2025-07-25T19:00:00Z' })}`);
      expect(groups.status).toBe(200);
      expect(JSON.stringify(groups.body)).toContain('api_timeout');
      const perf = await call(t.url, 'GET', `/monitoring/performance?${qs({ project_id: 'pf_880', group_by: 'platform', from: '2025-07-25T18:00:00Z', to: '2025-07-25T19:00:00Z' })}`);
      expect(perf.status).toBe(200);
      expect(perf.body.groups[0]).toMatchObject({ group: { platform: 'Notion' }, count: 2, p50: 4232 });

      // every other read route runs its SQL on the server too
      const fp = groups.body.groups?.[0]?.fingerprint ?? groups.body.errors?.[0]?.fingerprint;
      await call(t.url, 'POST', '/monitoring/logs', { body: [
        { project_id: 'pf_880', event_type: 'deploy', message: 'v2', flow_id: 'lead_submit', timestamp: '2025-07-25T18:40:00Z' },
        { ...error, session_id: 'sess-1', user_id: 'u1', timestamp: '2025-07-25T18:47:00Z' },
        { ...error, session_id: 'sess-2', user_id: 'u2', timestamp: '2025-07-25T18:48:00Z' },
      ] });
      const range = { from: '2025-07-25T18:00:00Z', to: '2025-07-25T19:00:00Z' };
      const routes = [
        `/monitoring/errors/${encodeURIComponent(fp)}?${qs({ project_id: 'pf_880' })}`,
        `/monitoring/timeseries?${qs({ project_id: 'pf_880', metric: 'p95', group_by: 'platform', ...range })}`,
        `/monitoring/load?${qs({ project_id: 'pf_880' })}`,
        `/monitoring/audit?${qs({ project_id: 'pf_880', ...range })}`,
        `/monitoring/audit/export?${qs({ project_id: 'pf_880', ...range })}`,
        `/monitoring/sessions?${qs({ project_id: 'pf_880', ...range })}`,
        `/monitoring/sessions/sess-1?${qs({ project_id: 'pf_880' })}`,
        `/monitoring/sessions/sess-1/related?${qs({ project_id: 'pf_880' })}`,
        `/monitoring/changes?${qs({ project_id: 'pf_880', ...range })}`,
        '/metrics',
      ];
      const bad: string[] = [];
      for (const r of routes) {
        const res = await call(t.url, 'GET', r);
        if (res.status !== 200) bad.push(`${r}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
      expect(bad).toEqual([]);
      // a server's memory is not this process's: no storage memory figure
      expect((await call(t.url, 'GET', '/metrics')).body).not.toMatch(/puraify_monitoring_storage_memory_bytes/);
    } finally {
      await t.close();
      removeDir(t.dataDir);
    }
  });
});
