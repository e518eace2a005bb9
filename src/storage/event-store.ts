// EventStore: every piece of event SQL the engine runs, over any ClickHouse transport.
import { EVENT_COLUMNS, type EventRow } from '../event.js';
import { EVENTS_TABLE, KEYS_TABLE, schemaStatements } from './schema.js';
import { QueryTimeoutError, type ClickHouseTransport, type Params, type QueryOptions } from './transport.js';
import { ParamBag, whereClause, type EventFilter } from '../query/filters.js';

export interface Page {
  rows: EventRow[];
  /** Position after the last row, when there may be more. */
  next?: CursorPosition;
}

export interface CursorPosition {
  t: number;
  i: string;
}

export interface SearchOptions {
  order: 'asc' | 'desc';
  limit: number;
  after?: CursorPosition;
}

const SELECT_COLUMNS = EVENT_COLUMNS.join(', ');

export class EventStore {
  constructor(readonly transport: ClickHouseTransport, readonly queryTimeoutMs = 30_000) {}

  async init(): Promise<void> {
    for (const stmt of schemaStatements()) await this.transport.exec(stmt);
  }

  async ping(): Promise<boolean> {
    const rows = await this.transport.query<{ ok: number }>('SELECT 1 AS ok');
    return rows.length === 1 && Number(rows[0].ok) === 1;
  }

  /** One storage insert; resolves when the rows are written (durable). */
  async insert(rows: readonly EventRow[]): Promise<void> {
    if (rows.length === 0) return;
    const lines: string[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      lines[i] = JSON.stringify([
        r.id, r.timestamp, r.received_at, r.project_id, r.event_type, r.engine, r.triggered_by,
        r.flow_id, r.session_id, r.user_id, r.trace_id, r.span_id, r.platform, r.action, r.status,
        r.severity, r.error_type, r.message, r.stack, r.duration_ms, r.retries, r.fingerprint, r.alert, r.sampled,
        r.attr_keys, r.attr_values,
      ]);
    }
    await this.transport.insertCompact(EVENTS_TABLE, EVENT_COLUMNS, Buffer.from(lines.join('\n')));
  }

  /** Which of these (project_id, id) pairs are stored already, as "project\0id" strings. */
  async existingIds(pairs: readonly { project_id: string; id: string }[]): Promise<Set<string>> {
    if (pairs.length === 0) return new Set();
    const projects = [...new Set(pairs.map((p) => p.project_id))];
    const ids = [...new Set(pairs.map((p) => p.id))];
    const rows = await this.transport.query<{ project_id: string; value: string }>(
      `SELECT DISTINCT project_id, value FROM ${KEYS_TABLE}
       WHERE kind = 'id' AND project_id IN {projects:Array(String)} AND value IN {ids:Array(String)}`,
      { projects, ids },
    );
    return new Set(rows.map((r) => `${r.project_id}\u0000${r.value}`));
  }

  /** Keyset pagination on (timestamp, id): pages never skip or repeat rows, whatever arrives meanwhile. */
  async search(filter: EventFilter, opts: SearchOptions): Promise<Page> {
    const bag = new ParamBag();
    let where = whereClause(filter, bag);
    const dir = opts.order === 'asc' ? 'ASC' : 'DESC';
    if (opts.after) {
      const t = bag.add(opts.after.t, 'Int64');
      const i = bag.add(opts.after.i, 'String');
      const cmp = opts.order === 'asc' ? '>' : '<';
      where += ` AND (timestamp ${cmp} ${t} OR (timestamp = ${t} AND id ${cmp} ${i}))`;
    }
    const rows = await this.query<EventRow>(
      `SELECT ${SELECT_COLUMNS} FROM ${EVENTS_TABLE} WHERE ${where}
       ORDER BY timestamp ${dir}, id ${dir} LIMIT ${opts.limit + 1}`,
      bag.params,
    );
    let next: CursorPosition | undefined;
    if (rows.length > opts.limit) {
      rows.length = opts.limit;
      const last = rows[rows.length - 1];
      next = { t: Number(last.timestamp), i: last.id };
    }
    return { rows, next };
  }

  /**
   * How many events match; undefined when counting takes longer than timeoutMs (at most the query
   * timeout), so a caller can show the total only when it is cheap.
   */
  async count(filter: EventFilter, timeoutMs = this.queryTimeoutMs): Promise<number | undefined> {
    const bag = new ParamBag();
    try {
      const rows = await this.query<{ n: number | string }>(
        `SELECT count() AS n FROM ${EVENTS_TABLE} WHERE ${whereClause(filter, bag)}`, bag.params,
        { timeoutMs: Math.min(timeoutMs, this.queryTimeoutMs) },
      );
      return Number(rows[0]?.n ?? 0);
    } catch (e) {
      if (e instanceof QueryTimeoutError) return undefined;
      throw e;
    }
  }

  /** Events received at or after `since` (ms), oldest first, at most `limit`: the live tail's view of
   *  what other engine nodes stored (query/remote-tail.ts). */
  async receivedSince(since: number, limit: number): Promise<EventRow[]> {
    return this.query<EventRow>(
      `SELECT ${SELECT_COLUMNS} FROM ${EVENTS_TABLE} WHERE received_at >= {since:Int64}
       ORDER BY received_at LIMIT ${Math.max(1, Math.floor(limit))}`,
      { since },
    );
  }

  /** For the analysis stages (aggregator, performance, audit): their SQL, the shared timeout. */
  query<T = Record<string, unknown>>(sql: string, params: Params = {}, opts: QueryOptions = {}): Promise<T[]> {
    return this.transport.query<T>(sql, params, { timeoutMs: opts.timeoutMs ?? this.queryTimeoutMs });
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
