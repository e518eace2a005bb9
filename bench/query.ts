// bench/query: p50/p99 of each query shape through HTTP at 1M and 10M events (ROWS=1000000,10000000),
// while INGEST events/s (default 5,000) are posted to the same engine, and the engine's RSS.
// The events look like the engines' traffic: 50 projects over 7 days, 8% errors in a few groups,
// sessions of 20 events, traces of 5, 5,000 users per project. FILL=http (default) posts them
// through HTTP (16 clients × 1,000 events with ids, as the SDK sends); FILL=sql generates them
// inside the storage engine (INSERT … SELECT FROM numbers()), which takes seconds.
// "raw chDB" times the same shapes in-process on the settled store, without HTTP and without ingest.
// HTTP queries are made with an all-project key of their own, the background ingest with the admin token.
//   npm run bench:query            (ROWS=1000000 to change; RUNS=50 per shape)
import { cpSync, existsSync, mkdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ChdbTransport } from '../src/storage/chdb-transport.js';
import { EventStore } from '../src/storage/event-store.js';
import { ADMIN, allProjectKey, fillThroughHttp, get, machine, percentile, spawnEngine, untilStored } from './common.js';
import { parseFilter, type EventFilter } from '../src/query/filters.js';
import { autoInterval, listGroups } from '../src/aggregator/queries.js';
import { performance as perfBreakdown, timeseries, type Dimension } from '../src/performance/queries.js';
import { DAY, eventAt, eventsSelect, shapes } from './query-shapes.js';

const SIZES = (process.env.ROWS ?? '1000000,10000000').split(',').map(Number);
const RUNS = Number(process.env.RUNS ?? 50);
const FILL = process.env.FILL ?? 'http';
const INGEST = Number(process.env.INGEST ?? 5000);
/**
 * KEEP=/some/dir keeps each size's filled, settled store in /some/dir/<rows> and, when it is already
 * there, times a copy of it instead of filling again: A/B runs of a change at 10M without 10 minutes
 * of fill each (the timing's own ingest goes into the copy, so every run starts from the same store).
 */
const KEEP = process.env.KEEP;
/** SHAPES=errors,session: only the shapes whose names contain one of these (A/B runs of one change). */
const ONLY = process.env.SHAPES?.split(',').filter(Boolean);
const timedShapes = (end: number) => shapes(end).filter((s) => !ONLY || ONLY.some((o) => s.name.includes(o)));

/** Fills the engine through HTTP: 16 clients, batches of 1,000, until all of it is stored. */
function fillHttp(url: string, rows: number, end: number): Promise<{ acked: number; stored: number }> {
  const start = end - 7 * DAY;
  return fillThroughHttp(url, rows, (n) => eventAt(n, rows, start));
}

/**
 * Posts `rate` events/s to the engine from a worker thread (bench/query-ingest.ts) until stopped: the
 * load generator's own work (building and sending batches) would otherwise hold up this thread's
 * reading of the timed answers.
 */
function backgroundIngest(url: string, rate: number): { stop(): Promise<{ sent: number; seconds: number; failed: number }> } {
  const worker = new Worker(new URL('./query-ingest.js', import.meta.url), { workerData: { url, rate } });
  return {
    stop: () => new Promise((resolve, reject) => {
      worker.once('message', (m) => void worker.terminate().then(() => resolve(m)));
      worker.once('error', reject);
      worker.postMessage('stop');
    }),
  };
}

/** Waits (≤ 10 min) until the engine's id filter holds every stored id; the ms it took. */
async function idFilterComplete(url: string): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < 600_000) {
    const m = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    if (/^puraify_monitoring_id_filter_complete 1$/m.test(m)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return performance.now() - t0;
}

/** The engine's resident memory, sampled every 200 ms; peak in MiB. */
function rssSampler(pid: number): { stop(): number } {
  let peak = 0;
  const read = () => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      // the process ended
    }
  };
  const timer = setInterval(read, 200);
  read();
  return { stop: () => (clearInterval(timer), peak) };
}

async function settle(dir: string): Promise<void> {
  const store = new EventStore(new ChdbTransport(dir));
  for (let i = 0; i < 240; i++) {
    const [m] = await store.query<{ n: number }>('SELECT count() AS n FROM system.merges');
    if (Number(m.n) === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await store.close();
}

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
  await store.close();
  // let background merges settle, as on an engine that has been running a while: timings taken
  // while chDB merges the freshly written parts measure the merges, not the queries
  await settle(dir);
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
    // the page statement the listing runs: its total and trend (48 buckets, as the route's default) in one pass
    await listGroups(store, { ...f, from, to }, 'count', 100, { withTotal: true, trendMs: autoInterval(from, to, 48) });
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
  for (const s of timedShapes(end)) {
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

console.log(`bench/query — ${machine()} — ${RUNS} runs per shape — fill ${FILL} — ${INGEST} events/s of ingest while timing HTTP`);
for (const rows of SIZES) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-query-'));
  const kept = KEEP ? join(KEEP, String(rows)) : undefined;
  const reuse = kept !== undefined && existsSync(join(kept, 'end'));
  const end = reuse ? Number(readFileSync(join(kept, 'end'), 'utf8')) : Date.now();
  const t0 = performance.now();
  let fillRate = '';
  let fillRss = 0;
  if (reuse) {
    cpSync(kept, dir, { recursive: true });
    // the copy's write-back is done before the timing, not during it
    execFileSync('sync');
    fillRate = `, a copy of ${kept} filled earlier`;
  } else if (FILL === 'sql') {
    await generate(join(dir, 'events'), rows, end);
  } else {
    const filler = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
    const rss = rssSampler(filler.proc.pid!);
    const rate = await fillHttp(filler.url, rows, end);
    fillRate = `, ${Math.round(rate.acked).toLocaleString('en-US')} events/s acknowledged, ${Math.round(rate.stored).toLocaleString('en-US')} stored`;
    fillRss = rss.stop();
    await filler.stop();
    await settle(join(dir, 'events'));
  }
  if (kept && !reuse) {
    mkdirSync(kept, { recursive: true });
    cpSync(dir, kept, { recursive: true });
    writeFileSync(join(kept, 'end'), String(end));
  }
  console.log(`\n### ${rows.toLocaleString('en-US')} events (filled in ${((performance.now() - t0) / 1000).toFixed(1)} s${fillRate}${fillRss ? `, engine RSS peak ${fillRss.toFixed(0)} MiB` : ''}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})\n`);
  // RAW=0 skips the raw timings (A/B runs of an HTTP-side change on a KEEP store)
  const rawTimes = process.env.RAW === '0' ? new Map<string, number[]>() : await timeRaw(join(dir, 'events'), end);
  if (process.env.RAW !== '0') await textSearchFunctions(join(dir, 'events'), end);
  const engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
  const rss = rssSampler(engine.proc.pid!);
  // an engine that has been running a while: its start-up scan of the stored ids (the loader's id
  // filter, src/wal/stored-ids.ts) is done before the timing starts
  const scanMs = await idFilterComplete(engine.url);
  // and nothing of the fill is still loading from its log (a store kept before the fill waited for it)
  await untilStored(engine.url);
  // the reader is a key of its own (as a dashboard's would be): its queries wait for its own writes
  // only, not for the background ingest's (README, "What the answer means")
  const reader = await allProjectKey(engine.url, 'bench-reader');
  const ingest = backgroundIngest(engine.url, INGEST);
  await new Promise((r) => setTimeout(r, 3000)); // let the ingest reach its pace
  console.log(`engine started; its scan of the stored ids took ${(scanMs / 1000).toFixed(1)} s\n`);
  console.log('| query | HTTP p50 ms | HTTP p99 ms | raw chDB p50 ms | raw chDB p99 ms | rows |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const s of timedShapes(end)) {
    const lat: number[] = [];
    let lastRows = 0;
    let status = 200;
    for (let i = 0; i < RUNS + 3; i++) {
      const a = performance.now();
      const res = await get(engine.url, s.path(), reader);
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
  const ing = await ingest.stop();
  console.log(`\nwhile timing: ingest ${Math.round(ing.sent / ing.seconds).toLocaleString('en-US')} events/s accepted (${ing.failed} refused), engine RSS peak ${rss.stop().toFixed(0)} MiB, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
}
