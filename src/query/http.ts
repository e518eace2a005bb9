// Query & Search API: GET /monitoring/logs with every filter, keyset cursors, text search.
import type {} from '../auth/http.js'; // request.principal (the tenant guard's augmentation)
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { toStoredEvent, type FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import { visibleProjects } from '../auth/principal.js';
import type { CursorPosition, EventStore } from '../storage/event-store.js';
import { asInt, asSingle, parseFilter, type EventFilter } from './filters.js';
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

export async function queryRoutes(app: FastifyInstance, opts: QueryRouteOptions): Promise<void> {
  app.get('/monitoring/logs', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const filter = readFilter(req, ['limit', 'cursor', 'order', 'alert'], errors);
    const order = parseOrder(q.order, errors);
    const limit = asInt(q.limit, 'limit', 1, MAX_LIMIT, errors) ?? 100;
    const alert = asSingle(q.alert, 'alert', errors);
    if (alert !== undefined) {
      if (alert !== 'true' && alert !== 'false') errors.push({ field: 'alert', message: 'must be true or false' });
      else filter.alert = alert === 'true';
    }
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
}
