// What every ingest route plugin shares: body decoding (Content-Encoding), admission (refusing
// the excess before a body is read), the per-key event budget and the overload answer. Each protocol plugin (http.ts,
// otlp-http.ts, sentry-http.ts, loki.ts, es-bulk.ts) calls ingestScope() once and maps its own
// wire format onto canonical inputs that enter through Collector.ingest like /monitoring/logs.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LIMITS, type FieldError } from '../event.js';
import { HttpError } from '../http/errors.js';
import { WalUnavailableError } from '../wal/log.js';
import type { Admission } from './admission.js';
import type { Collector, IngestOptions, IngestResult } from './ingest.js';
import { addBodyDecoding } from './decompress.js';

export interface IngestRouteOptions {
  collector: Collector;
  /** Per-key event budget (the request budget is checked in the auth stage); answers seconds to wait. */
  takeEvents?: (keyId: string | undefined, limit: number | undefined, n: number) => number | Promise<number>;
  /** Refuses ingest past capacity before the body is read. */
  admission?: Admission;
}

export interface IngestScope {
  /** Charges n events to the caller's budget; 429 when it is spent. */
  charge(req: FastifyRequest, n: number): Promise<void>;
  /** charge + Collector.ingest, with a full or unwritable log answered as 503/507 + Retry-After. */
  ingest(req: FastifyRequest, items: readonly unknown[], opts?: IngestOptions): Promise<IngestResult>;
}

/** A parse failure (ParsedBody / OtlpParsed) as the error answer. */
export function rejectParsed(p: { status: number; code: string; message: string; errors: FieldError[] }): HttpError {
  return new HttpError(p.status, p.code, p.message, { errors: p.errors });
}

/** The 415 of an ingest route: what was sent, and every content type the route accepts. */
export function unsupportedType(sent: string | undefined, accepted: readonly string[]): HttpError {
  const what = sent ? `Content-Type "${sent.slice(0, 100)}" is not accepted here` : 'a body without a Content-Type is not accepted here';
  const list = accepted.join(', ');
  return Object.assign(new HttpError(415, 'unsupported_media_type', `${what}; send one of: ${list}`,
    { accepted, errors: [{ field: 'Content-Type', message: `must be one of: ${list}` }] }), { statusCode: 415 });
}

/**
 * Bodies sent without a Content-Type (pino-http-send's NDJSON, curl -d without -H) are read as
 * `type`: fastify picks the parser by the header, and without one it takes the 415 catch-all.
 */
export function readUntypedAs(app: FastifyInstance, type: string): void {
  app.addHook('onRequest', async (req) => {
    if (req.headers['content-type'] === undefined) req.headers['content-type'] = type;
  });
}

export function overloaded(e: unknown): never {
  if (e instanceof WalUnavailableError) {
    throw new HttpError(e.status, e.status === 507 ? 'insufficient_storage' : 'overloaded', e.message, undefined, { 'Retry-After': String(e.retryAfterS) });
  }
  throw e;
}

/**
 * Sets up an encapsulated plugin scope for ingest: only the given content types are read (as a
 * string or a Buffer, at most the body limit after decoding), and the hooks above are installed.
 */
export function ingestScope(
  app: FastifyInstance, opts: IngestRouteOptions,
  parsers: { types: string[] | RegExp | '*'; parseAs: 'string' | 'buffer' }[],
  ownEncodings: readonly string[] = [],
): IngestScope {
  app.removeAllContentTypeParsers();
  for (const p of parsers) {
    app.addContentTypeParser(p.types as string[], { parseAs: p.parseAs, bodyLimit: LIMITS.maxBodyBytes }, (_req, body, done) => done(null, body));
  }
  // any other type: a 415 that names every type this route reads (before its body is read)
  if (!parsers.some((p) => p.types === '*')) {
    const accepted = parsers.flatMap((p) => (Array.isArray(p.types) ? p.types : []));
    app.addContentTypeParser('*', (req, _payload, done) => done(unsupportedType(req.headers['content-type'], accepted), undefined));
  }
  addBodyDecoding(app, ownEncodings);

  opts.admission?.install(app);

  // a promise: on a cluster the budget may be leased from PostgreSQL (src/auth/shared-rate-limit.ts)
  const charge = async (req: FastifyRequest, n: number): Promise<void> => {
    if (!opts.takeEvents || n <= 0) return;
    const wait = await opts.takeEvents(req.principal.keyId, req.principal.eventsPerMinute, n);
    if (wait > 0) throw new HttpError(429, 'rate_limited', 'this key sent more events than its limit allows', undefined, { 'Retry-After': String(wait) });
  };
  return {
    charge,
    async ingest(req, items, o) {
      await charge(req, items.length);
      const turn = opts.admission?.turnOf(req);
      return opts.collector.ingest(items, req.principal, turn ? { ...o, turn } : o).catch(overloaded);
    },
  };
}
