// bench/audit-export: ingests EVENTS (default 1,000,000) events into a spawned engine, exports all of
// them through GET /monitoring/audit/export as NDJSON and as CSV while sampling the engine
// process's RSS every 100 ms, then times session lookups (GET /monitoring/sessions/:id).
//   npx tsc -p tsconfig.json && node dist/bench/audit-export.js
//   EVENTS=200000 for a quick run; EXPORT=0 to time session lookups only (e.g. EVENTS=10000000)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN, machine, makeEvent, percentile, post, rng, spawnEngine } from './common.js';

const TOTAL = Number(process.env.EVENTS ?? 1_000_000);
const BATCH = 10_000;
const CLIENTS = Number(process.env.CLIENTS ?? 4);
const PROJECTS = 50;
const SESSION_EVENTS = 20;
const LOOKUPS = Number(process.env.LOOKUPS ?? 200);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;

/** The project of a session: a session's events all belong to one project, as in real traffic. */
const projectOf = (session: number) => `pf_${(session * 2654435761) % 2 ** 32 % PROJECTS}`;

function batchBody(b: number): string {
  const r = rng(1000 + b);
  const events = new Array(BATCH);
  for (let k = 0; k < BATCH; k++) {
    const i = b * BATCH + k;
    const e = makeEvent(r, i, { projects: PROJECTS });
    const session = Math.floor(i / SESSION_EVENTS);
    e.project_id = projectOf(session);
    e.user_id = `user_${session % 5000}`;
    if (k % 7 === 0) e.client_ip = `203.0.113.${k % 250}`;
    events[k] = e;
  }
  return JSON.stringify(events);
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Samples the engine's RSS every 100 ms while fn runs: before, peak, after (after 2 s of rest). */
async function withRss<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; before: number; peak: number; after: number; samples: number }> {
  const before = rssKb(pid);
  let peak = before;
  let samples = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssKb(pid));
    samples++;
  }, 100);
  try {
    const result = await fn();
    peak = Math.max(peak, rssKb(pid));
    await new Promise((r) => setTimeout(r, 2000));
    return { result, before, peak, after: rssKb(pid), samples };
  } finally {
    clearInterval(timer);
  }
}

async function exportAll(url: string, format: 'ndjson' | 'csv', query = ''): Promise<{ rows: number; bytes: number; secs: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/monitoring/audit/export?format=${format}${query}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  if (res.status !== 200) throw new Error(`export answered ${res.status}: ${await res.text()}`);
  let lines = 0;
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
  }
  // CSV: records may hold line breaks inside quotes, but these events have none; minus the header
  return { rows: format === 'csv' ? lines - 1 : lines, bytes, secs: (performance.now() - t0) / 1000 };
}

async function lookups(url: string, n: number, withProject: boolean): Promise<{ p50: number; p99: number; max: number; events: number }> {
  const r = rng(7);
  const sessions = Math.floor(TOTAL / SESSION_EVENTS);
  const lat: number[] = [];
  let events = 0;
  for (let k = 0; k < n; k++) {
    const s = Math.floor(r() * sessions);
    const q = withProject ? `?project_id=${projectOf(s)}` : '';
    const t0 = performance.now();
    const res = await fetch(`${url}/monitoring/sessions/sess_${s}${q}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const body = await res.json() as { steps?: unknown[] };
    lat.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`session lookup answered ${res.status}: ${JSON.stringify(body)}`);
    events += body.steps?.length ?? 0;
  }
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1], events: events / n };
}

console.log(`bench/audit-export — ${machine()} — ${fmt(TOTAL)} events`);
const dir = mkdtempSync(join(tmpdir(), 'bench-audit-'));
const engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
const pid = engine.proc.pid!;
try {
  const batches = Math.ceil(TOTAL / BATCH);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < batches) {
      const b = next++;
      const status = await post(engine.url, '/monitoring/logs', batchBody(b));
      if (status !== 200) throw new Error(`ingest answered ${status}`);
    }
  }));
  const ingestSecs = (performance.now() - t0) / 1000;
  console.log(`ingest: ${fmt(TOTAL)} events in batches of ${fmt(BATCH)} from ${CLIENTS} clients: ${ingestSecs.toFixed(1)} s, ${fmt(TOTAL / ingestSecs)} ev/s; engine RSS ${mib(rssKb(pid))}`);
  await new Promise((r) => setTimeout(r, 3000));

  if (process.env.EXPORT !== '0') {
    console.log('| export | rows | MiB sent | seconds | rows/s | engine RSS before | peak | after |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    // five of the fifty projects (~10 %) first, then everything: the peak should not grow with the size
    const five = Array.from({ length: 5 }, (_, p) => `&project_id=pf_${p}`).join('');
    for (const [label, format, query] of [['ndjson, 5 projects', 'ndjson', five], ['ndjson, all', 'ndjson', ''], ['csv, all', 'csv', '']] as const) {
      const m = await withRss(pid, () => exportAll(engine.url, format, query));
      const e = m.result;
      if (query === '' && e.rows !== TOTAL) console.log(`!! ${format} export returned ${e.rows} rows, expected ${TOTAL}`);
      console.log(`| ${label} | ${fmt(e.rows)} | ${fmt(e.bytes / 2 ** 20)} | ${e.secs.toFixed(1)} | ${fmt(e.rows / e.secs)} | ${mib(m.before)} | ${mib(m.peak)} | ${mib(m.after)} |`);
    }
  }

  console.log(`\n| session lookup (${SESSION_EVENTS} events a session) | requests | p50 ms | p99 ms | max ms |`);
  console.log('| --- | ---: | ---: | ---: | ---: |');
  await lookups(engine.url, 10, true); // warm-up
  const withP = await lookups(engine.url, LOOKUPS, true);
  console.log(`| GET /monitoring/sessions/:id?project_id= | ${LOOKUPS} | ${withP.p50.toFixed(1)} | ${withP.p99.toFixed(1)} | ${withP.max.toFixed(1)} |`);
  const noP = await lookups(engine.url, Math.min(50, LOOKUPS), false);
  console.log(`| GET /monitoring/sessions/:id (admin, no project_id) | ${Math.min(50, LOOKUPS)} | ${noP.p50.toFixed(1)} | ${noP.p99.toFixed(1)} | ${noP.max.toFixed(1)} |`);
  if (withP.events !== SESSION_EVENTS) console.log(`!! sessions had ${withP.events} events on average, expected ${SESSION_EVENTS}`);
} finally {
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
}
