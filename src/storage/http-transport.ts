// The scale-out transport: the same event SQL on a ClickHouse server (or cluster) over its HTTP
// interface, with node:http and an agent of its own, so every setting sent is one we chose (the
// official client sends settings old servers reject) and close() really closes the connections.
// Debian's clickhouse-server 18.16, which CI runs, knows no query parameters and no
// JSONCompactEachRow input; both are detected at connect time:
//  - parameters: sent natively as `param_<name>` when the server takes them, else bound client-side
//    into escaped literals by bindLiterals() (also used when native ones would not fit in a URL);
//  - inserts: JSONCompactEachRow as given when the server reads it, else converted to JSONEachRow.
// Numbers come back as JSON numbers (output_format_json_quote_64bit_integers=0), as chDB gives them.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { schemaStatements, serverFeatures, EVENTS_TABLE, type StorageFeatures } from './schema.js';
import { QueryTimeoutError, StorageTimeoutError, type ClickHouseTransport, type Params, type QueryOptions } from './transport.js';
import { bindLiterals, encodeNativeParams } from './sql-params.js';
import { mapLines } from './compact-row.js';

export interface HttpTransportOptions {
  /** e.g. http://127.0.0.1:8123 (credentials in the URL are taken as user/password). */
  url: string;
  user?: string;
  password?: string;
  /** Created when missing; the server's default database when unset. */
  database?: string;
  /** Set when the tables are local tables on every shard with Distributed tables over them: exec()
   *  shards each CREATE (see shardStatement). */
  cluster?: string;
  /** false: cluster DDL without ON CLUSTER, for servers without distributed DDL (run it on each). */
  onCluster?: boolean;
  /** auto (default): native parameters when the server supports them. */
  params?: 'auto' | 'native' | 'literal';
  /** Longest connect, DDL, an insert or an unbounded query may take (queries with a timeout have
   *  their own). Default 10 s: a frozen server must not hold requests much longer. */
  requestTimeoutMs?: number;
  /** Connections kept to the server at most. Default 32. */
  maxSockets?: number;
}

/** An error the server reported; the message is the server's, without its stack trace. */
export class ClickHouseServerError extends Error {
  constructor(message: string, readonly clickhouseCode: number | undefined, readonly httpStatus: number) {
    super(message);
    this.name = 'ClickHouseServerError';
  }
}

const TIMEOUT_EXCEEDED = 159;
/**
 * Every node writes to and reads from the first live replica of each shard (in remote_servers
 * order), not a random one: replication is asynchronous, so a node reading another replica than the
 * one just written could miss an event another node stored a moment ago — and store it again when
 * the same id is retried there. Only while that first replica is down do reads and writes move on.
 * A server still prefers itself for its own shard (prefer_localhost_replica, which 18.16 needs for
 * IN-subqueries on local tables), so point the nodes at first replicas (scripts/cluster.sh does).
 */
const REPLICA_ORDER = { load_balancing: 'in_order' } as const;
/** Longest one DDL / migration statement may take (inserts and queries have the shorter deadline). */
const DDL_TIMEOUT_MS = 600_000;
/** Above this many characters of encoded native parameters, bind literals into the body instead. */
const MAX_URL_PARAMS_CHARS = 32 * 1024;
/** ClickHouse's default max_query_size; longer statements raise it for themselves. */
const DEFAULT_MAX_QUERY_SIZE = 262_144;

interface RequestOptions {
  params?: Params;
  settings?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** false: without the configured database (it may not exist yet). */
  database?: boolean;
}

export class HttpTransport implements ClickHouseTransport {
  readonly name = 'clickhouse-http';
  private readonly base: URL;
  private readonly auth: string;
  private readonly database: string | undefined;
  private readonly timeoutMs: number;
  private readonly agent: http.Agent;
  private readonly lib: typeof http | typeof https;
  /** Filled by connect(). */
  version = '';
  nativeParams = false;
  compactInput = false;
  /** On a cluster whose shards have several replicas: the local tables are Replicated*MergeTree. */
  replicated = false;
  private closed = false;

  private constructor(private readonly opts: HttpTransportOptions) {
    const u = new URL(opts.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`ClickHouse URL must be http(s): ${u.protocol}`);
    const user = opts.user || decodeURIComponent(u.username) || 'default';
    const password = opts.password ?? decodeURIComponent(u.password);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    this.base = u;
    this.auth = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
    this.database = opts.database || undefined;
    if (this.database !== undefined) checkIdentifier(this.database, 'database');
    if (opts.cluster) checkIdentifier(opts.cluster, 'cluster');
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.lib = u.protocol === 'https:' ? https : http;
    this.agent = new this.lib.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 32 });
  }

  /** Connects, reads the server's version and what it supports, creates the database if missing. */
  static async connect(opts: HttpTransportOptions): Promise<HttpTransport> {
    const t = new HttpTransport(opts);
    try {
      const [v] = await t.raw<{ v: string }>('SELECT version() AS v', { database: false, timeoutMs: t.timeoutMs });
      t.version = v.v;
      const mode = opts.params ?? 'auto';
      t.nativeParams = mode === 'native' || (mode === 'auto' && (await t.probeNativeParams()));
      const formats = await t.raw<{ n: number }>(
        "SELECT count() AS n FROM system.formats WHERE name = 'JSONCompactEachRow' AND is_input = 1", { database: false, timeoutMs: t.timeoutMs });
      t.compactInput = Number(formats[0]?.n) > 0;
      if (t.cluster) {
        // a cluster with several replicas per shard keeps them in step through Replicated tables
        const shape = await t.raw<{ n: number; r: number }>(
          `SELECT count() AS n, max(replica_num) AS r FROM system.clusters WHERE cluster = '${t.cluster}'`, { database: false, timeoutMs: t.timeoutMs });
        if (!Number(shape[0]?.n)) throw new Error(`the ClickHouse server knows no cluster ${t.cluster} (remote_servers)`);
        t.replicated = Number(shape[0].r) > 1;
      }
      if (t.database) {
        const on = t.cluster && opts.onCluster !== false ? ` ON CLUSTER ${t.cluster}` : '';
        await t.exec(`CREATE DATABASE IF NOT EXISTS ${t.database}${on}`, { database: false });
      }
      return t;
    } catch (e) {
      await t.close();
      throw e;
    }
  }

  get cluster(): string | undefined {
    return this.opts.cluster || undefined;
  }

  get features(): StorageFeatures {
    return serverFeatures(this.version);
  }

  private async probeNativeParams(): Promise<boolean> {
    try {
      const rows = await this.raw<{ x: number }>('SELECT {probe:UInt8} AS x', { database: false, timeoutMs: this.timeoutMs, settings: { param_probe: '7' }, native: true });
      return Number(rows[0]?.x) === 7;
    } catch (e) {
      if (e instanceof ClickHouseServerError) return false; // "Unknown setting param_probe", or a syntax error
      throw e;
    }
  }

  /** DDL. On a cluster, CREATE TABLE / MATERIALIZED VIEW become shard-local tables with Distributed ones over them. */
  async exec(sql: string, o: { database?: boolean } = {}): Promise<void> {
    const stmts = this.cluster && o.database !== false
      ? shardStatement(sql, this.cluster, this.database ?? (await this.currentDatabase()), { onCluster: this.opts.onCluster, replicated: this.replicated })
      : [sql];
    // servers before 19.x take LowCardinality columns only with this (newer ones ignore it)
    const settings: Record<string, string> = Number(this.version.split('.')[0]) < 19 ? { allow_experimental_low_cardinality_type: '1' } : {};
    for (const s of stmts) {
      // DDL runs at start and in migrations, where a statement may rightly take minutes
      const res = await this.request(s, { database: o.database, timeoutMs: Math.max(this.timeoutMs, DDL_TIMEOUT_MS), settings });
      await readAll(res.body);
      res.done();
    }
  }

  private dbName?: string;
  private async currentDatabase(): Promise<string> {
    this.dbName ??= (await this.raw<{ d: string }>('SELECT currentDatabase() AS d', { timeoutMs: this.timeoutMs }))[0].d;
    return this.dbName;
  }

  async query<T = Record<string, unknown>>(sql: string, params: Params = {}, opts: QueryOptions = {}): Promise<T[]> {
    if (opts.timeoutMs) return this.raw<T>(sql, { params, timeoutMs: opts.timeoutMs });
    // every storage call has a deadline: one without a query timeout gets the transport's
    return this.raw<T>(sql, { params, timeoutMs: this.timeoutMs }).catch((e) => {
      throw e instanceof QueryTimeoutError ? new StorageTimeoutError('a query', this.timeoutMs) : e;
    });
  }

  async insertCompact(table: string, columns: readonly string[], payload: Buffer): Promise<void> {
    checkIdentifier(table, 'table');
    for (const c of columns) checkIdentifier(c, 'column');
    const format = this.compactInput ? 'JSONCompactEachRow' : 'JSONEachRow';
    const body = this.compactInput ? payload : compactToEachRow(columns, payload);
    const settings: Record<string, string> = { query: `INSERT INTO ${table} (${columns.join(', ')}) FORMAT ${format}` };
    // a Distributed table acknowledges only once every shard has the rows (acknowledged = durable)
    if (this.cluster) Object.assign(settings, { insert_distributed_sync: '1', ...REPLICA_ORDER });
    try {
      const res = await this.request(body, { settings, timeoutMs: this.timeoutMs });
      await readAll(res.body);
      res.done();
    } catch (e) {
      throw e instanceof QueryTimeoutError ? new StorageTimeoutError('an insert', this.timeoutMs) : e;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.agent.destroy();
  }

  // ---- HTTP ------------------------------------------------------------------------------------

  private readSettings(): Record<string, string> {
    const s: Record<string, string> = { output_format_json_quote_64bit_integers: '0' };
    // event_keys rows live on the shard of their event, so IN-subqueries may read the local table
    if (this.cluster) Object.assign(s, { distributed_product_mode: 'local', ...REPLICA_ORDER });
    return s;
  }

  private async raw<T>(sql: string, o: RequestOptions & { native?: boolean } = {}): Promise<T[]> {
    const settings = { ...this.readSettings(), wait_end_of_query: '1', ...(o.settings ?? {}) };
    const res = await this.request(`${sql}\nFORMAT JSONEachRow`, { ...o, settings }, o.native);
    try {
      return parseRows<T>(await readAll(res.body));
    } catch (e) {
      throw res.error(e);
    } finally {
      res.done();
    }
  }

  /**
   * One POST. `body` is the SQL (parameters bound natively or as literals) or, for inserts, the
   * data with the statement in `settings.query`. Resolves with a 200 response whose body is still
   * to be read (then call done()); any other answer throws the server's error.
   */
  private async request(body: string | Buffer, o: RequestOptions, rawSql = false): Promise<Response> {
    if (this.closed) throw new Error('the ClickHouse transport is closed');
    const url = new URL(this.base);
    const queryId = randomUUID();
    url.searchParams.set('query_id', queryId);
    if (this.database && o.database !== false) url.searchParams.set('database', this.database);
    for (const [k, v] of Object.entries(o.settings ?? {})) url.searchParams.set(k, v);
    let text = body;
    if (typeof body === 'string' && o.params && !rawSql) {
      const native = this.nativeParams ? encodeNativeParams(body, o.params) : undefined;
      if (native && native.size <= MAX_URL_PARAMS_CHARS) {
        for (const [k, v] of native.entries) url.searchParams.set(`param_${k}`, v);
      } else {
        text = bindLiterals(body, o.params);
      }
    }
    const data = typeof text === 'string' ? Buffer.from(text) : text;
    if (typeof text === 'string' && data.length > DEFAULT_MAX_QUERY_SIZE - 1024) {
      url.searchParams.set('max_query_size', String(data.length + 4096));
    }
    if (o.timeoutMs) url.searchParams.set('max_execution_time', String(Math.max(1, Math.ceil(o.timeoutMs / 1000))));

    const ctl = new AbortController();
    let timedOut = false;
    const timer = o.timeoutMs
      ? setTimeout(() => {
        // the server stops the query itself (whole seconds on old servers); this bounds the wait
        timedOut = true;
        ctl.abort();
      }, o.timeoutMs)
      : undefined;
    const onAbort = () => ctl.abort();
    if (o.signal?.aborted) ctl.abort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    };
    const error = (e: unknown): unknown => (timedOut && o.timeoutMs ? new QueryTimeoutError(o.timeoutMs) : e);
    ctl.signal.addEventListener('abort', () => {
      if (!finished) this.kill(queryId);
    }, { once: true });

    try {
      let res: http.IncomingMessage;
      try {
        res = await this.post(url, data, ctl.signal);
      } catch (e) {
        // a kept-alive connection the server had just closed: the request never reached it
        if (!ctl.signal.aborted && (e as { reusedSocket?: boolean }).reusedSocket) res = await this.post(url, data, ctl.signal);
        else throw e;
      }
      if (res.statusCode !== 200) {
        const msg = await readAll(res);
        const err = serverError(msg, res.statusCode ?? 0, res.headers['x-clickhouse-exception-code'] as string | undefined);
        if (o.timeoutMs && err.clickhouseCode === TIMEOUT_EXCEEDED) throw new QueryTimeoutError(o.timeoutMs);
        throw err;
      }
      return { body: res, done, error };
    } catch (e) {
      done();
      if (e instanceof ClickHouseServerError || e instanceof QueryTimeoutError) throw e;
      if (timedOut) throw error(e);
      if (ctl.signal.aborted) throw e;
      throw new Error(`ClickHouse at ${this.base.host} did not answer: ${(e as { code?: string }).code ?? (e as Error).message}`);
    }
  }

  private post(url: URL, data: Buffer, signal: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.lib.request(url, {
        method: 'POST',
        agent: this.agent,
        signal,
        headers: { authorization: this.auth, 'content-type': 'text/plain; charset=utf-8', 'content-length': data.length },
      }, resolve);
      req.on('error', (e) => reject(Object.assign(e, { reusedSocket: req.reusedSocket && !signal.aborted && isReset(e) })));
      req.end(data);
    });
  }

  /** Best effort: stops a query whose caller went away (the server would finish it otherwise). */
  private kill(queryId: string): void {
    if (this.closed) return;
    const url = new URL(this.base);
    url.searchParams.set('query', `KILL QUERY WHERE query_id = '${queryId}' ASYNC`);
    const data = Buffer.alloc(0);
    this.post(url, data, AbortSignal.timeout(5000)).then((r) => r.resume(), () => undefined);
  }
}

interface Response {
  body: http.IncomingMessage;
  /** Ends the request's timeout and signal bookkeeping. */
  done(): void;
  /** The error to throw for a failure while reading the body (a QueryTimeoutError after the timeout). */
  error(e: unknown): unknown;
}

function isReset(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED';
}

async function readAll(body: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** "Code: 62, e.displayText() = DB::Exception: Syntax error…, e.what() = DB::Exception" (18.16) or "Code: 62. DB::Exception: …" (newer). */
export function serverError(text: string, httpStatus: number, codeHeader?: string | null): ClickHouseServerError {
  let msg = text.trim();
  const st = msg.search(/\n\s*(Stack trace|0\. )/);
  if (st > 0) msg = msg.slice(0, st);
  const m = /^Code:\s*(\d+)/.exec(msg);
  const code = codeHeader ? Number(codeHeader) : m ? Number(m[1]) : undefined;
  msg = msg.replace(/, e\.what\(\) = DB::Exception\s*$/, '').replace(/e\.displayText\(\) = /, '');
  if (msg.length > 2000) msg = msg.slice(0, 2000) + '…';
  return new ClickHouseServerError(`ClickHouse: ${msg || `HTTP ${httpStatus}`}`, code, httpStatus);
}

function parseRows<T>(text: string): T[] {
  const out: T[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (end > start) {
      const line = text.slice(start, end);
      if (line.charCodeAt(0) !== 123) throw serverError(text.slice(start), 200);
      out.push(JSON.parse(line) as T);
    }
    start = end + 1;
  }
  return out;
}

/** JSONCompactEachRow lines (arrays in `columns` order) → JSONEachRow lines, for servers without the former. */
export function compactToEachRow(columns: readonly string[], payload: Buffer): Buffer {
  const keys = columns.map((c, i) => (i === 0 ? '{' : ',') + JSON.stringify(c) + ':');
  const out = mapLines(payload.toString('utf8'), (text, start, end) => {
    const row = JSON.parse(text.slice(start, end)) as unknown[];
    if (!Array.isArray(row) || row.length !== columns.length) {
      throw new Error(`insert row has ${Array.isArray(row) ? row.length : 'no'} values for ${columns.length} columns`);
    }
    let line = '';
    for (let i = 0; i < row.length; i++) line += keys[i] + JSON.stringify(row[i] ?? null);
    return line + '}';
  });
  return Buffer.from(out.join('\n') + '\n');
}

// ---- schema on a cluster -----------------------------------------------------------------------

/**
 * One DDL statement for a sharded cluster: a table becomes `<name>_local` on every shard (created
 * ON CLUSTER) with a Distributed table of the plain name over it, so every query and insert runs
 * unchanged; a materialized view reads and writes the shard-local tables, so each shard's keys and
 * rollups come from its own events (and IN-subqueries may stay local: distributed_product_mode=local).
 * Other statements pass as they are. ON CLUSTER needs the servers' distributed DDL (ZooKeeper);
 * `onCluster: false` gives the statements to run on every server by hand (or on a one-server test).
 */
/** Events go to the shard of their project's session (one session's events sit together, so a session
 *  replay or a per-session count reads one shard); events without a session spread by id. */
export const EVENTS_SHARDING_KEY = "cityHash64(project_id, if(session_id = '', id, session_id))";

export interface ShardOptions {
  /** false: without ON CLUSTER (run the DDL on each server yourself). */
  onCluster?: boolean;
  /** The local tables become Replicated*MergeTree, their replicas in ZooKeeper under
   *  /clickhouse/tables/{shard}/<database>.<table> and named by the server's {replica} macro. */
  replicated?: boolean;
}

/**
 * One schema.ts statement for a cluster: a table becomes `<t>_local` on every server (ON CLUSTER;
 * Replicated when the cluster has replicas) with a Distributed `<t>` over it; a materialized view
 * reads and writes the local tables, so each shard derives its own rows from its own events;
 * an ALTER goes to the local tables. Whatever the columns, codecs or indexes of a table, only its
 * name and engine clause are touched, so this stays a thin wrapper over schema.ts.
 */
export function shardStatement(stmt: string, cluster: string, database: string, o: ShardOptions = {}): string[] {
  checkIdentifier(cluster, 'cluster');
  checkIdentifier(database, 'database');
  const on = o.onCluster === false ? '' : ` ON CLUSTER ${cluster}`;
  // qualified names: ON CLUSTER DDL on 18.16 runs on the other servers in their default database
  const local = (t: string) => `${database}.${t}_local`;
  const text = stmt.trim();
  const table = /^CREATE TABLE IF NOT EXISTS (\w+) \(/i.exec(text);
  if (table) {
    const t = table[1];
    // only events are inserted into; the other tables are filled per shard by their views
    const key = t === EVENTS_TABLE ? EVENTS_SHARDING_KEY : 'rand()';
    let ddl = text.replace(table[0], `CREATE TABLE IF NOT EXISTS ${local(t)}${on} (`);
    if (o.replicated) ddl = replicatedEngine(ddl, database, `${t}_local`);
    return [
      ddl,
      `CREATE TABLE IF NOT EXISTS ${database}.${t}${on} AS ${local(t)} ENGINE = Distributed(${cluster}, ${database}, ${t}_local, ${key})`,
    ];
  }
  const mv = /^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS(\s[\s\S]*?\bFROM\s+)(\w+)\b/i.exec(text);
  if (mv) {
    if (/\bFROM\b/i.test(text.slice(mv[0].length))) throw new Error(`cannot shard a view reading several tables: ${text.slice(0, 80)}`);
    return [text.replace(mv[0], `CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.${mv[1]}${on} TO ${local(mv[2])} AS${mv[3]}${local(mv[4])}`)];
  }
  const alter = /^ALTER TABLE (\w+)\s/i.exec(text);
  if (alter) return [text.replace(alter[0], `ALTER TABLE ${local(alter[1])}${on} `)];
  // a table and its shard-local table (a view has no local one: IF EXISTS makes that a no-op)
  const drop = /^DROP TABLE IF EXISTS (\w+)$/i.exec(text);
  if (drop) return [`DROP TABLE IF EXISTS ${database}.${drop[1]}${on}`, `DROP TABLE IF EXISTS ${local(drop[1])}${on}`];
  if (/^(CREATE|ALTER|DROP|RENAME|TRUNCATE)\b/i.test(text)) throw new Error(`cannot shard this statement: ${text.slice(0, 80)}`);
  return [stmt];
}

/**
 * `ENGINE = XMergeTree(args)` → `ENGINE = ReplicatedXMergeTree('<zk path>', '{replica}', args)`. The
 * zk path names the shard ({shard} macro) and the table, so the two replicas of a shard share one log;
 * replicated inserts are deduplicated by block checksum, which makes a retried insert harmless.
 */
export function replicatedEngine(ddl: string, database: string, table: string): string {
  const m = /ENGINE\s*=\s*(\w*)MergeTree\(([^)]*)\)/i.exec(ddl);
  if (!m) throw new Error(`no MergeTree engine to replicate in: ${ddl.slice(0, 80)}`);
  if (/^Replicated/i.test(m[1])) return ddl;
  const args = [`'/clickhouse/tables/{shard}/${database}.${table}'`, "'{replica}'", ...(m[2].trim() ? [m[2].trim()] : [])];
  return ddl.replace(m[0], `ENGINE = Replicated${m[1]}MergeTree(${args.join(', ')})`);
}

/** schema.ts's statements for a cluster (see shardStatement). */
export function clusterSchemaStatements(cluster: string, database: string, o: ShardOptions & { features?: StorageFeatures } = {}): string[] {
  return schemaStatements(o.features).flatMap((s) => shardStatement(s, cluster, database, o));
}

function checkIdentifier(s: string, what: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) throw new Error(`${what} must be a plain identifier (letters, digits, _): ${JSON.stringify(s)}`);
}
