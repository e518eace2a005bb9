// OTLP/HTTP protobuf encoding: requests decoded with protobufjs from the vendored opentelemetry-proto
// definitions into the proto3 JSON shape that otlp.ts / otlp-traces.ts map, and answers encoded back
// (ExportLogsServiceResponse, ExportTraceServiceResponse; failures in otlp-status.ts).
import type { OtlpAnswer } from './otlp.js';
import { messageType } from './proto.js';

const LOGS_REQUEST = 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest';
const LOGS_RESPONSE = 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse';
const TRACES_REQUEST = 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest';
const TRACES_RESPONSE = 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse';
const STATUS = 'google.rpc.Status';

export type Decoded = { ok: true; value: unknown } | { ok: false; message: string };

/**
 * The decoded message itself, not a toObject copy: the mappers read own properties only (see
 * anyValue in otlp.ts), 64-bit fields as Longs and ids as bytes. Copying the tree first cost as much
 * as decoding it.
 */
function decode(name: string, body: Buffer): Decoded {
  try {
    return { ok: true, value: messageType(name).decode(body) };
  } catch (e) {
    return { ok: false, message: `not a valid ${name.split('.').pop()} (protobuf): ${(e as Error).message}` };
  }
}

export const decodeLogsRequest = (body: Buffer): Decoded => decode(LOGS_REQUEST, body);
export const decodeTracesRequest = (body: Buffer): Decoded => decode(TRACES_REQUEST, body);

type Obj = Record<string, unknown>;

function encode(name: string, value: Obj): Buffer {
  const t = messageType(name);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
}

export function encodeAnswer(signal: 'logs' | 'traces', a: OtlpAnswer): Buffer {
  return encode(signal === 'logs' ? LOGS_RESPONSE : TRACES_RESPONSE, a as Obj);
}
