// bench/overload: offered twice the sustained rate, open loop, for OVERLOAD_S seconds (default 10;
// the run is 60), with and without a client socket cap. Prints how fast the excess is refused
// (from the moment a request has a connection), how the taken requests fare, the engine's peak RSS,
// and the rate right after.
//   node dist/bench/overload.js
import http from 'node:http';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { ADMIN, machine, percentile, refusedByReason, spawnEngine } from './common.js';

const OVERLOAD_S = Number(process.env.OVERLOAD_S ?? 10);
const BATCH = 200;
let seq = 0;

function send(url: string, agent: http.Agent): Promise<{ status: number; ms: number; retryAfter?: string }> {
  let body = '[';
  for (let i = 0; i < BATCH; i++) body += `${i ? ',' : ''}{"project_id":"bench_over","id":"b${seq++}","engine":"execution","message":"step finished","duration_ms":12}`;
  body += ']';
  const u = new URL('/monitoring/logs', url);
  return new Promise((resolve) => {
    let t0 = performance.now();
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: {
      authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
    } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.on('socket', () => (t0 = performance.now()));
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }));
    req.end(body);
  });
}

async function closedLoop(url: string, agent: http.Agent, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (performance.now() < end) if ((await send(url, agent)).status === 200) n += BATCH;
  }));
  return n / seconds;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`bench/overload — ${machine()} — ${OVERLOAD_S} s at 2× the sustained rate, batches of ${BATCH}`);
console.log('| client sockets | sustained ev/s | offered req | taken | refused | refused p50 / p99 ms | taken p50 / p99 ms | engine RSS peak MB | ev/s after |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
// OVERLOAD_CAPS=16 runs only some of the socket caps; OVERLOAD_ENGINE_LOG=file keeps the engine's log
const CAPS = (process.env.OVERLOAD_CAPS ?? 'none,64,16').split(',').map((c) => (c === 'none' ? Infinity : Number(c)));
for (const cap of CAPS) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-over-'));
  const engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
  if (process.env.OVERLOAD_ENGINE_LOG) engine.proc.stdout!.pipe(createWriteStream(`${process.env.OVERLOAD_ENGINE_LOG}.${cap}`));
  const agent = new http.Agent({ keepAlive: true, maxSockets: cap });
  await closedLoop(engine.url, agent, 1);
  const rate = await closedLoop(engine.url, agent, 3);
  const perSecond = (2 * rate) / BATCH;
  const answers: Promise<{ status: number; ms: number }>[] = [];
  let rss = 0;
  let engineLag = 0;
  const watch = setInterval(() => void fetch(`${engine.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.text()).then((text) => {
    const v = Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)?.[1] ?? 0);
    if (v > rss) rss = v;
    engineLag = Math.max(engineLag, Number(/^puraify_monitoring_event_loop_lag_seconds ([\d.]+)$/m.exec(text)?.[1] ?? 0) * 1000);
    // OVERLOAD_WATCH=1: where the engine's memory is, every half second
    if (process.env.OVERLOAD_WATCH) {
      const mb = (re: RegExp) => Math.round(Number(re.exec(text)?.[1] ?? 0) / 2 ** 20);
      console.error(`rss ${mb(/^process_resident_memory_bytes (\d+)$/m)} heap ${mb(/^nodejs_heap_used_bytes (\d+)$/m)} MB; in flight ${/^puraify_monitoring_ingest_inflight_requests (\d+)$/m.exec(text)?.[1]} req ${mb(/^puraify_monitoring_ingest_inflight_bytes (\d+)$/m)} MB; log memory ${mb(/consumer="loader"} (\d+)/)}/${mb(/consumer="observer"} (\d+)/)} MB; fsync waiting ${mb(/^puraify_monitoring_wal_fsync_waiting_bytes (\d+)$/m)} MB; unloaded ${mb(/^puraify_monitoring_wal_unloaded_bytes (\d+)$/m)} MB`);
    }
  }).catch(() => undefined), 500);
  // the client's own event-loop delay is part of every latency it measures: printed beside them
  const clientLag = monitorEventLoopDelay({ resolution: 10 });
  clientLag.enable();
  const t0 = performance.now();
  while (performance.now() - t0 < OVERLOAD_S * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * perSecond);
    while (answers.length < due) answers.push(send(engine.url, agent));
    await new Promise((r) => setTimeout(r, 5));
  }
  const got = await Promise.all(answers);
  clearInterval(watch);
  clientLag.disable();
  const after = await closedLoop(engine.url, agent, 3);
  const reasons = await refusedByReason(engine.url);
  console.error(`${cap === Infinity ? 'no cap' : cap}: refused by reason (the whole run): ${reasons}; `
    + `client event-loop delay p99 ${(clientLag.percentile(99) / 1e6).toFixed(1)} ms, max ${(clientLag.max / 1e6).toFixed(1)} ms; `
    + `engine's largest sampled event-loop lag ${engineLag.toFixed(1)} ms`);
  const refused = got.filter((a) => a.status !== 200).map((a) => a.ms).sort((a, b) => a - b);
  const taken = got.filter((a) => a.status === 200).map((a) => a.ms).sort((a, b) => a - b);
  const pp = (xs: number[]) => (xs.length ? `${percentile(xs, 50).toFixed(1)} / ${percentile(xs, 99).toFixed(1)}` : '–');
  console.log(`| ${cap === Infinity ? 'no cap' : cap} | ${fmt(rate)} | ${got.length} | ${taken.length} | ${refused.length} | ${pp(refused)} | ${pp(taken)} | ${Math.round(rss / 2 ** 20)} | ${fmt(after)} |`);
  agent.destroy();
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
}
