// The embedded transport: ClickHouse in-process through chDB. Queries and inserts run on libuv
// threads (queryBindAsync / insert), so the event loop stays free while the engine works.
// Two sessions on the one data directory: a chDB session runs one statement at a time, so with one
// session a loader's insert waited for whatever query ran (a 7 s query held a 20 ms insert for 7 s);
// sessions on the same directory run side by side (bench/README.md, "Reads against the loader").
import { mkdirSync } from 'node:fs';
import { Session } from 'chdb';
import { ALL_FEATURES } from './schema.js';
import { QueryTimeoutError, withDeadline, type ClickHouseTransport, type Params, type QueryOptions } from './transport.js';

export class ChdbTransport implements ClickHouseTransport {
  readonly name = 'chdb';
  readonly features = ALL_FEATURES;
  /** Searches, listings, dashboards. */
  private readonly reads: Session;
  /** Inserts, DDL and the write path's own queries. */
  private readonly writes: Session;

  /** `deadlineMs`: longest an insert or an unbounded query may take before its caller hears 503. */
  constructor(dir: string, private readonly deadlineMs = 0) {
    mkdirSync(dir, { recursive: true });
    this.writes = new Session(dir);
    this.reads = new Session(dir);
  }

  async exec(sql: string): Promise<void> {
    // DDL runs at start and in migrations, where a statement may rightly take minutes: no deadline
    await this.writes.queryAsync(sql);
  }

  async query<T>(sql: string, params: Params = {}, opts: QueryOptions = {}): Promise<T[]> {
    // fractional seconds: chDB honours a 0.2 s limit, so MONITORING_QUERY_TIMEOUT_MS means what it says
    const text = opts.timeoutMs ? `${sql} SETTINGS max_execution_time = ${(opts.timeoutMs / 1000).toFixed(3)}` : sql;
    try {
      // a query with a time limit has it enforced by chDB (and by the query limiter's watchdog)
      const session = opts.lane === 'write' ? this.writes : this.reads;
      const run = session.queryBindAsync(text, params, { format: 'JSONEachRow' });
      const res = await (opts.timeoutMs ? run : withDeadline(run, this.deadlineMs, 'a query'));
      return parseJsonEachRow<T>(res.text());
    } catch (e) {
      if (opts.timeoutMs && isTimeout(e)) throw new QueryTimeoutError(opts.timeoutMs);
      throw e;
    }
  }

  async insertCompact(table: string, columns: readonly string[], payload: Buffer): Promise<void> {
    await withDeadline(this.writes.insert({ table, values: payload, format: 'JSONCompactEachRow', columns }), this.deadlineMs, 'an insert');
  }

  async close(): Promise<void> {
    this.reads.close();
    this.writes.close();
  }
}

function isTimeout(e: unknown): boolean {
  const err = e as { clickhouseCode?: number; message?: string };
  return err.clickhouseCode === 159 || /TIMEOUT_EXCEEDED/.test(String(err.message));
}

export function parseJsonEachRow<T>(text: string): T[] {
  const out: T[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (end > start) out.push(JSON.parse(text.slice(start, end)) as T);
    start = end + 1;
  }
  return out;
}
