// EventStore: every piece of event SQL the engine runs, over any ClickHouse transport.
import { EVENT_COLUMNS, type EventRow, type FilterField } from '../event.js';
import { EVENT_INDEXES, EVENTS_TABLE } from './schema.js';
import { compactLine } from './compact-row.js';
import { migrateEventStore } from './migrate.js';
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
/** search(): newest first, this much is read before the rest (see there). */
const NEWEST_WINDOW_MS = 86_400_000;
/** The fields a skip index finds anywhere (schema.ts): search() reads all days at once for them. */
const SELECTIVE_FIELDS = EVENT_INDEXES.map(([, column]) => column as FilterField);
/** Rows serialized between two turns of the event loop. */
const SERIALIZE_SLICE = 2000;

/** An event to look for: its project and id, and its times when known (they narrow the search). */
export interface IdProbe {
  project_id: string;
  id: string;
  timestamp?: number;
  received_at?: number;
}

/** Where a page of the stored ids starts: at this (project, timestamp), or after it when strict. */
export interface IdPageKey {
  project_id: string;
  timestamp: number;
  strict?: boolean;
}

/**
 * A page of the stored ids, in (project, timestamp) order: the ids grouped by project (one array per
 * project, so the engine parses a few rows, not one object per id), and the page's first and last key.
 */
export interface IdPage {
  rows: number;
  groups: { project_id: string; ids: string[] }[];
  first?: { project_id: string; timestamp: number };
  last?: { project_id: string; timestamp: number };
}

/** Ids per duplicate-check query: far below where long IN lists stop using the index. */
const ID_CHUNK = 2_000;
/** (project, time range) conditions per duplicate-check query. */
const RANGES_PER_CHUNK = 64;
/** Time ranges of one project closer than this are read as one. */
const RANGE_GAP_MS = 60_000;
/**
 * An event the engine stamped itself (no timestamp sent) gets a new timestamp when resent, so its
 * stored copy is looked for this far back (and forward): a client's retries of one request fall within it.
 */
export const RESEND_WINDOW_MS = 24 * 3_600_000;

export class EventStore {
  constructor(readonly transport: ClickHouseTransport, readonly queryTimeoutMs = 30_000) {}

  /** Creates the tables, or brings a store of an earlier layout up to this one (migrate.ts). */
  async init(): Promise<void> {
    await migrateEventStore(this.transport);
  }

  /** Whether storage answers; `timeoutMs` bounds the query on the storage side too. */
  async ping(timeoutMs?: number): Promise<boolean> {
    const rows = await this.transport.query<{ ok: number }>('SELECT 1 AS ok', {}, timeoutMs ? { timeoutMs } : {});
    return rows.length === 1 && Number(rows[0].ok) === 1;
  }

  /** One storage insert; resolves when the rows are written (durable). */
  async insert(rows: readonly EventRow[]): Promise<void> {
    if (rows.length === 0) return;
    const lines: string[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      // a large block takes ~100 ms to serialize: let requests in between (ingest answers in < 100 ms)
      if (i > 0 && i % SERIALIZE_SLICE === 0) await new Promise((r) => setImmediate(r));
      lines[i] = compactLine(rows[i]);
    }
    await this.insertLines(Buffer.from(lines.join('\n')));
  }

  /** One storage insert of rows already in the insert format (compactLine, one per line). */
  async insertLines(lines: Buffer): Promise<void> {
    if (lines.length === 0) return;
    await this.transport.insertCompact(EVENTS_TABLE, EVENT_COLUMNS, lines);
  }

  /**
   * Which of these events are stored already, as "project\0id" strings. Reads the events table
   * itself, so an event is found exactly when its row is stored, whatever failed around its insert.
   * Asked in chunks of ID_CHUNK ids, each narrowed to the events' projects and times (the primary
   * key): an event with a timestamp of its own is looked for at that timestamp, one the engine
   * stamped within RESEND_WINDOW_MS of it, one without times in its whole project. The chunks
   * share one deadline (`timeoutMs`, default the store's query timeout): past it this throws
   * QueryTimeoutError, and the caller retries the batch — it never guesses.
   */
  async existingIds(probes: readonly IdProbe[], opts: { timeoutMs?: number } = {}): Promise<Set<string>> {
    const found = new Set<string>();
    if (probes.length === 0) return found;
    const deadline = performance.now() + (opts.timeoutMs ?? this.queryTimeoutMs);
    for (const chunk of idCheckChunks(probes)) {
      const left = Math.floor(deadline - performance.now());
      if (left <= 0) throw new QueryTimeoutError(opts.timeoutMs ?? this.queryTimeoutMs);
      const bag = new ParamBag();
      const ranges = chunk.ranges.map((r) => {
        const p = `project_id = ${bag.add(r.project_id, 'String')}`;
        return r.lo === undefined ? p : `(${p} AND timestamp >= ${bag.add(r.lo, 'Int64')} AND timestamp <= ${bag.add(r.hi!, 'Int64')})`;
      });
      // the ids travel as one string parameter (hex, comma-separated): an Array(String) parameter of
      // thousands of ids costs storage ~5× more to parse than the lookup itself
      const ids = bag.add(chunk.ids.map((id) => Buffer.from(id, 'utf8').toString('hex')).join(','), 'String');
      const rows = await this.transport.query<{ project_id: string; id: string }>(
        `SELECT project_id, id FROM ${EVENTS_TABLE} WHERE (${ranges.join(' OR ')}) AND id IN (SELECT unhex(arrayJoin(splitByChar(',', ${ids}))))`,
        bag.params, { timeoutMs: Math.max(left, 1), lane: 'write' },
      );
      for (const r of rows) found.add(`${r.project_id}\u0000${r.id}`);
    }
    return found;
  }

  /** How many events are stored (from the parts' row counts: cheap at any size). */
  async countAll(opts: { timeoutMs?: number } = {}): Promise<number> {
    const rows = await this.query<{ n: number | string }>(`SELECT count() AS n FROM ${EVENTS_TABLE}`, {}, opts);
    return Number(rows[0]?.n ?? 0);
  }

  /** The events table's partitions (days) that hold rows now: a scan of the stored ids goes one by one. */
  async idPartitions(opts: { timeoutMs?: number } = {}): Promise<string[]> {
    const rows = await this.query<{ p: string }>(
      `SELECT DISTINCT partition_id AS p FROM system.parts WHERE database = currentDatabase() AND table = '${EVENTS_TABLE}' AND active ORDER BY p`, {}, opts);
    return rows.map((r) => r.p);
  }

  /**
   * One page of the stored events' (project, timestamp, id) in one partition, in primary-key order
   * from `from` on (inclusive, or after it when `strict`): the loader's id filter is filled from these
   * (src/wal/stored-ids.ts). Within one partition (a few parts) a page is read in key order from its
   * place: a whole scan costs a few reads of the three columns (2M events in 3–8 s on a busy machine,
   * against 30–50 s for pages across all partitions at once).
   */
  async idPage(partition: string, from: IdPageKey | undefined, limit: number, opts: { timeoutMs?: number } = {}): Promise<IdPage> {
    const bag = new ParamBag();
    let where = `_partition_id = ${bag.add(partition, 'String')}`;
    if (from) where += ` AND (project_id, timestamp) ${from.strict ? '>' : '>='} (${bag.add(from.project_id, 'String')}, ${bag.add(from.timestamp, 'Int64')})`;
    // grouped by project: one row per project of the page, its ids in an array (parsing 20,000
    // rows as objects took ~25 ms of the event loop per page, the arrays ~1.5 ms)
    const rows = await this.query<{ project_id: string; ids: string[]; first_ts: number | string; last_ts: number | string; n: number | string }>(
      `SELECT project_id, groupArray(id) AS ids, min(timestamp) AS first_ts, max(timestamp) AS last_ts, count() AS n
       FROM (SELECT project_id, timestamp, id FROM ${EVENTS_TABLE} WHERE ${where} ORDER BY project_id, timestamp LIMIT ${Math.max(1, Math.floor(limit))})
       GROUP BY project_id ORDER BY project_id`,
      bag.params, opts,
    );
    const page: IdPage = { rows: 0, groups: [] };
    for (const r of rows) {
      page.rows += Number(r.n);
      page.groups.push({ project_id: r.project_id, ids: r.ids });
    }
    if (rows.length > 0) {
      page.first = { project_id: rows[0].project_id, timestamp: Number(rows[0].first_ts) };
      page.last = { project_id: rows[rows.length - 1].project_id, timestamp: Number(rows[rows.length - 1].last_ts) };
    }
    return page;
  }

  /**
   * The ids of one (project, timestamp) of a partition, one hash bucket of `buckets` at a time: for a
   * key shared by more events than a page holds (idPage cannot page through it).
   */
  async idGroup(partition: string, key: { project_id: string; timestamp: number }, bucket: number, buckets: number, opts: { timeoutMs?: number } = {}): Promise<string[]> {
    const bag = new ParamBag();
    const rows = await this.query<{ id: string }>(
      `SELECT id FROM ${EVENTS_TABLE} WHERE _partition_id = ${bag.add(partition, 'String')} AND project_id = ${bag.add(key.project_id, 'String')}
       AND timestamp = ${bag.add(key.timestamp, 'Int64')} AND cityHash64(id) % ${bag.add(buckets, 'UInt64')} = ${bag.add(bucket, 'UInt64')}`,
      bag.params, opts,
    );
    return rows.map((r) => r.id);
  }

  /** How many events share this (project, timestamp) in a partition. */
  async idGroupSize(partition: string, key: { project_id: string; timestamp: number }, opts: { timeoutMs?: number } = {}): Promise<number> {
    const bag = new ParamBag();
    const rows = await this.query<{ n: number | string }>(
      `SELECT count() AS n FROM ${EVENTS_TABLE} WHERE _partition_id = ${bag.add(partition, 'String')} AND project_id = ${bag.add(key.project_id, 'String')}
       AND timestamp = ${bag.add(key.timestamp, 'Int64')}`,
      bag.params, opts,
    );
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * Keyset pagination on (timestamp, id): pages never skip or repeat rows, whatever arrives meanwhile.
   * Newest first over more than a day (or with no start), the newest day is read first and the rest
   * only when that day does not fill the page, as Loki's queriers split by time: "the latest logs"
   * then reads one day's parts, not every day's. Not for filters on a field with a skip index (an
   * id, a trace, a session, a user, a fingerprint), which pick a few events from anywhere.
   */
  async search(filter: EventFilter, opts: SearchOptions): Promise<Page> {
    if (opts.order === 'asc' || SELECTIVE_FIELDS.some((k) => filter.eq[k]?.length)) return this.searchOnce(filter, opts);
    const cut = (opts.after?.t ?? filter.to ?? Date.now()) - NEWEST_WINDOW_MS;
    if (filter.from !== undefined && filter.from >= cut) return this.searchOnce(filter, opts);
    const newest = await this.searchOnce({ ...filter, from: cut }, opts);
    if (newest.rows.length >= opts.limit) return newest;
    const rest = await this.searchOnce({ ...filter, to: cut }, { ...opts, limit: opts.limit - newest.rows.length });
    return { rows: newest.rows.concat(rest.rows), next: rest.next };
  }

  private async searchOnce(filter: EventFilter, opts: SearchOptions): Promise<Page> {
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

interface IdChunk {
  ids: string[];
  /** lo/hi undefined: the whole project. */
  ranges: { project_id: string; lo?: number; hi?: number }[];
}

/**
 * Probes → duplicate-check queries: at most ID_CHUNK ids and RANGES_PER_CHUNK (project, time range)
 * conditions each. Sorted by project and time, cut into slices, and within a slice the nearest
 * ranges of a project are merged until few enough remain (a wider range reads more of the primary
 * key, never less than needed).
 */
export function idCheckChunks(probes: readonly IdProbe[]): IdChunk[] {
  const windows = probes.map((p) => {
    if (typeof p.timestamp !== 'number') return { p, lo: -Infinity, hi: Infinity };
    const stamped = p.received_at !== undefined && p.timestamp === p.received_at;
    // the stored copy may also be the later one: a retry another node took and loaded first, while
    // this copy waited in a log (a node killed before it answered, loading it after its restart)
    return { p, lo: stamped ? p.timestamp - RESEND_WINDOW_MS : p.timestamp, hi: stamped ? p.timestamp + RESEND_WINDOW_MS : p.timestamp };
  });
  windows.sort((a, b) => (a.p.project_id < b.p.project_id ? -1 : a.p.project_id > b.p.project_id ? 1 : a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const chunks: IdChunk[] = [];
  for (let start = 0; start < windows.length;) {
    let end = start;
    let projects = 0;
    while (end < windows.length && end - start < ID_CHUNK) {
      if (end === start || windows[end].p.project_id !== windows[end - 1].p.project_id) {
        if (projects === RANGES_PER_CHUNK) break;
        projects++;
      }
      end++;
    }
    chunks.push(chunkOf(windows.slice(start, end)));
    start = end;
  }
  return chunks;
}

type Window = { p: IdProbe; lo: number; hi: number };

function chunkOf(ws: Window[]): IdChunk {
  // sorted by (project, lo): a whole-project window comes first and absorbs the rest of its project
  let ranges: { project_id: string; lo: number; hi: number }[] = [];
  for (const w of ws) {
    const last = ranges[ranges.length - 1];
    if (last && last.project_id === w.p.project_id && w.lo <= last.hi + RANGE_GAP_MS) last.hi = Math.max(last.hi, w.hi);
    else ranges.push({ project_id: w.p.project_id, lo: w.lo, hi: w.hi });
  }
  if (ranges.length > RANGES_PER_CHUNK) {
    const gaps: number[] = [];
    for (let i = 1; i < ranges.length; i++) if (ranges[i].project_id === ranges[i - 1].project_id) gaps.push(ranges[i].lo - ranges[i - 1].hi);
    gaps.sort((a, b) => a - b);
    const limit = gaps[ranges.length - RANGES_PER_CHUNK - 1];
    const merged: typeof ranges = [];
    for (const r of ranges) {
      const last = merged[merged.length - 1];
      if (last && last.project_id === r.project_id && r.lo - last.hi <= limit) last.hi = Math.max(last.hi, r.hi);
      else merged.push({ ...r });
    }
    ranges = merged;
  }
  return {
    ids: [...new Set(ws.map((w) => w.p.id))],
    ranges: ranges.map((r) => (r.lo === -Infinity ? { project_id: r.project_id } : r)),
  };
}
