// OTLP/HTTP failure answers: "the response body for all HTTP 4xx and HTTP 5xx responses MUST be a
// Protobuf-encoded Status message" — JSON-encoded when the request was JSON (opentelemetry-proto
// docs/specification.md, "OTLP/HTTP Response"). The HTTP status stays the engine's; the Status
// carries the matching gRPC code, our message, and details a client can act on:
// google.rpc.ErrorInfo (reason = the engine's error code, e.g. invalid_json), google.rpc.BadRequest
// (one field violation per field error) and google.rpc.RetryInfo (when Retry-After is sent).
import type { HttpError } from '../http/errors.js';
import { messageType } from './proto.js';

export const STATUS_DOMAIN = 'puraify-monitoring';

/** HTTP status → gRPC code (as gRPC's own HTTP mapping pairs them; 2 UNKNOWN otherwise). */
const GRPC_CODE: Record<number, number> = {
  400: 3, 401: 16, 403: 7, 404: 5, 408: 4, 409: 10, 413: 3, 415: 3, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4, 507: 8,
};
export const grpcCode = (httpStatus: number): number => GRPC_CODE[httpStatus] ?? 2;

const TYPE = 'type.googleapis.com/google.rpc.';

interface FieldViolation { field: string; description: string }

/** The field errors an HttpError carries ({errors: [{field, message}]}), at most 100. */
function violations(e: HttpError): FieldViolation[] {
  const d = e.details as { errors?: unknown } | undefined;
  const list = Array.isArray(d?.errors) ? d.errors : [];
  return list.slice(0, 100).flatMap((x) => (typeof x === 'object' && x !== null && typeof (x as { field?: unknown }).field === 'string'
    ? [{ field: (x as { field: string }).field, description: String((x as { message?: unknown }).message ?? '') }] : []));
}

function retrySeconds(e: HttpError): number | undefined {
  const v = Number(e.headers?.['Retry-After'] ?? e.headers?.['retry-after']);
  return Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** The Status in the proto3 JSON encoding (details as Any with "@type"). */
export function statusJson(e: HttpError): { code: number; message: string; details: Record<string, unknown>[] } {
  const details: Record<string, unknown>[] = [{ '@type': `${TYPE}ErrorInfo`, reason: e.code, domain: STATUS_DOMAIN, metadata: {} }];
  const fields = violations(e);
  if (fields.length > 0) details.push({ '@type': `${TYPE}BadRequest`, fieldViolations: fields });
  const retry = retrySeconds(e);
  if (retry !== undefined) details.push({ '@type': `${TYPE}RetryInfo`, retryDelay: `${retry}s` });
  return { code: grpcCode(e.status), message: e.message, details };
}

function any(name: string, value: Record<string, unknown>): { type_url: string; value: Uint8Array } {
  const t = messageType(`google.rpc.${name}`);
  return { type_url: `${TYPE}${name}`, value: t.encode(t.fromObject(value)).finish() };
}

/** The same Status, protobuf-encoded. */
export function statusProto(e: HttpError): Buffer {
  const details = [any('ErrorInfo', { reason: e.code, domain: STATUS_DOMAIN })];
  const fields = violations(e);
  if (fields.length > 0) details.push(any('BadRequest', { fieldViolations: fields }));
  const retry = retrySeconds(e);
  if (retry !== undefined) details.push(any('RetryInfo', { retryDelay: { seconds: retry, nanos: 0 } }));
  const Status = messageType('google.rpc.Status');
  return Buffer.from(Status.encode(Status.fromObject({ code: grpcCode(e.status), message: e.message, details })).finish());
}
