// All settings, from flags and MONITORING_* environment variables, validated at start.
// A bad value stops the engine with a message naming the setting and what it accepts.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  adminToken: string;
  /** Set when the admin token was generated on this start: print it once. */
  adminTokenGenerated: boolean;
  logLevel: string;
  /** The loader: rows per storage insert, at most; and the longest it gathers rows for one. */
  flushMaxEvents: number;
  flushIntervalMs: number;
  /** The write-ahead log's directory ('' = <dataDir>/wal) and its size limit (then 503 + Retry-After). */
  walDir: string;
  walMaxBytes: number;
  /** Queries wait at most this long for acknowledged events to reach storage (read-your-writes). */
  walReadWaitMs: number;
  /** Admission: ingest requests handled at once, and the event-loop delay past which new ones are refused. */
  maxInflightRequests: number;
  overloadLagMs: number;
  maxConcurrentQueries: number;
  queryTimeoutMs: number;
  /** Longest any other storage call (insert, DDL, id check, readiness probe) may take before 503. */
  storageTimeoutMs: number;
  /** Below this much free space on the data dir's disk the engine says it cannot write (/ready 503). */
  minFreeDiskMb: number;
  allowPrivateWebhooks: boolean;
  publicUrl: string;
  /** Alerts: how often windowed rules are evaluated and firing groups checked for repeat/resolve. */
  alertEvalIntervalMs: number;
  /** Alerts: first retry delay of a failed delivery (doubles per attempt, with jitter). */
  alertRetryBaseMs: number;
  /** Alerts: attempts before a delivery is given up. */
  alertMaxAttempts: number;
  /** Alerts: longest one delivery attempt may take. */
  alertSendTimeoutMs: number;
  /** Per-key defaults; a key can override them. */
  rateLimitRequestsPerMinute: number;
  rateLimitEventsPerMinute: number;
  /** The admin token's budgets (0 = unlimited, the default). */
  rateLimitAdminRequestsPerMinute: number;
  rateLimitAdminEventsPerMinute: number;
  /** Longest a client may take to send a whole request (headers and body); then 408 and the connection is closed. */
  requestTimeoutMs: number;
  /** Events on a ClickHouse server over HTTP instead of embedded chDB ('' = embedded). */
  clickhouseUrl: string;
  clickhouseUser: string;
  clickhousePassword: string;
  /** '' = the server's default database. */
  clickhouseDatabase: string;
  /** Shard the event tables over this cluster of the server's remote_servers ('' = one server). */
  clickhouseCluster: string;
  /** Control state in PostgreSQL instead of <dataDir>/control.sqlite ('' = SQLite). */
  databaseUrl: string;
  /** Days events, rollups and alert history are kept (a project may override it). */
  retentionDays: number;
  /** How often retention is enforced. */
  retentionIntervalMs: number;
}

export class ConfigError extends Error {}

type Source = Record<string, string | undefined>;

interface Spec<T> {
  env: string;
  flag: string;
  describe: string;
  parse: (raw: string) => T;
  default: T | (() => T);
}

function int(min: number, max: number) {
  return (raw: string): number => {
    if (!/^-?\d+$/.test(raw.trim())) throw new Error(`must be a whole number from ${min} to ${max}`);
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}
const str = (raw: string): string => {
  if (raw.trim() === '') throw new Error('must not be empty');
  return raw;
};
const bool = (raw: string): boolean => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new Error('must be true or false');
};
const level = (raw: string): string => {
  const ok = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!ok.includes(raw)) throw new Error(`must be one of ${ok.join(', ')}`);
  return raw;
};
const httpUrl = (raw: string): string => {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new Error('must be a URL like http://127.0.0.1:8123');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('must be an http:// or https:// URL');
  return u.toString();
};
const postgresUrl = (raw: string): string => {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new Error('must be a URL like postgres://user@127.0.0.1:5432/monitoring');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('must be a postgres:// or postgresql:// URL');
  if (u.pathname.length < 2) throw new Error('must name the database, e.g. postgres://user@127.0.0.1:5432/monitoring');
  return raw.trim();
};
const identifier = (raw: string): string => {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(raw)) throw new Error('must be a plain identifier (letters, digits, _)');
  return raw;
};
const token = (raw: string): string => {
  if (raw.length < 16) throw new Error('must be at least 16 characters');
  return raw;
};

export const SETTINGS = {
  host: { env: 'MONITORING_HOST', flag: 'host', describe: 'address to listen on', parse: str, default: '127.0.0.1' },
  port: { env: 'MONITORING_PORT', flag: 'port', describe: 'port to listen on (0 = any free port)', parse: int(0, 65535), default: 8080 },
  dataDir: { env: 'MONITORING_DATA_DIR', flag: 'data-dir', describe: 'where embedded storage keeps its files', parse: str, default: './data' },
  adminToken: { env: 'MONITORING_ADMIN_TOKEN', flag: 'admin-token', describe: 'bearer token with every right (generated and kept in the data dir when unset)', parse: token, default: '' },
  logLevel: { env: 'MONITORING_LOG_LEVEL', flag: 'log-level', describe: 'fatal|error|warn|info|debug|trace|silent', parse: level, default: 'info' },
  flushMaxEvents: { env: 'MONITORING_FLUSH_MAX_EVENTS', flag: 'flush-max-events', describe: 'the loader: rows per storage insert, at most', parse: int(1, 1_000_000), default: 50_000 },
  flushIntervalMs: { env: 'MONITORING_FLUSH_INTERVAL_MS', flag: 'flush-interval-ms', describe: 'the loader: longest it gathers rows from the write-ahead log before a storage insert', parse: int(0, 60_000), default: 1000 },
  walDir: { env: 'MONITORING_WAL_DIR', flag: 'wal-dir', describe: 'the write-ahead log\'s directory, on local disk (default: <data dir>/wal)', parse: str, default: '' },
  walMaxBytes: { env: 'MONITORING_WAL_MAX_BYTES', flag: 'wal-max-bytes', describe: 'size limit of the write-ahead log; when storage is behind and it is full, ingest answers 503 + Retry-After', parse: int(1 << 20, 1e15), default: 1024 ** 3 },
  walReadWaitMs: { env: 'MONITORING_WAL_READ_WAIT_MS', flag: 'wal-read-wait-ms', describe: 'queries wait at most this long for acknowledged events to reach storage (0 = never wait)', parse: int(0, 60_000), default: 1000 },
  maxInflightRequests: { env: 'MONITORING_MAX_INFLIGHT_REQUESTS', flag: 'max-inflight-requests', describe: 'ingest requests handled at once before 503 + Retry-After', parse: int(1, 100_000), default: 1024 },
  overloadLagMs: { env: 'MONITORING_OVERLOAD_LAG_MS', flag: 'overload-lag-ms', describe: 'event-loop delay past which new ingest requests are refused with 503 + Retry-After (0 = off)', parse: int(0, 10_000), default: 50 },
  maxConcurrentQueries: { env: 'MONITORING_MAX_CONCURRENT_QUERIES', flag: 'max-concurrent-queries', describe: 'queries running at once before 429', parse: int(1, 1000), default: 8 },
  queryTimeoutMs: { env: 'MONITORING_QUERY_TIMEOUT_MS', flag: 'query-timeout-ms', describe: 'longest a query may run', parse: int(100, 600_000), default: 30_000 },
  storageTimeoutMs: { env: 'MONITORING_STORAGE_TIMEOUT_MS', flag: 'storage-timeout-ms', describe: 'longest an insert or other storage call may take before the request is answered 503', parse: int(100, 600_000), default: 10_000 },
  minFreeDiskMb: { env: 'MONITORING_MIN_FREE_DISK_MB', flag: 'min-free-disk-mb', describe: 'free space on the data dir\'s disk below which /ready says the engine cannot write', parse: int(0, 10_000_000), default: 64 },
  allowPrivateWebhooks: { env: 'MONITORING_ALLOW_PRIVATE_WEBHOOKS', flag: 'allow-private-webhooks', describe: 'allow alert channel and forwarding targets on loopback/private addresses (tests, development)', parse: bool, default: false },
  publicUrl: { env: 'MONITORING_PUBLIC_URL', flag: 'public-url', describe: 'the dashboard\'s address, for links in alerts', parse: str, default: '' },
  alertEvalIntervalMs: { env: 'MONITORING_ALERT_EVAL_INTERVAL_MS', flag: 'alert-eval-interval-ms', describe: 'how often windowed alert rules are evaluated', parse: int(50, 3_600_000), default: 10_000 },
  alertRetryBaseMs: { env: 'MONITORING_ALERT_RETRY_BASE_MS', flag: 'alert-retry-base-ms', describe: 'first retry delay of a failed alert delivery (doubles per attempt)', parse: int(10, 600_000), default: 1000 },
  alertMaxAttempts: { env: 'MONITORING_ALERT_MAX_ATTEMPTS', flag: 'alert-max-attempts', describe: 'delivery attempts before an alert delivery is given up', parse: int(1, 100), default: 12 },
  alertSendTimeoutMs: { env: 'MONITORING_ALERT_SEND_TIMEOUT_MS', flag: 'alert-send-timeout-ms', describe: 'longest one alert delivery attempt may take', parse: int(100, 120_000), default: 10_000 },
  rateLimitRequestsPerMinute: { env: 'MONITORING_RATE_LIMIT_REQUESTS', flag: 'rate-limit-requests', describe: 'default requests per minute per key (0 = unlimited)', parse: int(0, 100_000_000), default: 0 },
  rateLimitEventsPerMinute: { env: 'MONITORING_RATE_LIMIT_EVENTS', flag: 'rate-limit-events', describe: 'default events per minute per key (0 = unlimited)', parse: int(0, 1_000_000_000), default: 0 },
  rateLimitAdminRequestsPerMinute: { env: 'MONITORING_RATE_LIMIT_ADMIN_REQUESTS', flag: 'rate-limit-admin-requests', describe: 'requests per minute for the admin token (0 = unlimited)', parse: int(0, 100_000_000), default: 0 },
  rateLimitAdminEventsPerMinute: { env: 'MONITORING_RATE_LIMIT_ADMIN_EVENTS', flag: 'rate-limit-admin-events', describe: 'events per minute for the admin token (0 = unlimited)', parse: int(0, 1_000_000_000), default: 0 },
  requestTimeoutMs: { env: 'MONITORING_REQUEST_TIMEOUT_MS', flag: 'request-timeout-ms', describe: 'longest a client may take to send a whole request before 408', parse: int(100, 3_600_000), default: 60_000 },
  clickhouseUrl: { env: 'MONITORING_CLICKHOUSE_URL', flag: 'clickhouse-url', describe: 'keep events on this ClickHouse server (HTTP interface) instead of embedded chDB', parse: httpUrl, default: '' },
  clickhouseUser: { env: 'MONITORING_CLICKHOUSE_USER', flag: 'clickhouse-user', describe: 'ClickHouse server user (default: default)', parse: str, default: '' },
  clickhousePassword: { env: 'MONITORING_CLICKHOUSE_PASSWORD', flag: 'clickhouse-password', describe: 'ClickHouse server password', parse: (raw: string) => raw, default: '' },
  clickhouseDatabase: { env: 'MONITORING_CLICKHOUSE_DATABASE', flag: 'clickhouse-database', describe: 'ClickHouse server database, created when missing (default: the server\'s)', parse: identifier, default: '' },
  clickhouseCluster: { env: 'MONITORING_CLICKHOUSE_CLUSTER', flag: 'clickhouse-cluster', describe: 'shard the event tables over this ClickHouse cluster (local tables ON CLUSTER + Distributed)', parse: identifier, default: '' },
  databaseUrl: { env: 'MONITORING_DATABASE_URL', flag: 'database-url', describe: 'keep keys, rules, channels, silences, group states, settings and the alert outbox in this PostgreSQL database (default: SQLite in the data dir)', parse: postgresUrl, default: '' },
  retentionDays: { env: 'MONITORING_RETENTION_DAYS', flag: 'retention-days', describe: 'days events, rollups and alert history are kept (a project\'s settings may say otherwise)', parse: int(1, 36_500), default: 30 },
  retentionIntervalMs: { env: 'MONITORING_RETENTION_INTERVAL_MS', flag: 'retention-interval-ms', describe: 'how often retention is enforced (at most hourly)', parse: int(1000, 3_600_000), default: 3_600_000 },
} satisfies Record<string, Spec<unknown>>;

type Settings = typeof SETTINGS;

/**
 * Reads settings: a flag wins over the environment, which wins over the default.
 * `flags` holds raw flag values keyed by flag name (as commander gives them).
 */
export function loadConfig(flags: Record<string, string | undefined> = {}, env: Source = process.env): Config {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(SETTINGS) as [keyof Settings, Spec<unknown>][]) {
    const fromFlag = flags[spec.flag] ?? flags[key];
    const raw = fromFlag ?? env[spec.env];
    const source = fromFlag !== undefined ? `--${spec.flag}` : spec.env;
    if (raw === undefined || raw === '') {
      out[key] = typeof spec.default === 'function' ? (spec.default as () => unknown)() : spec.default;
      continue;
    }
    try {
      out[key] = spec.parse(String(raw));
    } catch (e) {
      problems.push(`${source}=${JSON.stringify(String(raw).slice(0, 80))}: ${(e as Error).message} (${spec.describe})`);
    }
  }
  if (problems.length) throw new ConfigError(`invalid settings:\n  ${problems.join('\n  ')}`);
  const cfg = out as unknown as Config;
  cfg.dataDir = resolve(cfg.dataDir);
  cfg.walDir = cfg.walDir ? resolve(cfg.walDir) : join(cfg.dataDir, 'wal');
  cfg.adminTokenGenerated = false;
  if (!cfg.adminToken) {
    const t = loadOrCreateAdminToken(cfg.dataDir);
    cfg.adminToken = t.token;
    cfg.adminTokenGenerated = t.created;
  }
  return cfg;
}

function loadOrCreateAdminToken(dataDir: string): { token: string; created: boolean } {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'admin-token');
  if (existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), created: false };
  const token = `pm_admin_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return { token, created: true };
}
