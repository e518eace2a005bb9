// One error shape for every route: {error: {code, message, details?}}. Never a stack trace.
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FieldError } from '../event.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export function badRequest(errors: FieldError[], message?: string): HttpError {
  const first = errors[0];
  // a query-language error leads with where it is, so a search box can point at it
  const query = errors.find((e) => e.column !== undefined);
  const main = query ?? first;
  return new HttpError(400, query ? 'invalid_query' : 'invalid_request', message ?? (main ? `${main.field}: ${main.message}` : 'invalid request'),
    query ? { field: query.field, column: query.column, errors } : { errors });
}

export function sendError(reply: FastifyReply, e: HttpError): FastifyReply {
  if (e.headers) reply.headers(e.headers);
  const body: { error: { code: string; message: string; details?: unknown } } = { error: { code: e.code, message: e.message } };
  if (e.details !== undefined) body.error.details = e.details;
  return reply.code(e.status).type('application/json').send(body);
}

/**
 * Errors the router raises before any route runs (a malformed percent-escape in the path, a path
 * parameter over maxParamLength): the same shape, and never the whole offending URL echoed back.
 */
export function frameworkErrorHandler(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
  const message = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment is too long'
    : err.code === 'FST_ERR_BAD_URL' ? 'the URL is not valid (malformed percent-encoding)'
      : 'the request could not be routed';
  void sendError(reply, new HttpError(status, (err.code ?? 'bad_request').replace(/^FST_ERR_/, '').toLowerCase(), message));
}

const CLIENT_ERRORS: Record<string, [number, string, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'request_timeout', 'the request (headers and body) was not received in time'],
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'headers_too_large', 'the request line and headers are larger than 16 KB; send long filters in fewer, shorter values'],
};

/**
 * Connection-level errors Node raises before fastify sees a request (a body that trickles in past
 * the request timeout, oversized headers, malformed HTTP): answered in the error shape, then closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'Bad Request', 'bad_request', 'the request is not valid HTTP'];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/** ClickHouse codes for a full disk: NOT_ENOUGH_SPACE, CANNOT_WRITE_TO_FILE_DESCRIPTOR (with ENOSPC). */
const DISK_FULL_TEXT = /No space left on device|ENOSPC|NOT_ENOUGH_SPACE|not enough space|database or disk is full|SQLITE_FULL/i;
/** Storage that does not answer or refuses the connection: its failure, not the request's. */
const UNAVAILABLE_TEXT = /did not answer|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EPIPE|socket hang up|SQLITE_BUSY|database is locked|the ClickHouse transport is closed|Timeout exceeded|TOO_MANY_SIMULTANEOUS_QUERIES|MEMORY_LIMIT_EXCEEDED|Memory limit/i;
// timeout, too many queries, socket timeout, network error, memory, table read-only (ZooKeeper gone on a
// Replicated table), system error; on a cluster also NO_ZOOKEEPER, ALL_CONNECTION_TRIES_FAILED (no replica of a
// shard), UNKNOWN_STATUS_OF_INSERT, KEEPER_EXCEPTION
const UNAVAILABLE_CODES = new Set([159, 202, 209, 210, 225, 241, 242, 279, 319, 425, 999]);

/**
 * A storage failure answered as what it is: 507 for a full disk, 503 for storage that is down,
 * frozen or overloaded, both with Retry-After. Covers both transports (chDB errors carry
 * `clickhouseCode`, the server transport's ClickHouseServerError too; connection failures are
 * plain errors) and the control store (SQLite). undefined: not a storage failure (a bug → 500).
 */
export function storageFailure(e: unknown, depth = 0): HttpError | undefined {
  const err = e as { name?: string; clickhouseCode?: number; code?: string | number; message?: string } | undefined;
  if (!err || typeof err !== 'object') return undefined;
  const text = `${err.message ?? ''} ${typeof err.code === 'string' ? err.code : ''}`;
  if (err.clickhouseCode === 243 || DISK_FULL_TEXT.test(text)) {
    return new HttpError(507, 'insufficient_storage', 'the engine\'s storage is full; nothing of this request was stored. Retry later', undefined, { 'Retry-After': '60' });
  }
  if (err.name === 'StorageTimeoutError' || (typeof err.clickhouseCode === 'number' && UNAVAILABLE_CODES.has(err.clickhouseCode)) || UNAVAILABLE_TEXT.test(text)) {
    return new HttpError(503, 'storage_unavailable', 'the engine\'s storage is not answering; nothing of this request was acknowledged. Retry shortly', undefined, { 'Retry-After': '5' });
  }
  // a Distributed insert or a wrapped driver error carries the store's failure as its cause
  const cause = (err as { cause?: unknown }).cause;
  return cause !== undefined && cause !== e && depth < 4 ? storageFailure(cause, depth + 1) : undefined;
}

/**
 * Any error a route or fastify raised → the HttpError it is answered as: fastify's own (body limit,
 * content type, schema), storage failures (503/507), and anything else a 500 (logged here). Routes
 * with a wire format of their own (OTLP's google.rpc.Status) answer the same status in their shape.
 */
export function asHttpError(err: FastifyError, req: FastifyRequest, bodyLimit: number | undefined): HttpError {
  if (err instanceof HttpError) return err;
  if (err.validation) {
    const errors = err.validation.map((v) => ({
      field: (v.instancePath || '').replace(/^\//, '').replace(/\//g, '.') || String((v.params as { missingProperty?: string })?.missingProperty ?? err.validationContext ?? 'request'),
      message: v.message ?? 'is invalid',
    }));
    return badRequest(errors);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError(413, 'payload_too_large', `the body is larger than ${Math.round((bodyLimit ?? 0) / 1048576)} MB; split it into smaller requests`, { errors: [{ field: '(body)', message: 'too large' }] });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError(415, 'unsupported_media_type', 'send application/json or application/x-ndjson');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new HttpError(400, 'invalid_json', 'the body is not valid JSON', { errors: [{ field: '(body)', message: err.message }] });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(400, 'invalid_request', 'the Content-Length does not match the body');
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new HttpError(err.statusCode, err.code?.toLowerCase() ?? 'bad_request', err.message);
  }
  const storage = storageFailure(err);
  if (storage) {
    req.log.warn({ err }, 'storage failure');
    return storage;
  }
  req.log.error({ err }, 'unhandled error');
  return new HttpError(500, 'internal', 'internal error; the engine logged the details');
}

/** Maps every error onto the shape above (asHttpError). */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => sendError(reply, asHttpError(err, req, app.initialConfig.bodyLimit)));
  app.setNotFoundHandler((req, reply) => sendError(reply, new HttpError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));
}
