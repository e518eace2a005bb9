// OTLP/HTTP protobuf encoding: requests decoded with protobufjs from the vendored opentelemetry-proto
// definitions into the proto3 JSON shape that otlp.ts / otlp-traces.ts map, and answers encoded back
// (ExportLogsServiceResponse, ExportTraceServiceResponse, google.rpc.Status for failures).
import type { OtlpAnswer } from './otlp.js';
import { messageType, TO_OBJECT } from './proto.js';

const LOGS_REQUEST = 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest';
const LOGS_RESPONSE = 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse';
const TRACES_REQUEST = 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest';
const TRACES_RESPONSE = 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse';
const STATUS = 'google.rpc.Status';

export type Decoded = { ok: true; value: unknown } | { ok: false; message: string };

/** bytes ids arrive base64 from toObject; the JSON encoding (and our fields) use lowercase hex. */
const hex = (v: unknown): unknown => (typeof v === 'string' ? Buffer.from(v, 'base64').toString('hex') : v);

type Obj = Record<string, unknown>;
const list = (o: Obj, k: string): Obj[] => (Array.isArray(o[k]) ? (o[k] as Obj[]) : []);

function decode(name: string, body: Buffer): Decoded {
  try {
    const t = messageType(name);
    return { ok: true, value: t.toObject(t.decode(body), TO_OBJECT) };
  } catch (e) {
    return { ok: false, message: `not a valid ${name.split('.').pop()} (protobuf): ${(e as Error).message}` };
  }
}

export function decodeLogsRequest(body: Buffer): Decoded {
  const d = decode(LOGS_REQUEST, body);
  if (!d.ok) return d;
  for (const rl of list(d.value as Obj, 'resourceLogs')) {
    for (const sl of list(rl, 'scopeLogs')) {
      for (const rec of list(sl, 'logRecords')) {
        if (rec.traceId !== undefined) rec.traceId = hex(rec.traceId);
        if (rec.spanId !== undefined) rec.spanId = hex(rec.spanId);
      }
    }
  }
  return d;
}

export function decodeTracesRequest(body: Buffer): Decoded {
  const d = decode(TRACES_REQUEST, body);
  if (!d.ok) return d;
  for (const rs of list(d.value as Obj, 'resourceSpans')) {
    for (const ss of list(rs, 'scopeSpans')) {
      for (const span of list(ss, 'spans')) {
        for (const k of ['traceId', 'spanId', 'parentSpanId']) if (span[k] !== undefined) span[k] = hex(span[k]);
      }
    }
  }
  return d;
}

function encode(name: string, value: Obj): Buffer {
  const t = messageType(name);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
}

export function encodeAnswer(signal: 'logs' | 'traces', a: OtlpAnswer): Buffer {
  return encode(signal === 'logs' ? LOGS_RESPONSE : TRACES_RESPONSE, a as Obj);
}

/** gRPC status codes the OTLP/HTTP spec pairs with HTTP statuses. */
const GRPC_CODE: Record<number, number> = { 400: 3, 401: 16, 403: 7, 404: 5, 413: 3, 415: 3, 429: 8, 503: 14 };

export function encodeStatus(httpStatus: number, message: string): Buffer {
  return encode(STATUS, { code: GRPC_CODE[httpStatus] ?? 2, message });
}
