// bench/protocols: ingest events/s over the wire formats shippers use — OTLP/HTTP protobuf (/v1/logs)
// and Loki protobuf + snappy (/loki/api/v1/push) — beside JSON /monitoring/logs, with the same events,
// batch size and clients, against one engine process in the same run. Goal: each within 0.8× of JSON.
//   npm run bench:protocols            (EVENTS=100000, BATCH=1000, CLIENTS=16 to change)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressSync } from 'snappy';
import { messageType } from '../src/collector/proto.js';
import { ADMIN, machine, makeEvent, percentile, rng, spawnEngine } from './common.js';

const TOTAL = Number(process.env.EVENTS ?? 100_000);
const BATCH = Number(process.env.BATCH ?? 1000);
const CLIENTS = Number(process.env.CLIENTS ?? 16);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

type Ev = Record<string, unknown>;
const str = (key: string, v: unknown) => ({ key, value: typeof v === 'number' ? { intValue: v } : { stringValue: String(v) } });

/** An ExportLogsServiceRequest as an OTel SDK builds it: one resource per (project, engine). */
function otlpBody(batch: Ev[], withScope: boolean): Buffer {
  const byResource = new Map<string, Ev[]>();
  for (const e of batch) {
    const k = `${e.project_id}\u0000${e.engine}`;
    (byResource.get(k) ?? byResource.set(k, []).get(k)!).push(e);
  }
  const Req = messageType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
  const msg = Req.fromObject({
    resourceLogs: [...byResource.values()].map((evs) => ({
      resource: { attributes: [str('puraify.project_id', evs[0].project_id), str('service.name', evs[0].engine)] },
      scopeLogs: [{
        // an SDK names its instrumentation scope: stored as one attribute more per event than JSON has
        ...(withScope ? { scope: { name: 'bench' } } : {}),
        logRecords: evs.map((e) => ({
          timeUnixNano: String(BigInt(e.timestamp as number) * 1_000_000n),
          severityNumber: e.status === 'error' ? 17 : 9,
          body: { stringValue: e.message },
          attributes: ['event_type', 'platform', 'action', 'status', 'duration_ms', 'retries', 'flow_id', 'session_id', 'user_id', 'error_type']
            .filter((k) => e[k] !== undefined)
            .map((k) => str(k === 'event_type' ? 'puraify.event_type' : k === 'session_id' ? 'session.id' : k === 'user_id' ? 'enduser.id' : k === 'error_type' ? 'exception.type' : k, e[k])),
        })),
      }],
    })),
  });
  return Buffer.from(Req.encode(msg).finish());
}

/** A Loki PushRequest as Promtail builds it: streams by label set, the rest of the event as a JSON line. */
function lokiBody(batch: Ev[]): Buffer {
  const streams = new Map<string, { labels: string; entries: { timestamp: { seconds: number; nanos: number }; line: string }[] }>();
  for (const e of batch) {
    const level = e.status === 'error' ? 'error' : 'info';
    const labels = `{project_id="${e.project_id}", job="${e.engine}", level="${level}"}`;
    const { project_id: _p, engine: _e, timestamp, ...rest } = e;
    const ms = timestamp as number;
    const s = streams.get(labels) ?? streams.set(labels, { labels, entries: [] }).get(labels)!;
    s.entries.push({ timestamp: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 }, line: JSON.stringify(rest) });
  }
  const Push = messageType('logproto.PushRequest');
  return compressSync(Buffer.from(Push.encode(Push.fromObject({ streams: [...streams.values()] })).finish()));
}

interface Format { name: string; path: string; contentType: string; encode(batch: Ev[]): Uint8Array | string; ok: number }
const ALL_FORMATS: Format[] = [
  { name: 'JSON /monitoring/logs', path: '/monitoring/logs', contentType: 'application/json', encode: (b) => JSON.stringify(b), ok: 200 },
  { name: 'OTLP protobuf /v1/logs (same fields as JSON)', path: '/v1/logs', contentType: 'application/x-protobuf', encode: (b) => otlpBody(b, false), ok: 200 },
  { name: 'OTLP protobuf /v1/logs (+ scope: 1 attribute/event)', path: '/v1/logs', contentType: 'application/x-protobuf', encode: (b) => otlpBody(b, true), ok: 200 },
  { name: 'Loki protobuf+snappy /loki/api/v1/push', path: '/loki/api/v1/push', contentType: 'application/x-protobuf', encode: lokiBody, ok: 204 },
];
// ONLY=otlp (a substring of a format's name) runs one format, e.g. to profile the engine on it
const FORMATS = process.env.ONLY ? ALL_FORMATS.filter((f) => f.name.toLowerCase().includes(process.env.ONLY!.toLowerCase())) : ALL_FORMATS;

async function run(url: string, f: Format, bodies: (Uint8Array | string)[]): Promise<{ rate: number; p50: number; p99: number }> {
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const s = performance.now();
      const res = await fetch(url + f.path, { method: "POST", headers: { authorization: `Bearer ${ADMIN}`, "content-type": f.contentType }, body: body as string });
      const text = await res.text();
      lat.push(performance.now() - s);
      if (res.status !== f.ok) throw new Error(`${f.name} answered ${res.status}: ${text.slice(0, 200)}`);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rate: (bodies.length * BATCH) / secs, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`bench/protocols — ${machine()} — ${fmt(TOTAL)} events per format and round, batch ${BATCH}, ${CLIENTS} clients, ${ROUNDS} rounds, a fresh engine per format and round (best shown)`);

const r = rng(7);
const events = Array.from({ length: TOTAL }, (_, i) => makeEvent(r, i));
const batches: Ev[][] = [];
for (let i = 0; i < TOTAL; i += BATCH) batches.push(events.slice(i, i + BATCH));
const encoded = FORMATS.map((f) => batches.map((b) => f.encode(b)));
for (const [i, f] of FORMATS.entries()) {
  const bytes = encoded[i].reduce((n, b) => n + Buffer.byteLength(b), 0);
  console.log(`${f.name}: ${(bytes / TOTAL).toFixed(0)} wire bytes/event`);
}

// Each format gets a fresh engine each round: no format inherits another's background merges or
// pays for error groups another created (every run creates the same groups); rounds interleave so
// drift in the machine's load hits every format alike.
const best = FORMATS.map(() => ({ rate: 0, p50: 0, p99: 0 }));
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, f] of FORMATS.entries()) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-proto-'));
    const engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
    try {
      const res = await run(engine.url, f, encoded[i]);
      if (res.rate > best[i].rate) best[i] = res;
    } finally {
      await engine.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
console.log('| format | events/s | request p50 ms | request p99 ms | vs JSON |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [i, f] of FORMATS.entries()) {
  console.log(`| ${f.name} | ${fmt(best[i].rate)} | ${best[i].p50.toFixed(1)} | ${best[i].p99.toFixed(1)} | ${(best[i].rate / best[0].rate).toFixed(2)} |`);
}
