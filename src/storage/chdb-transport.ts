// The embedded transport: ClickHouse in-process through chDB. Queries and inserts run on libuv
// threads (queryBindAsync / insert), so the event loop stays free while the engine works.
// Several sessions on the one data directory: a chDB session runs one statement at a time, so with
// one session a loader's insert waited for whatever query ran (a 7 s query held a 20 ms insert for
// 7 s); sessions on the same directory run side by side (bench/README.md, "Reads against the
// loader"). Reads get sessions of their own (readSessions()), so the parts of one answer (the error
// listing's groups, totals and trends) and concurrent dashboards' queries do not queue behind each
// other.
// Parameters are bound here as literals (sql-params.ts), not by chDB: chDB runs every bound query
// of the process one at a time, across all sessions (its parameter state is not per connection),
// so with its binding a search waited for every other search and for the loader's id checks.
import { mkdirSync } from 'node:fs';
import { Session } from 'chdb';
import { ALL_FEATURES } from './schema.js';
import { bindLiterals } from './sql-params.js';
import { mapLines } from './compact-row.js';
import { QueryTimeoutError, withDeadline, type ClickHouseTransport, type Params, type QueryOptions } from './transport.js';

/** close(): longest it waits for running statements before it closes the sessions anyway. */
const CLOSE_WAIT_MS = 2_000;
/** A statement may be this long (bound id lists are long; ClickHouse's default is 256 KiB). */
const MAX_QUERY_BYTES = 64 << 20;

/**
 * Sessions for searches, listings and dashboards. A running statement holds a libuv thread, as do
 * the log's fsyncs, gzip bodies and DNS lookups: the write session and the reads leave one thread
 * of the pool (UV_THREADPOOL_SIZE, 4 by default) to those.
 */
export function readSessions(poolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4): number {
  return Math.max(1, Math.min(4, poolSize - 2));
}

export class ChdbTransport implements ClickHouseTransport {
  readonly name = 'chdb';
  readonly features = ALL_FEATURES;
  /** Searches, listings, dashboards: a query goes to the session with the fewest running. */
  private readonly reads: { session: Session; running: number }[] = [];
  /** Inserts, DDL and the write path's own queries. */
  private readonly writes: Session;
  /** Statements chDB is still running, including those whose caller stopped waiting (a deadline). */
  private readonly running = new Set<Promise<unknown>>();

  /** `deadlineMs`: longest an insert or an unbounded query may take before its caller hears 503. */
  constructor(dir: string, private readonly deadlineMs = 0) {
    mkdirSync(dir, { recursive: true });
    this.writes = openSession(dir);
    for (let i = readSessions(); i > 0; i--) this.reads.push({ session: openSession(dir), running: 0 });
    abortAtOnce();
  }

  async exec(sql: string): Promise<void> {
    // DDL runs at start and in migrations, where a statement may rightly take minutes: no deadline
    await this.track(this.writes.queryAsync(sql));
  }

  async query<T>(sql: string, params: Params = {}, opts: QueryOptions = {}): Promise<T[]> {
    // fractional seconds: chDB honours a 0.2 s limit, so MONITORING_QUERY_TIMEOUT_MS means what it says
    const bound = bindLiterals(sql, params);
    const text = opts.timeoutMs ? `${bound} SETTINGS max_execution_time = ${(opts.timeoutMs / 1000).toFixed(3)}` : bound;
    try {
      // a query with a time limit has it enforced by chDB (and by the query limiter's watchdog)
      const run = opts.lane === 'write' ? this.track(this.writes.queryAsync(text, { format: 'JSONEachRow' })) : this.read(text);
      const res = await (opts.timeoutMs ? run : withDeadline(run, this.deadlineMs, 'a query'));
      return parseJsonEachRow<T>(res.text());
    } catch (e) {
      if (opts.timeoutMs && isTimeout(e)) throw new QueryTimeoutError(opts.timeoutMs);
      throw e;
    }
  }

  private read(text: string): ReturnType<Session['queryAsync']> {
    let least = this.reads[0];
    for (const r of this.reads) if (r.running < least.running) least = r;
    least.running++;
    return this.track(least.session.queryAsync(text, { format: 'JSONEachRow' }), () => void least.running--);
  }

  /** Counts a statement as running until chDB is done with it, even when its caller stopped waiting (a deadline). */
  private track<T>(run: Promise<T>, after?: () => void): Promise<T> {
    this.running.add(run);
    const done = (): void => {
      this.running.delete(run);
      after?.();
    };
    run.then(done, done);
    return run;
  }

  async insertCompact(table: string, columns: readonly string[], payload: Buffer): Promise<void> {
    await withDeadline(this.track(this.writes.insert({ table, values: payload, format: 'JSONCompactEachRow', columns })), this.deadlineMs, 'an insert');
  }

  /**
   * Waits (at most CLOSE_WAIT_MS) for the statements still running: chDB keeps a session's engine,
   * and its background merges, alive until they end, so the data directory would still be written
   * to after close() returned.
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    for (const r of this.reads) r.session.close();
    this.writes.close();
  }
}

let abortHandled = false;

/**
 * chDB brings ClickHouse's fatal-signal handlers, and on SIGABRT (V8 out of memory, a failed
 * assertion) its handler waits for a crash-log thread chDB does not run: up to 5 minutes of a
 * process that answers nothing and does not exit, so no supervisor restarts it. A listener of our
 * own replaces that handler (the last sigaction wins); it returns, and abort() then ends the process
 * at once (checked in chdb-transport.test.ts).
 */
function abortAtOnce(): void {
  if (abortHandled) return;
  abortHandled = true;
  process.on('SIGABRT', () => undefined);
}

function openSession(dir: string): Session {
  const s = new Session(dir);
  s.query(`SET max_query_size = ${MAX_QUERY_BYTES}`);
  return s;
}

function isTimeout(e: unknown): boolean {
  const err = e as { clickhouseCode?: number; message?: string };
  return err.clickhouseCode === 159 || /TIMEOUT_EXCEEDED/.test(String(err.message));
}

export function parseJsonEachRow<T>(text: string): T[] {
  return mapLines(text, (t, start, end) => JSON.parse(t.slice(start, end)) as T);
}
