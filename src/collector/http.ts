// Ingest routes: POST /monitoring/logs (JSON, array or NDJSON) and POST /monitoring/alert.
// The other wire formats have their own plugins (otlp-http.ts, sentry-http.ts, loki.ts, es-bulk.ts).
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { EventRow } from '../event.js';
import { HttpError, badRequest } from '../http/errors.js';
import { parseJsonBody, parseNdjsonBody, parseUntypedBody, type ParsedBody } from './parse.js';
import type { IngestResult } from './ingest.js';
import { ingestScope, overloaded, readUntypedAs, rejectParsed, type IngestRouteOptions } from './ingest-route.js';

export interface AlertRouting {
  /**
   * Routes an engine-raised alert that is durable, once per (project, id): a resent alert gets the
   * first routing's answer. Answers who was told.
   */
  route(row: EventRow): Promise<{ notified: boolean; channels: string[] }>;
}

export interface CollectorRouteOptions extends IngestRouteOptions {
  alerts?: AlertRouting;
}

function parseBody(body: unknown, contentType: string | undefined): ParsedBody {
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : '';
  if (/ndjson|jsonl|jsonlines/i.test(contentType ?? '')) return parseNdjsonBody(text);
  // text/plain, or no Content-Type (read as text/plain): JSON, or NDJSON when it has several lines
  if (/^\s*text\/plain/i.test(contentType ?? '')) return parseUntypedBody(text);
  return parseJsonBody(text);
}

export async function collectorRoutes(app: FastifyInstance, opts: CollectorRouteOptions): Promise<void> {
  // Bodies are read as text: we parse them ourselves so NDJSON lines fail one at a time and
  // every error names its field.
  const scope = ingestScope(app, opts, [{
    types: ['application/json', 'application/x-ndjson', 'application/ndjson', 'application/jsonl', 'text/plain'], parseAs: 'string',
  }]);
  readUntypedAs(app, 'text/plain');

  const answer = (reply: FastifyReply, r: IngestResult): FastifyReply => {
    if (r.accepted === 0 && r.rejected.length > 0) {
      const first = r.rejected[0];
      throw new HttpError(400, 'invalid_events', `no event was accepted; event ${first.index}: ${first.errors[0].field} ${first.errors[0].message}`, {
        accepted: 0, rejected: r.rejected.slice(0, 1000),
      });
    }
    return reply.send({ accepted: r.accepted, ids: r.ids, rejected: r.rejected.slice(0, 1000), duplicates: r.duplicates, dropped_attributes: r.dropped_attributes });
  };

  app.post('/monitoring/logs', { config: { scope: 'ingest' } }, async (req, reply) => {
    const parsed = parseBody(req.body, req.headers['content-type']);
    if (!parsed.ok) throw rejectParsed(parsed);
    const result = await scope.ingest(req, parsed.items, { lineErrors: parsed.lineErrors });
    return answer(reply, result);
  });

  app.post('/monitoring/alert', { config: { scope: 'ingest' } }, async (req, reply) => {
    const parsed = parseBody(req.body, req.headers['content-type']);
    if (!parsed.ok) throw rejectParsed(parsed);
    if (parsed.items.length !== 1) {
      throw badRequest([{ field: '(body)', message: 'send one alert object' }]);
    }
    await scope.charge(req, 1);
    // An alert with no severity is still an alert: the engine raised it because it matters. Set it
    // on the input, so validation, redaction and fingerprinting all see the event as stored.
    const item = parsed.items[0];
    const input = typeof item === 'object' && item !== null && !Array.isArray(item) && (item as { severity?: unknown }).severity === undefined
      ? { ...item, severity: 'high' }
      : item;
    const prepared = await opts.collector.prepare([input], req.principal, { alert: true });
    if (prepared.rejected.length > 0) {
      throw badRequest(prepared.rejected[0].errors);
    }
    const row = prepared.rows[0];
    await opts.collector.store(prepared).catch(overloaded);
    // a resent alert (same id) is not routed again: route() answers what the first routing did
    const routed = opts.alerts ? await opts.alerts.route(row) : { notified: false, channels: [] };
    return reply.send({ id: row.id, notified: routed.notified, channels: routed.channels });
  });
}
