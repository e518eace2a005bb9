// Query & Search API: GET /monitoring/logs with every filter, the query language (query=), keyset
// cursors, text search; GET /monitoring/logs/count for the total.
import type {} from '../auth/http.js'; // request.principal (the tenant guard's augmentation)
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { toStoredEvent, type FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import { visibleProjects } from '../auth/principal.js';
import type { CursorPosition, EventStore } from '../storage/event-store.js';
import { asInt, asSingle, filterQueryDocs, parseFilter, type EventFilter } from './filters.js';
import { decodeCursor, encodeCursor } from './cursor.js';

export const MAX_LIMIT = 1000;

/** Filters of a read route, with the tenant guard applied: the caller sees only its projects. */
export function readFilter(req: FastifyRequest, extra: readonly string[], errors: FieldError[]): EventFilter {
  const query = (req.query ?? {}) as Record<string, unknown>;
  const f = parseFilter(query, extra, errors);
  scopeToPrincipal(req, f);
  return f;
}

export function scopeToPrincipal(req: FastifyRequest, f: EventFilter): void {
  const v = visibleProjects(req.principal, f.eq.project_id);
  if (!v.ok) throw new HttpError(403, 'forbidden', `this key may not read project ${v.project}`);
  f.projects = v.projects;
}

export function parseOrder(raw: unknown, errors: FieldError[]): 'asc' | 'desc' {
  const o = asSingle(raw, 'order', errors) ?? 'desc';
  if (o !== 'asc' && o !== 'desc') {
    errors.push({ field: 'order', message: 'must be asc or desc' });
    return 'desc';
  }
  return o;
}

export interface QueryRouteOptions {
  events: EventStore;
  /** Bounds concurrent queries; answers 429 when full. */
  limiter: <T>(fn: () => Promise<T>) => Promise<T>;
}

const LOGS_QUERY = filterQueryDocs({
  alert: Type.Optional(Type.String({ description: 'true | false' })),
  order: Type.Optional(Type.String({ description: 'desc (default) | asc' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, description: 'default 100' })),
  cursor: Type.Optional(Type.String({ description: 'next_cursor of the previous page' })),
});
const COUNT_QUERY = filterQueryDocs({
  alert: Type.Optional(Type.String({ description: 'true | false' })),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 100, description: 'at most the query timeout; past it {count: null, timed_out: true}' })),
});

export async function queryRoutes(app: FastifyInstance, opts: QueryRouteOptions): Promise<void> {
  app.get('/monitoring/logs', { config: { scope: 'read', docs: { querystring: LOGS_QUERY } } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const filter = readFilter(req, ['limit', 'cursor', 'order', 'alert'], errors);
    const order = parseOrder(q.order, errors);
    const limit = asInt(q.limit, 'limit', 1, MAX_LIMIT, errors) ?? 100;
    readAlert(q, filter, errors);
    const rawCursor = asSingle(q.cursor, 'cursor', errors);
    let after: CursorPosition | undefined;
    if (rawCursor) {
      after = decodeCursor(rawCursor, order);
      if (!after) errors.push({ field: 'cursor', message: 'is not a cursor this API gave out for this order' });
    }
    if (errors.length) throw badRequest(errors);
    const page = await opts.limiter(() => opts.events.search(filter, { order, limit, after }));
    return {
      logs: page.rows.map(toStoredEvent),
      next_cursor: page.next ? encodeCursor(page.next, order) : null,
    };
  });

  // The total for a search ("1,234 events"), bounded in time: past timeout_ms (default and most the
  // query timeout) the answer is {count: null, timed_out: true}, still a 200, so a dashboard simply
  // leaves the total out.
  app.get('/monitoring/logs/count', { config: { scope: 'read', docs: { querystring: COUNT_QUERY } } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const filter = readFilter(req, ['alert', 'timeout_ms'], errors);
    readAlert(q, filter, errors);
    const max = opts.events.queryTimeoutMs;
    const timeoutMs = asInt(q.timeout_ms, 'timeout_ms', 100, max, errors) ?? max;
    if (errors.length) throw badRequest(errors);
    const count = await opts.limiter(() => opts.events.count(filter, timeoutMs));
    return count === undefined ? { count: null, timed_out: true, timeout_ms: timeoutMs } : { count, timed_out: false };
  });
}

/** `alert=true|false`: engine-raised alerts only, or none. */
function readAlert(q: Record<string, unknown>, filter: EventFilter, errors: FieldError[]): void {
  const alert = asSingle(q.alert, 'alert', errors);
  if (alert === undefined) return;
  if (alert !== 'true' && alert !== 'false') errors.push({ field: 'alert', message: 'must be true or false' });
  else filter.alert = alert === 'true';
}
