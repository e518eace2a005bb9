// bench/query: p50/p99 of each query shape through HTTP at 1M and 10M events (ROWS=1000000,10000000).
// The events are generated inside the storage engine (INSERT … SELECT FROM numbers()), so building
// 10M rows takes seconds; they look like the engines' traffic: 50 projects over 7 days, 8% errors
// in a few groups, sessions of ~20 events, 5,000 users per project.
//   npm run bench:query            (ROWS=1000000 to change; RUNS=50 per shape)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChdbTransport } from '../src/storage/chdb-transport.js';
import { EventStore } from '../src/storage/event-store.js';
import { get, machine, percentile, spawnEngine } from './common.js';
import { parseFilter, type EventFilter } from '../src/query/filters.js';
import { listGroups } from '../src/aggregator/queries.js';
import { performance as perfBreakdown, timeseries, type Dimension } from '../src/performance/queries.js';
import { autoInterval } from '../src/aggregator/queries.js';
import { eventsSelect, shapes } from './query-shapes.js';

const SIZES = (process.env.ROWS ?? '1000000,10000000').split(',').map(Number);
const RUNS = Number(process.env.RUNS ?? 50);
const DAY = 86_400_000;

async function generate(dir: string, rows: number, end: number): Promise<void> {
  const store = new EventStore(new ChdbTransport(dir));
  await store.init();
  const start = end - 7 * DAY;
  const chunk = 1_000_000;
  for (let off = 0; off < rows; off += chunk) {
    const n = Math.min(chunk, rows - off);
    // number → event: everything derives from the row number, so runs are comparable
    await store.transport.exec(`INSERT INTO events ${eventsSelect(rows, off, n, start)}`);
  }
  // let background merges settle, as on an engine that has been running a while: timings taken
  // while chDB merges the freshly written parts measure the merges, not the queries
  for (let i = 0; i < 240; i++) {
    const [m] = await store.query<{ n: number }>('SELECT count() AS n FROM system.merges');
    if (Number(m.n) === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await store.close();
}

/**
 * The same query shape straight on the storage engine, in-process and without HTTP: the engine's own
 * SQL builders over chDB. What HTTP, validation, serialisation and the engine's extra bookkeeping
 * queries add is the difference between the two columns.
 */
async function raw(store: EventStore, path: string): Promise<void> {
  const u = new URL(path, 'http://x');
  const q: Record<string, string> = Object.fromEntries(u.searchParams);
  const errors: { field: string; message: string }[] = [];
  const f: EventFilter = parseFilter(q, ['group_by', 'metric', 'order'], errors);
  const to = f.to ?? Date.now();
  const from = f.from ?? to - 14 * DAY;
  if (u.pathname === '/monitoring/logs/count') {
    await store.count(f);
  } else if (u.pathname === '/monitoring/logs' || u.pathname === '/monitoring/audit') {
    await store.search(f, { order: q.order === 'asc' ? 'asc' : 'desc', limit: 100 });
  } else if (u.pathname === '/monitoring/errors') {
    await listGroups(store, { ...f, from, to }, 'count', 100);
  } else if (u.pathname === '/monitoring/performance') {
    await perfBreakdown(store, f, q.group_by.split(',') as Dimension[], { from, to });
  } else if (u.pathname === '/monitoring/timeseries') {
    await timeseries(store, f, 'p95', (q.group_by ? q.group_by.split(',') : []) as Dimension[], { from, to }, autoInterval(from, to, 500));
  } else if (u.pathname.startsWith('/monitoring/sessions/')) {
    await store.search({ eq: { session_id: [decodeURIComponent(u.pathname.split('/')[3])] }, attrs: [] }, { order: 'asc', limit: 1000 });
  }
}

async function timeRaw(dir: string, end: number): Promise<Map<string, number[]>> {
  const store = new EventStore(new ChdbTransport(dir));
  const out = new Map<string, number[]>();
  for (const s of shapes(end)) {
    const lat: number[] = [];
    for (let i = 0; i < RUNS + 3; i++) {
      const a = performance.now();
      await raw(store, s.path());
      if (i >= 3) lat.push(performance.now() - a);
    }
    out.set(s.name, lat.sort((a, b) => a - b));
  }
  await store.close();
  return out;
}

/**
 * The text-search SQL the query language compiles to (lowerUTF8(col) LIKE '%…%', which an ngram
 * index can serve and clickhouse-server 18.16 runs) against positionCaseInsensitiveUTF8 (no
 * index can serve it), on the same day of one project, raw on chDB.
 */
async function textSearchFunctions(dir: string, end: number): Promise<void> {
  const store = new EventStore(new ChdbTransport(dir));
  const cols = ['message', 'error_type', 'stack'];
  const forms: [string, (p: string) => string][] = [
    ['lowerUTF8(col) LIKE', (p) => cols.map((c) => `lowerUTF8(${c}) LIKE {like:String}`).join(' OR ')],
    ['positionCaseInsensitiveUTF8', (p) => cols.map((c) => `positionCaseInsensitiveUTF8(${c}, {word:String}) > 0`).join(' OR ')],
  ];
  console.log('\n| text search, 1 project, 1 day, count() | raw chDB p50 ms | raw chDB p99 ms |');
  console.log('| --- | ---: | ---: |');
  for (const [name, where] of forms) {
    const lat: number[] = [];
    for (let i = 0; i < RUNS + 3; i++) {
      const word = `after ${Math.floor(Math.random() * 5000)} ms`;
      const a = performance.now();
      await store.query(`SELECT count() FROM events WHERE project_id = {p:String} AND timestamp >= {from:Int64} AND (${where(word)})`,
        { p: `pf_${i % 50}`, from: end - DAY, like: `%${word}%`, word });
      if (i >= 3) lat.push(performance.now() - a);
    }
    lat.sort((a, b) => a - b);
    console.log(`| ${name} | ${percentile(lat, 50).toFixed(1)} | ${percentile(lat, 99).toFixed(1)} |`);
  }
  await store.close();
}

console.log(`bench/query — ${machine()} — ${RUNS} runs per shape`);
for (const rows of SIZES) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-query-'));
  const end = Date.now();
  const t0 = performance.now();
  await generate(join(dir, 'events'), rows, end);
  console.log(`\n### ${rows.toLocaleString('en-US')} events (generated in ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  const rawTimes = await timeRaw(join(dir, 'events'), end);
  await textSearchFunctions(join(dir, 'events'), end);
  const engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
  console.log('| query | HTTP p50 ms | HTTP p99 ms | raw chDB p50 ms | raw chDB p99 ms | rows |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const s of shapes(end)) {
    const lat: number[] = [];
    let lastRows = 0;
    let status = 200;
    for (let i = 0; i < RUNS + 3; i++) {
      const a = performance.now();
      const res = await get(engine.url, s.path());
      const ms = performance.now() - a;
      status = res.status;
      if (res.status !== 200) break;
      if (i >= 3) lat.push(ms); // the first runs warm the caches
      lastRows = res.body.count ?? res.body.logs?.length ?? res.body.groups?.length ?? res.body.series?.length ?? res.body.steps?.length ?? res.body.timeline?.length ?? 0;
    }
    if (status !== 200) {
      console.log(`| ${s.name} | (HTTP ${status}) | | | | |`);
      continue;
    }
    lat.sort((a, b) => a - b);
    const r = rawTimes.get(s.name) ?? [];
    console.log(`| ${s.name} | ${percentile(lat, 50).toFixed(1)} | ${percentile(lat, 99).toFixed(1)} | ${percentile(r, 50).toFixed(1)} | ${percentile(r, 99).toFixed(1)} | ${lastRows} |`);
  }
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
}
