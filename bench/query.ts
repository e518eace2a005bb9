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
    await store.transport.exec(`
      INSERT INTO events
      SELECT
        concat('ev-', toString(number)) AS id,
        ${start} + intDiv(number * ${7 * DAY}, ${rows}) AS timestamp,
        ${start} + intDiv(number * ${7 * DAY}, ${rows}) + 50 AS received_at,
        concat('pf_', toString(cityHash64(intDiv(number, 20), 1) % 50)) AS project_id, -- a session stays in one project
        if(err, 'action_error', 'execution') AS event_type,
        ['execution','validation','vault','platform_builder','feedback_loop','engine_control'][1 + cityHash64(number, 2) % 6] AS engine,
        '' AS triggered_by,
        concat('flow_', toString(cityHash64(number, 3) % 200)) AS flow_id,
        concat('sess_', toString(intDiv(number, 20))) AS session_id,
        concat('user_', toString(cityHash64(number, 4) % 5000)) AS user_id,
        concat('trace_', toString(intDiv(number, 5))) AS trace_id,
        '' AS span_id,
        ['Slack','Notion','Gmail','HubSpot','Stripe','Airtable'][1 + p] AS platform,
        ['send_message','create_page','send_email','update_contact','charge','append_row'][1 + p] AS action,
        if(err, 'error', 'success') AS status,
        if(err, 'high', 'info') AS severity,
        if(err, ['api_timeout','token_expired','rate_limited','validation_failed','not_found'][1 + cityHash64(number, 5) % 5], '') AS error_type,
        if(err, concat('Failed to call ', ['Slack','Notion','Gmail','HubSpot','Stripe','Airtable'][1 + p], ' after ', toString(cityHash64(number, 6) % 5000), ' ms'), 'ok') AS message,
        '' AS stack,
        toFloat64(20 + (cityHash64(number, 7) % 3000) * (cityHash64(number, 8) % 100) / 100) AS duration_ms,
        toUInt32(if(err, cityHash64(number, 9) % 4, 0)) AS retries,
        if(err, lower(hex(cityHash64(p, cityHash64(number, 5) % 5))), '') AS fingerprint,
        0 AS alert,
        0 AS sampled,
        ['region'] AS attr_keys,
        [['eu','us','ap'][1 + cityHash64(number, 10) % 3]] AS attr_values
      FROM (SELECT number, cityHash64(number, 11) % 100 < 8 AS err, cityHash64(number, 12) % 6 AS p
            FROM numbers(${off}, ${n}))`);
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

interface Shape {
  name: string;
  path: () => string;
}

function shapes(end: number): Shape[] {
  const r = (n: number) => Math.floor(Math.random() * n);
  const p = () => `pf_${r(50)}`;
  const day = `from=${end - DAY}&to=${end}`;
  const week = `from=${end - 7 * DAY}&to=${end}`;
  return [
    { name: 'logs: latest 100 of a project', path: () => `/monitoring/logs?project_id=${p()}` },
    { name: 'logs: errors on one platform, 1 day', path: () => `/monitoring/logs?project_id=${p()}&status=error&platform=Slack&${day}` },
    { name: 'logs: text search q, 1 day', path: () => `/monitoring/logs?project_id=${p()}&q=after%20${r(5000)}%20ms&${day}` },
    { name: 'logs: attribute filter, 1 day', path: () => `/monitoring/logs?project_id=${p()}&attr.region=eu&${day}` },
    { name: 'logs: query text and fields, 1 day', path: () => `/monitoring/logs?project_id=${p()}&${day}&query=${encodeURIComponent(`platform:Slack "after ${r(5000)} ms"`)}` },
    { name: 'logs: query OR, NOT, comparison, 1 day', path: () => `/monitoring/logs?project_id=${p()}&${day}&query=${encodeURIComponent('status:error platform:(Slack OR Notion) -error_type:not_found duration_ms:>1000')}` },
    { name: 'logs/count: query, 7 days', path: () => `/monitoring/logs/count?project_id=${p()}&${week}&query=${encodeURIComponent('error_type:api_timeout|rate_limited attr.region:eu')}` },
    { name: 'errors: query search, 7 days', path: () => `/monitoring/errors?project_id=${p()}&${week}&query=${encodeURIComponent('platform:Slack timeout*')}` },
    { name: 'logs: one user, 7 days', path: () => `/monitoring/logs?project_id=${p()}&user_id=user_${r(5000)}&${week}` },
    { name: 'logs: one trace (no project)', path: () => `/monitoring/logs?trace_id=trace_${r(100_000)}` },
    { name: 'logs: one session', path: () => `/monitoring/logs?session_id=sess_${r(50_000)}&order=asc` },
    { name: 'errors: groups of a project, 7 days', path: () => `/monitoring/errors?project_id=${p()}&${week}` },
    { name: 'errors: groups of a project, 1 day', path: () => `/monitoring/errors?project_id=${p()}&${day}` },
    { name: 'performance: by platform,action, 7 days', path: () => `/monitoring/performance?project_id=${p()}&group_by=platform,action&${week}` },
    { name: 'performance: by flow_id, 1 day', path: () => `/monitoring/performance?project_id=${p()}&group_by=flow_id&${day}` },
    { name: 'timeseries: p95 by platform, 7 days', path: () => `/monitoring/timeseries?project_id=${p()}&metric=p95&group_by=platform&${week}` },
    { name: 'sessions: replay one session', path: () => `/monitoring/sessions/sess_${r(50_000)}` },
    { name: 'audit: a user\'s timeline, 7 days', path: () => `/monitoring/audit?project_id=${p()}&user_id=user_${r(5000)}&${week}` },
  ];
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
