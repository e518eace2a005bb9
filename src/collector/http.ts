// Ingest routes: POST /monitoring/logs (JSON, array or NDJSON) and POST /monitoring/alert.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LIMITS, type EventRow } from '../event.js';
import { HttpError, badRequest } from '../http/errors.js';
import { parseJsonBody, parseNdjsonBody, type ParsedBody } from './parse.js';
import { OverloadedError } from './writer.js';
import type { Collector, IngestResult } from './ingest.js';
import { isProtobuf, otlpResponse, parseOtlpLogsJson } from './otlp.js';

export interface AlertRouting {
  /** Routes an engine-raised alert that is already stored; answers who was told. */
  route(row: EventRow): Promise<{ notified: boolean; channels: string[] }>;
}

export interface CollectorRouteOptions {
  collector: Collector;
  alerts?: AlertRouting;
  /** Per-key event budget (the request budget is checked in the auth stage). */
  takeEvents?: (keyId: string | undefined, limit: number | undefined, n: number) => number;
}

function parseBody(body: unknown, contentType: string | undefined): ParsedBody {
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : '';
  if (/ndjson|jsonl|jsonlines/i.test(contentType ?? '')) return parseNdjsonBody(text);
  return parseJsonBody(text);
}

function rejectParsed(p: Extract<ParsedBody, { ok: false }>): HttpError {
  return new HttpError(p.status, p.code, p.message, { errors: p.errors });
}

function overloaded(e: unknown): never {
  if (e instanceof OverloadedError) {
    throw new HttpError(503, 'overloaded', e.message, undefined, { 'Retry-After': String(e.retryAfterS) });
  }
  throw e;
}

/** Charges `n` events to the caller's budget; 429 with Retry-After when it is spent. Every ingest route calls it. */
function chargeEvents(opts: CollectorRouteOptions, req: FastifyRequest, n: number): void {
  if (!opts.takeEvents) return;
  const wait = opts.takeEvents(req.principal.keyId, req.principal.eventsPerMinute, n);
  if (wait > 0) throw new HttpError(429, 'rate_limited', 'this key sent more events than its limit allows', undefined, { 'Retry-After': String(wait) });
}

export async function collectorRoutes(app: FastifyInstance, opts: CollectorRouteOptions): Promise<void> {
  // Bodies are read as text: we parse them ourselves so NDJSON lines fail one at a time and
  // every error names its field.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['application/json', 'application/x-ndjson', 'application/ndjson', 'application/jsonl', 'text/plain'],
    { parseAs: 'string', bodyLimit: LIMITS.maxBodyBytes },
    (_req, body, done) => done(null, body),
  );

  const answer = (reply: FastifyReply, r: IngestResult): FastifyReply => {
    if (r.accepted === 0 && r.rejected.length > 0) {
      const first = r.rejected[0];
      throw new HttpError(400, 'invalid_events', `no event was accepted; event ${first.index}: ${first.errors[0].field} ${first.errors[0].message}`, {
        accepted: 0, rejected: r.rejected.slice(0, 1000),
      });
    }
    return reply.send({ accepted: r.accepted, ids: r.ids, rejected: r.rejected.slice(0, 1000), duplicates: r.duplicates, dropped_attributes: r.dropped_attributes });
  };

  // Tell the writer a request is on its way before its body is read (see GroupCommitWriter.announce).
  const arrivals = new WeakMap<object, () => void>();
  app.addHook('onRequest', async (req) => {
    if (req.method === 'POST') arrivals.set(req, opts.collector.announce());
  });
  app.addHook('onResponse', async (req) => arrivals.get(req)?.());
  app.addHook('onRequestAbort', async (req) => arrivals.get(req)?.());

  app.post('/monitoring/logs', { config: { scope: 'ingest' } }, async (req, reply) => {
    arrivals.get(req)?.();
    const parsed = parseBody(req.body, req.headers['content-type']);
    if (!parsed.ok) throw rejectParsed(parsed);
    chargeEvents(opts, req, parsed.items.length);
    const result = await opts.collector.ingest(parsed.items, req.principal, { lineErrors: parsed.lineErrors }).catch(overloaded);
    return answer(reply, result);
  });

  // OTLP/HTTP logs, JSON encoding (see otlp.ts). Answers per the OTLP spec: {} or {partialSuccess}.
  app.post('/v1/logs', {
    config: { scope: 'ingest' },
    preParsing: async (req) => {
      if (isProtobuf(req.headers['content-type'])) {
        throw new HttpError(415, 'unsupported_media_type', 'OTLP protobuf is not supported; configure the exporter for http/json (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/json, Content-Type: application/json)');
      }
    },
  }, async (req, reply) => {
    arrivals.get(req)?.();
    const parsed = parseOtlpLogsJson(typeof req.body === 'string' ? req.body : '');
    if (!parsed.ok) throw rejectParsed(parsed);
    if (parsed.items.length === 0) return reply.send({});
    chargeEvents(opts, req, parsed.items.length);
    const result = await opts.collector.ingest(parsed.items, req.principal, { lineErrors: parsed.recordErrors }).catch(overloaded);
    const body = otlpResponse(result, parsed.paths);
    if (result.accepted === 0) {
      throw new HttpError(400, 'invalid_events', `no log record was accepted; ${body.partialSuccess?.errorMessage ?? ''}`, { accepted: 0, rejected: result.rejected.slice(0, 1000) });
    }
    return reply.send(body);
  });

  app.post('/monitoring/alert', { config: { scope: 'ingest' } }, async (req, reply) => {
    arrivals.get(req)?.();
    const parsed = parseBody(req.body, req.headers['content-type']);
    if (!parsed.ok) throw rejectParsed(parsed);
    if (parsed.items.length !== 1) {
      throw badRequest([{ field: '(body)', message: 'send one alert object' }]);
    }
    chargeEvents(opts, req, 1);
    // An alert with no severity is still an alert: the engine raised it because it matters. Set it
    // on the input, so validation, redaction and fingerprinting all see the event as stored.
    const item = parsed.items[0];
    const input = typeof item === 'object' && item !== null && !Array.isArray(item) && (item as { severity?: unknown }).severity === undefined
      ? { ...item, severity: 'high' }
      : item;
    const prepared = opts.collector.prepare([input], req.principal, { alert: true });
    if (prepared.rejected.length > 0) {
      throw badRequest(prepared.rejected[0].errors);
    }
    const row = prepared.rows[0];
    const res = await opts.collector.store(prepared).catch(overloaded);
    if (res.accepted === 0) throw badRequest(res.rejected[0].errors);
    const routed = opts.alerts && res.duplicates === 0 ? await opts.alerts.route(row) : { notified: false, channels: [] };
    return reply.send({ id: row.id, notified: routed.notified, channels: routed.channels });
  });
}
