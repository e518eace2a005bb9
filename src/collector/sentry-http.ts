// Sentry SDK receiver: POST /api/:project/envelope/ and /api/:project/store/, authenticated the way
// the SDKs do it (?sentry_key= or X-Sentry-Auth; see auth/http.ts), any or no Content-Type, chunked
// or gzip bodies. Items map onto canonical events (sentry.ts) and enter through Collector.ingest.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { FieldError } from '../event.js';
import { HttpError, badRequest } from '../http/errors.js';
import { boundProject } from '../auth/principal.js';
import { ingestScope, type IngestRouteOptions } from './ingest-route.js';
import { dsnProjectNumber, IGNORED_ITEMS, mapSentryEvent, mapSentryLogs, mapSentrySpans, mapSentryTransaction, parseEnvelope } from './sentry.js';

const PROJECT = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Item types that carry events: errors and messages, transactions, streamed spans, Sentry logs. */
const MAPPED_ITEMS: ReadonlySet<string> = new Set(['event', 'transaction', 'span', 'log']);

/** The project a request writes to: the key's own (the DSN names it by number), or the one named. */
export function sentryProject(param: string, req: FastifyRequest): string {
  const bound = boundProject(req.principal);
  if (bound !== undefined) {
    if (param === bound || param === dsnProjectNumber(bound)) return bound;
    throw new HttpError(403, 'forbidden', `this key writes to project ${bound}; the DSN names project ${param.slice(0, 64)} (GET /monitoring/keys/:id/dsn gives the right DSN)`);
  }
  if (/^\d+$/.test(param)) {
    throw badRequest([{ field: 'project', message: 'a numeric DSN project needs a key bound to one project; take the DSN from GET /monitoring/keys/:id/dsn' }]);
  }
  if (!PROJECT.test(param)) throw badRequest([{ field: 'project', message: 'is not a project id' }]);
  return param;
}

const Params = Type.Object({ project: Type.String({ maxLength: 128, description: 'the DSN\'s project number, or a project id' }) });
const Answer = Type.Object({ id: Type.Union([Type.String(), Type.Null()]) }, { description: 'as a Sentry server answers: the event id' });
const SentryBody = Type.Unknown({ description: 'a Sentry envelope (envelope/) or event JSON (store/); any or no Content-Type, optionally gzip' });

function parseJson(payload: Buffer, field: string): { value: Record<string, unknown> } | { error: FieldError } {
  try {
    const v = JSON.parse(payload.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return { value: v };
    return { error: { field, message: 'must be a JSON object' } };
  } catch (e) {
    return { error: { field, message: `is not valid JSON: ${(e as Error).message}` } };
  }
}

export async function sentryRoutes(app: FastifyInstance, opts: IngestRouteOptions): Promise<void> {
  // SDKs send no Content-Type, text/plain, application/json or application/x-sentry-envelope
  const scope = ingestScope(app, opts, [{ types: '*', parseAs: 'buffer' }]);
  const route = { config: { scope: 'ingest' as const, sentryAuth: true }, schema: { params: Params, body: SentryBody, response: { 200: Answer } } };
  const bodyOf = (req: FastifyRequest): Buffer => (Buffer.isBuffer(req.body) ? req.body : Buffer.from(typeof req.body === 'string' ? req.body : ''));

  for (const url of ['/api/:project/envelope/', '/api/:project/envelope']) {
    app.post(url, route, async (req, reply) => {
      const project = sentryProject((req.params as { project: string }).project, req);
      const env = parseEnvelope(bodyOf(req));
      if (!env.ok) throw badRequest([env.error], `the body is not a Sentry envelope: ${env.error.field} ${env.error.message}`);
      const items: unknown[] = [];
      const lineErrors = new Map<number, FieldError[]>();
      let id: string | null = typeof env.header.event_id === 'string' ? env.header.event_id : null;
      for (const [i, item] of env.items.entries()) {
        const type = String(item.header.type ?? '');
        if (IGNORED_ITEMS.has(type) || !MAPPED_ITEMS.has(type)) continue;
        const parsed = parseJson(item.payload, `item ${i} (${type})`);
        if ('error' in parsed) {
          lineErrors.set(items.length, [parsed.error]);
          items.push(undefined);
          continue;
        }
        if (type === 'event') {
          items.push(mapSentryEvent(parsed.value, project));
          id ??= typeof parsed.value.event_id === 'string' ? parsed.value.event_id : null;
        } else if (type === 'transaction') items.push(...mapSentryTransaction(parsed.value, project));
        else if (type === 'span') items.push(...mapSentrySpans(parsed.value, project));
        else items.push(...mapSentryLogs(parsed.value, project));
      }
      if (items.length === 0) return reply.send({ id });
      const result = await scope.ingest(req, items, { lineErrors });
      if (result.accepted === 0) {
        const first = result.rejected[0];
        throw new HttpError(400, 'invalid_events', `no event was accepted; item ${first.index}: ${first.errors[0].field} ${first.errors[0].message}`, { accepted: 0, rejected: result.rejected.slice(0, 100) });
      }
      return reply.send({ id });
    });
  }

  for (const url of ['/api/:project/store/', '/api/:project/store']) {
    app.post(url, route, async (req, reply) => {
      const project = sentryProject((req.params as { project: string }).project, req);
      const parsed = parseJson(bodyOf(req), '(body)');
      if ('error' in parsed) throw badRequest([parsed.error]);
      const ev = parsed.value;
      const items = ev.type === 'transaction' ? mapSentryTransaction(ev, project) : [mapSentryEvent(ev, project)];
      const result = await scope.ingest(req, items);
      if (result.accepted === 0) throw badRequest(result.rejected[0].errors);
      return reply.send({ id: typeof ev.event_id === 'string' ? ev.event_id : result.ids[0] ?? null });
    });
  }
}
