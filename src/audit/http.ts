// Audit trail and replay routes:
//   GET /monitoring/audit                     timeline (who, what, when, from where, outcome), cursor-paged
//   GET /monitoring/audit/export              the whole matching range as NDJSON or CSV, streamed
//   GET /monitoring/sessions                  sessions with extent, counts, users, flows
//   GET /monitoring/sessions/:id              session replay: ordered steps, timings, first error, what led to it
//   GET /monitoring/sessions/:id/related      other sessions and users hit by the same errors around then
//   GET /monitoring/changes                   deploys and config changes with the error groups that followed
// Every route reads through readFilter/scopeToPrincipal: a key sees its own projects only.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EventRow, FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import type { CursorPosition, EventStore } from '../storage/event-store.js';
import { asInt, asSingle, type EventFilter } from '../query/filters.js';
import { MAX_LIMIT, parseOrder, readFilter } from '../query/http.js';
import { decodeCursor, encodeCursor } from '../query/cursor.js';
import { toTimelineEntry } from './timeline.js';
import { buildReplay } from './replay.js';
import { decodeSessionCursor, encodeSessionCursor, listSessions, relatedTo, sessionRows, MAX_SESSION_EVENTS, type SessionCursor } from './sessions.js';
import { DEFAULT_CORRELATION, listChanges } from './changes.js';
import { EXPORT_FORMATS, exportText, exportWindows, type ExportFormat } from './export.js';
import { asBool, asDuration, asNumber, onlyParams } from './params.js';

export interface AuditRouteOptions {
  events: EventStore;
  /** Bounds concurrent queries (query/limiter.ts). */
  limiter: <T>(fn: () => Promise<T>) => Promise<T>;
  /** An export whose client has not read for this long is closed (default EXPORT_STALL_MS). */
  exportStallMs?: number;
}

/** Exports running at once (each holds a storage stream while its client reads); more get 429. */
export const MAX_CONCURRENT_EXPORTS = 4;
/** How long an export waits for a client that stopped reading. */
export const EXPORT_STALL_MS = 120_000;
const MAX_SESSION_ID = 256;
const DAY = 86_400_000;

function fail(errors: FieldError[]): void {
  if (errors.length) throw badRequest(errors);
}

function sessionIdParam(req: FastifyRequest): string {
  const id = (req.params as { id?: string }).id ?? '';
  if (id.length === 0 || id.length > MAX_SESSION_ID || id.includes('\u0000')) {
    throw badRequest([{ field: 'id', message: `must be a session id of 1..${MAX_SESSION_ID} characters` }]);
  }
  return id;
}

/** The session's rows, all from one project: 404 when none, 409 when the id is used in several of the caller's projects. */
function oneProject(id: string, rows: readonly EventRow[]): void {
  if (rows.length === 0) throw new HttpError(404, 'not_found', `no session ${id} in the projects this key may read`);
  const projects = [...new Set(rows.map((r) => r.project_id))];
  if (projects.length > 1) {
    throw new HttpError(409, 'ambiguous_session', `session ${id} exists in projects ${projects.slice(0, 10).join(', ')}; add project_id`, { projects });
  }
}

function cursorParam(raw: unknown, order: 'asc' | 'desc', errors: FieldError[]): CursorPosition | undefined {
  const c = asSingle(raw, 'cursor', errors);
  if (!c) return undefined;
  const pos = decodeCursor(c, order);
  if (!pos) errors.push({ field: 'cursor', message: 'is not a cursor this API gave out for this order' });
  return pos;
}

function attachmentName(filter: EventFilter, ext: string): string {
  const scope = filter.eq.project_id?.length === 1 ? filter.eq.project_id[0].replace(/[^A-Za-z0-9_.-]/g, '_') : 'all';
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `audit-${scope}-${stamp}.${ext}`;
}

export async function auditRoutes(app: FastifyInstance, opts: AuditRouteOptions): Promise<void> {
  const { events, limiter } = opts;
  const stallMs = opts.exportStallMs ?? EXPORT_STALL_MS;

  app.get('/monitoring/audit', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const filter = readFilter(req, ['limit', 'cursor', 'order'], errors);
    const order = q.order === undefined ? 'asc' : parseOrder(q.order, errors);
    const limit = asInt(q.limit, 'limit', 1, MAX_LIMIT, errors) ?? 100;
    const after = cursorParam(q.cursor, order, errors);
    fail(errors);
    const page = await limiter(() => events.search(filter, { order, limit, after }));
    return {
      timeline: page.rows.map(toTimelineEntry),
      next_cursor: page.next ? encodeCursor(page.next, order) : null,
    };
  });

  let exporting = 0;
  app.get('/monitoring/audit/export', { config: { scope: 'read' } }, async (req, reply) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const filter = readFilter(req, ['format'], errors);
    const format = (asSingle(q.format, 'format', errors) ?? 'ndjson') as ExportFormat;
    if (!EXPORT_FORMATS.includes(format)) errors.push({ field: 'format', message: `must be one of ${EXPORT_FORMATS.join(', ')}` });
    fail(errors);
    if (exporting >= MAX_CONCURRENT_EXPORTS) {
      throw new HttpError(429, 'too_many_exports', `${MAX_CONCURRENT_EXPORTS} exports are running; retry when one has finished`, undefined, { 'Retry-After': '10' });
    }
    exporting++;
    let released = false;
    const abort = new AbortController();
    const socket = reply.raw.socket;
    let stallTimer: NodeJS.Timeout | undefined;
    let progressAt = Date.now();
    const onDrain = () => {
      progressAt = Date.now();
    };
    // the reply's end, however it comes (done, client gone, stalled, failed): free the slot
    reply.raw.once('close', () => {
      if (stallTimer) clearInterval(stallTimer);
      socket?.off('drain', onDrain);
      abort.abort();
      if (!released) {
        released = true;
        exporting--;
      }
    });
    // planned before the reply starts, so a storage failure here is still a proper error
    const plan = await limiter(() => exportWindows(events, filter));
    const body = Readable.from(exportText(events, filter, format, plan.windows, { signal: abort.signal }), { objectMode: false });
    body.once('error', (err) => req.log.warn({ err }, 'audit export ended early'));
    if (socket && !abort.signal.aborted) {
      // A client that keeps the connection open but stops reading would keep its export (and the
      // rows waiting for it) forever: with output pending and no progress for stallMs, close it.
      socket.on('drain', onDrain);
      stallTimer = setInterval(() => {
        if (socket.destroyed) return;
        if (socket.writableLength === 0) progressAt = Date.now();
        else if (Date.now() - progressAt > stallMs) {
          req.log.warn({ stallMs }, 'audit export: the client stopped reading; closing the connection');
          abort.abort();
          body.destroy();
          socket.destroy();
        }
      }, Math.min(15_000, Math.max(50, stallMs / 4)));
      stallTimer.unref();
    }
    reply
      .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
      .header('content-disposition', `attachment; filename="${attachmentName(filter, format)}"`)
      .header('cache-control', 'no-store')
      .header('x-export-rows', String(plan.rows));
    return reply.send(body);
  });

  app.get('/monitoring/sessions', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    onlyParams(q, ['project_id', 'user_id', 'flow_id', 'from', 'to', 'has_error', 'limit', 'cursor'], errors);
    fail(errors);
    const filter = readFilter(req, ['has_error', 'limit', 'cursor'], errors);
    const hasError = asBool(q.has_error, 'has_error', errors);
    const limit = asInt(q.limit, 'limit', 1, MAX_LIMIT, errors) ?? 100;
    const rawCursor = asSingle(q.cursor, 'cursor', errors);
    let after: SessionCursor | undefined;
    if (rawCursor) {
      after = decodeSessionCursor(rawCursor);
      if (!after) errors.push({ field: 'cursor', message: 'is not a cursor this API gave out' });
    }
    fail(errors);
    const page = await limiter(() => listSessions(events, filter, { hasError, limit, after }));
    return { sessions: page.sessions, next_cursor: page.next ? encodeSessionCursor(page.next) : null };
  });

  app.get('/monitoring/sessions/:id', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const id = sessionIdParam(req);
    onlyParams(q, ['project_id', 'lead', 'limit'], errors);
    fail(errors);
    const filter = readFilter(req, ['lead', 'limit'], errors);
    const lead = asInt(q.lead, 'lead', 0, 1000, errors) ?? 10;
    const limit = asInt(q.limit, 'limit', 1, MAX_SESSION_EVENTS, errors) ?? MAX_SESSION_EVENTS;
    fail(errors);
    const { rows, truncated } = await limiter(() => sessionRows(events, id, filter, limit));
    oneProject(id, rows);
    return { ...buildReplay(id, rows, { lead }), truncated };
  });

  app.get('/monitoring/sessions/:id/related', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const id = sessionIdParam(req);
    onlyParams(q, ['project_id', 'window', 'limit'], errors);
    fail(errors);
    const filter = readFilter(req, ['window', 'limit'], errors);
    const windowMs = asDuration(q.window, 'window', 1000, 30 * DAY, errors) ?? 3_600_000;
    const limit = asInt(q.limit, 'limit', 1, MAX_LIMIT, errors) ?? 100;
    fail(errors);
    return limiter(async () => {
      const { rows } = await sessionRows(events, id, filter);
      oneProject(id, rows);
      return relatedTo(events, id, rows, { windowMs, limit });
    });
  });

  app.get('/monitoring/changes', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    onlyParams(q, ['project_id', 'flow_id', 'engine', 'from', 'to', 'window', 'factor', 'min_events', 'limit', 'cursor'], errors);
    fail(errors);
    const filter = readFilter(req, ['window', 'factor', 'min_events', 'limit', 'cursor'], errors);
    const windowMs = asDuration(q.window, 'window', 1000, 30 * DAY, errors) ?? DEFAULT_CORRELATION.windowMs;
    const factor = asNumber(q.factor, 'factor', 1, 1_000_000, errors) ?? DEFAULT_CORRELATION.factor;
    const minEvents = asInt(q.min_events, 'min_events', 1, 1_000_000, errors) ?? DEFAULT_CORRELATION.minEvents;
    const limit = asInt(q.limit, 'limit', 1, 500, errors) ?? 50;
    const after = cursorParam(q.cursor, 'desc', errors);
    fail(errors);
    const page = await limiter(() => listChanges(events, filter, { limit, after }, { windowMs, factor, minEvents }));
    return {
      changes: page.changes,
      window_ms: windowMs,
      factor,
      min_events: minEvents,
      next_cursor: page.next ? encodeCursor(page.next, 'desc') : null,
    };
  });
}
