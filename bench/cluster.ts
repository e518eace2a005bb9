// bench/cluster: the engine on a ClickHouse cluster (scripts/cluster.sh: 2 shards × 2 replicas of
// clickhouse-server, ZooKeeper, PostgreSQL, two engine nodes).
//  1. ingest: EVENTS events (batches of 500, CLIENTS closed-loop clients) through node 1 alone, then
//     through both nodes (half the clients each): events/s and the ratio; the raw baseline is the same
//     batches inserted straight into the Distributed table (the transport the nodes use, no HTTP API).
//  2. the query shapes of bench/query over ROWS events (generated inside ClickHouse), through a node.
//   node dist/bench/cluster.js   (EVENTS=100000 CLIENTS=8 ROWS=1000000 RUNS=20)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN, get, machine, makeEvent, percentile, rng } from './common.js';
import { eventsSelect, shapes, DAY } from './query-shapes.js';
import { HttpTransport } from '../src/storage/http-transport.js';
import { EventStore } from '../src/storage/event-store.js';
import { normalize } from '../src/event.js';

const EVENTS = Number(process.env.EVENTS ?? 100_000);
const CLIENTS = Number(process.env.CLIENTS ?? 8);
const ROWS = Number(process.env.ROWS ?? 1_000_000);
const RUNS = Number(process.env.RUNS ?? 20);
const BATCH = 500;
const ROOT = join(import.meta.dirname, '..', '..');

interface ClusterJson { nodes: string[]; clickhouse: string[]; cluster: string }

function batches(project: string): string[] {
  const r = rng(7);
  const out: string[] = [];
  for (let i = 0; i < EVENTS; i += BATCH) {
    const b = [];
    for (let j = 0; j < BATCH; j++) {
      const e = makeEvent(r, i + j);
      // sessions of their own: the query part's session ids (sess_N) must name one project each
      b.push({ ...e, project_id: project, session_id: e.session_id ? `${project}_${String(e.session_id)}` : undefined });
    }
    out.push(JSON.stringify(b));
  }
  return out;
}

async function ingest(urls: string[], bodies: string[]): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    const url = urls[c % urls.length];
    for (;;) {
      const i = next++;
      if (i >= bodies.length) return;
      const res = await fetch(`${url}/monitoring/logs`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: bodies[i] });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`ingest: ${res.status}`);
    }
  }));
  return EVENTS / ((performance.now() - t0) / 1000);
}

async function rawIngest(store: EventStore, bodies: string[]): Promise<number> {
  const rows = bodies.map((b) => (JSON.parse(b) as unknown[]).map((e) => {
    const n = normalize(e, Date.now());
    if (!n.ok) throw new Error('bad bench event');
    return n.row;
  }));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    for (;;) {
      const i = next++;
      if (i >= rows.length) return;
      await store.insert(rows[i]);
    }
  }));
  return EVENTS / ((performance.now() - t0) / 1000);
}

const dir = mkdtempSync(join(tmpdir(), 'bench-cluster-'));
try {
  execFileSync('bash', [join(ROOT, 'scripts', 'cluster.sh'), 'up', dir], { env: { ...process.env, MONITORING_ADMIN_TOKEN: ADMIN }, stdio: ['ignore', 'ignore', 'inherit'] });
  const c = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterJson;
  const transport = await HttpTransport.connect({ url: c.clickhouse[0], database: 'puraify', cluster: c.cluster });
  const store = new EventStore(transport);
  console.log(`bench/cluster — ${machine()} — 2 shards × 2 replicas of clickhouse-server ${transport.version}, ZooKeeper, 2 engine nodes, all on this machine`);

  console.log(`\n### ingest: ${EVENTS.toLocaleString('en-US')} events, batches of ${BATCH}, ${CLIENTS} clients\n`);
  console.log('| path | events/s |');
  console.log('| --- | ---: |');
  const raw = await rawIngest(store, batches('pf_raw'));
  console.log(`| raw: insert into the Distributed table (no HTTP API) | ${Math.round(raw)} |`);
  const one = await ingest([c.nodes[0]], batches('pf_one'));
  console.log(`| through node 1 alone | ${Math.round(one)} |`);
  const two = await ingest(c.nodes, batches('pf_two'));
  console.log(`| through nodes 1 and 2 | ${Math.round(two)} |`);
  console.log(`\ntwo nodes / one node: ${(two / one).toFixed(2)}; one node / raw: ${(one / raw).toFixed(2)}`);

  const end = Date.now();
  const t0 = performance.now();
  for (let off = 0; off < ROWS; off += 1_000_000) {
    const n = Math.min(1_000_000, ROWS - off);
    await transport.exec(`INSERT INTO events ${eventsSelect(ROWS, off, n, end - 7 * DAY)}`);
  }
  console.log(`\n### queries: ${ROWS.toLocaleString('en-US')} events (generated in ${((performance.now() - t0) / 1000).toFixed(1)} s), ${RUNS} runs per shape, through node 1\n`);
  console.log('| query | HTTP p50 ms | HTTP p99 ms | rows |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const s of shapes(end)) {
    const lat: number[] = [];
    let rows = 0;
    let status = 200;
    for (let i = 0; i < RUNS + 2; i++) {
      const a = performance.now();
      const res = await get(c.nodes[0], s.path());
      status = res.status;
      if (status !== 200) break;
      if (i >= 2) lat.push(performance.now() - a);
      rows = res.body.count ?? res.body.logs?.length ?? res.body.groups?.length ?? res.body.series?.length ?? res.body.steps?.length ?? res.body.timeline?.length ?? 0;
    }
    if (status !== 200) {
      console.log(`| ${s.name} | HTTP ${status} | | |`);
      continue;
    }
    lat.sort((a, b) => a - b);
    console.log(`| ${s.name} | ${percentile(lat, 50).toFixed(1)} | ${percentile(lat, 99).toFixed(1)} | ${rows} |`);
  }
  await transport.close();
} finally {
  execFileSync('bash', [join(ROOT, 'scripts', 'cluster.sh'), 'down', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(dir, { recursive: true, force: true });
}
