// The composition root: builds every stage from the config and wires them together. Nothing else
// creates storage, writers or the HTTP app; tests build engines the same way.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { LIMITS } from './event.js';
import { ChdbTransport } from './storage/chdb-transport.js';
import { HttpTransport } from './storage/http-transport.js';
import { EventStore } from './storage/event-store.js';
import { openControlStore } from './storage/control-store.js';
import { migrateEvents } from './storage/event-migrations.js';
import { WritePath } from './wal/write-path.js';
import { processMemoryBudgets } from './memory-budget.js';
import { Admission } from './collector/admission.js';
import { Collector, type RowProcessor } from './collector/ingest.js';
import { collectorRoutes } from './collector/http.js';
import type { IngestRouteOptions } from './collector/ingest-route.js';
import { otlpRoutes } from './collector/otlp-http.js';
import { sentryRoutes } from './collector/sentry-http.js';
import { lokiRoutes } from './collector/loki.js';
import { esBulkRoutes } from './collector/es-bulk.js';
import { esApiRoutes } from './collector/es-api.js';
import { queryRoutes } from './query/http.js';
import { streamRoutes } from './query/stream.js';
import { LocalBus, PgBus, type ControlBus } from './storage/control-bus.js';
import { queryLimiter } from './query/limiter.js';
import { fingerprintRow } from './aggregator/processor.js';
import { GroupSignals } from './aggregator/signals.js';
import { ErrorGroups } from './aggregator/groups.js';
import { errorRoutes } from './aggregator/http.js';
import { suspectChanges } from './audit/changes.js';
import { FloodGuard } from './aggregator/flood.js';
import { ProjectSettingsStore } from './collector/project-settings.js';
import { settingsRoutes } from './collector/settings-http.js';
import { performanceRoutes } from './performance/http.js';
import { adminActionRecorder } from './audit/admin-actions.js';
import { auditRoutes } from './audit/http.js';
import type { Principal } from './auth/principal.js';
import { KeyStore } from './auth/key-store.js';
import { authPlugin } from './auth/http.js';
import { keysRoutes } from './auth/keys-http.js';
import { effectiveLimit, RateLimiter } from './auth/rate-limit.js';
import { SharedRateLimiter, type Budgets } from './auth/shared-rate-limit.js';
import { IdClaims } from './storage/id-claims.js';
import { clientErrorHandler, frameworkErrorHandler, HttpError, installErrorHandler } from './http/errors.js';
import { healthRoutes } from './http/health.js';
import { Readiness, READY_PROBE_MS } from './http/readiness.js';
import { whoamiRoutes } from './http/whoami.js';
import { dashboardRoutes } from './http/dashboard.js';
import { openapiPlugin } from './http/openapi.js';
import { AlertService } from './alerts/service.js';
import { alertRoutes } from './alerts/http.js';
import type { EngineDeps } from './engine-deps.js';
import { RetentionJob } from './retention/job.js';
import { retentionRoutes } from './retention/http.js';
import { ForwardingService } from './forwarding/service.js';
import { forwardingRoutes } from './forwarding/http.js';

export type { EngineDeps } from './engine-deps.js';

export interface Engine extends EngineDeps {
  app: FastifyInstance;
  retention: RetentionJob;
  forwarding: ForwardingService;
  close(): Promise<void>;
}

/** How long close() keeps loading the log into storage before it leaves the rest for the next start. */
const CLOSE_LOAD_MS = 4000;

export async function createEngine(config: Config): Promise<Engine> {
  mkdirSync(config.dataDir, { recursive: true });
  // events: embedded chDB, or a ClickHouse server / cluster over HTTP when MONITORING_CLICKHOUSE_URL is set
  const transport = config.clickhouseUrl
    ? await HttpTransport.connect({
      url: config.clickhouseUrl, user: config.clickhouseUser || undefined, password: config.clickhousePassword || undefined,
      database: config.clickhouseDatabase || undefined, cluster: config.clickhouseCluster || undefined,
      requestTimeoutMs: config.storageTimeoutMs,
    })
    : new ChdbTransport(join(config.dataDir, 'events'), config.storageTimeoutMs);
  const events = new EventStore(transport, config.queryTimeoutMs);
  // keys, rules, settings, group states, the alert outbox: SQLite in the data dir, or PostgreSQL
  const meta = await openControlStore(config);
  // both schemas are brought up to date at start; two nodes starting at once take turns
  await migrateEvents(transport, meta);

  // the write path (src/wal/): requests are answered from the log; the loader fills storage
  let app: FastifyInstance | undefined;
  const early: [string, object, string][] = [];
  const engineLog = (level: 'warn' | 'error' | 'info', obj: object, msg: string) => {
    if (app) app.log[level](obj, msg);
    else early.push([level, obj, msg]);
  };
  // nodes sharing a ClickHouse server and PostgreSQL: a client id is stored once whichever node takes
  // it (src/storage/id-claims.ts). One node (embedded, or alone on SQLite) has no registry.
  const idClaims = config.databaseUrl && config.clickhouseUrl ? new IdClaims(meta) : undefined;
  // what the engine holds in memory follows V8's heap limit (npm start gives it 768 MB)
  const memory = processMemoryBudgets();
  const writePath = await WritePath.open(events, {
    // waiting for the fsync, a request's rows are held as objects (~9× their log bytes)
    dir: config.walDir, maxBytes: config.walMaxBytes, maxWaitingBytes: memory.fsyncWaitingLogBytes, memoryBytes: memory.readAheadHeapBytes,
    blockRows: config.flushMaxEvents, intervalMs: config.flushIntervalMs, insertTimeoutMs: 60_000, log: engineLog,
    idRegistry: idClaims,
    // an in-memory filter of the stored ids spares the loader most storage look-ups, but only where
    // no other process can insert into the events table: embedded chDB, never a ClickHouse server
    idSource: config.clickhouseUrl ? undefined : events,
  });
  const projectSettings = new ProjectSettingsStore(meta);
  await projectSettings.init();
  const flood = new FloodGuard((p) => projectSettings.get(p));
  // order matters: secrets go before anything reads the text; flood needs the fingerprint
  const processors: RowProcessor[] = [
    (row) => void projectSettings.redactorFor(row.project_id).redactRow(row),
    fingerprintRow,
    flood.process,
  ];
  const collector = new Collector(writePath, processors);
  const keys = new KeyStore(meta, config.adminToken);
  // control changes reach every node sharing the control store (LISTEN/NOTIFY on PostgreSQL)
  const control: ControlBus = config.databaseUrl
    ? await PgBus.start(config.databaseUrl, (msg, err) => engineLog('warn', { err }, msg))
    : new LocalBus();
  keys.listen(control);
  projectSettings.listen(control);
  const limiter = queryLimiter(config.maxConcurrentQueries, config.queryTimeoutMs);
  // per-key budgets (src/auth/rate-limit.ts): requests in the auth hook, events in the collector;
  // shared by every node through PostgreSQL when there is one (src/auth/shared-rate-limit.ts)
  const shared = config.databaseUrl ? new SharedRateLimiter(meta, (msg, err) => engineLog('warn', { err: String(err) }, msg)) : undefined;
  shared?.start();
  const budgets: Budgets = shared ?? new RateLimiter();
  const system: Principal = { name: 'monitoring', scopes: new Set(['ingest']), projects: '*' };
  const closers: (() => Promise<void> | void)[] = [];
  const signals = new GroupSignals();
  const errorGroups = new ErrorGroups(meta, signals);
  await errorGroups.init();
  errorGroups.listen(control);
  const deps: EngineDeps = {
    config, node: writePath.node, events, meta, writePath, collector, keys, limiter, signals, errorGroups, projectSettings, control,
    recordAdminAction: adminActionRecorder(collector, system),
    onClose: (fn) => closers.push(fn),
  };
  const alerts = new AlertService(deps);
  // forwarding's payloads go through the alert outbox (one dispatcher, one set of retries); made
  // before the dispatcher starts, so deliveries left pending by the last run find their handler
  const forwarding = new ForwardingService({ ...deps, dispatcher: alerts.dispatcher, alertStore: alerts.store });
  await alerts.init();
  alerts.listen(control);
  deps.onClose(() => control.close());
  if (shared) deps.onClose(() => shared.close());
  if (idClaims) {
    idClaims.startPruning(3_600_000, (msg, err) => engineLog('warn', { err: String(err) }, msg));
    deps.onClose(() => idClaims.stop());
  }
  deps.onClose(() => alerts.close());
  const retention = new RetentionJob({
    events, meta, defaultDays: config.retentionDays, overrides: () => projectSettings.retentionOverrides(),
    intervalMs: config.retentionIntervalMs, queryTimeoutMs: config.queryTimeoutMs,
    log: (msg, extra) => engineLog('warn', extra ?? {}, msg),
  });
  deps.onClose(() => retention.stop());
  deps.onClose(() => forwarding.close());

  app = Fastify({
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
    bodyLimit: LIMITS.maxBodyBytes,
    // a slow client may not hold a connection open forever while sending its body
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: 0,
    // Node checks request deadlines on a timer (30 s by default): check often enough that the
    // timeout holds, and let headers take no longer than the whole request may
    http: {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: Math.min(60_000, config.requestTimeoutMs),
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(config.requestTimeoutMs / 4))),
    },
    keepAliveTimeout: 65_000,
    routerOptions: { maxParamLength: 512 },
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    // one log line per request would cost more than ingesting its events
    logController: new LogController({ disableRequestLogging: true }),
    // fastify's own answer while closing carries no Retry-After: the hook below answers instead
    return503OnClosing: false,
  });
  installErrorHandler(app);
  let closing = false;
  app.addHook('onRequest', async (_req, reply) => {
    if (!closing) return;
    reply.header('Connection', 'close');
    throw new HttpError(503, 'shutting_down', 'the engine is stopping; retry shortly (another node, or this one once restarted)', undefined, { 'Retry-After': '1' });
  });
  for (const [level, obj, msg] of early) app.log[level as 'warn'](obj, msg);
  // fed from the log in order; the observer's checkpoint moves once both are done (src/wal/observe.ts)
  writePath.observe((rows) => errorGroups.observe(rows));
  writePath.observe((rows) => alerts.observeRows(rows));
  writePath.observe((rows, ctx) => forwarding.observeRows(rows, ctx));
  writePath.routeAlertsWith((row) => alerts.routeOnce(row));
  // read-your-writes (bounded wait; the live tail never waits): a key's query sees what that key
  // wrote before it; the admin token's sees everything acknowledged before it (README, "What the
  // answer means")
  app.addHook('preHandler', async (req) => {
    if (req.method === 'GET' && req.routeOptions.config?.scope === 'read' && req.routeOptions.url !== '/monitoring/stream') {
      await writePath.visible(config.walReadWaitMs, req.principal.keyId ? req.principal.name : undefined);
    }
  });
  const admission = new Admission({
    maxInflight: config.maxInflightRequests, maxLagMs: config.overloadLagMs,
    maxInflightBytes: memory.inflightBodyBytes, refuseHeapBytes: memory.refuseHeapBytes,
  });
  admission.start();
  await app.register(authPlugin, {
    keys,
    requests: {
      limiter: budgets,
      perMinute: (p) => effectiveLimit(p.requestsPerMinute, !p.keyId, config.rateLimitRequestsPerMinute, config.rateLimitAdminRequestsPerMinute),
    },
  });
  // before every route: the document is built from the routes as they are added
  await app.register(openapiPlugin);
  const readiness = new Readiness(() => events.ping(READY_PROBE_MS), config.dataDir, config.minFreeDiskMb * 1024 * 1024);
  readiness.start();
  deps.onClose(() => readiness.stop());
  await app.register(healthRoutes, { readiness });
  await app.register(dashboardRoutes);
  const ingest: IngestRouteOptions = {
    collector, admission,
    takeEvents: (keyId, own, n) => {
      const r = budgets.take(`ev:${keyId ?? 'admin-token'}`, effectiveLimit(own, !keyId, config.rateLimitEventsPerMinute, config.rateLimitAdminEventsPerMinute), n);
      return r instanceof Promise ? r.then((t) => t.retryAfterS) : r.retryAfterS;
    },
  };
  await app.register(collectorRoutes, { ...ingest, alerts });
  await app.register(otlpRoutes, ingest);
  await app.register(sentryRoutes, ingest);
  await app.register(lokiRoutes, ingest);
  await app.register(esBulkRoutes, ingest);
  // the same bulk API with the handshake Filebeat, Logstash and the ES clients make first (es-api.ts)
  await app.register(esBulkRoutes, { ...ingest, prefix: '/es' });
  await app.register(esApiRoutes, { prefix: '/es' });
  await app.register(keysRoutes, deps);
  await app.register(queryRoutes, { events, limiter });
  // a ClickHouse server may be shared by several engine nodes: tails show their events too
  await app.register(streamRoutes, { writePath, keys, bus: control, shared: config.clickhouseUrl ? events : undefined });
  await app.register(auditRoutes, deps);
  await app.register(errorRoutes, { ...deps, suspects: (project, fingerprint) => suspectChanges(events, project, fingerprint) });
  await app.register(settingsRoutes, deps);
  await app.register(performanceRoutes, { ...deps, admission });
  await app.register(alertRoutes, { service: alerts, keys });
  await app.register(retentionRoutes, { events, projectSettings, retention, defaultDays: config.retentionDays, limiter });
  retention.start();
  await forwarding.init((msg, extra) => app.log.warn(extra ?? {}, msg));
  await app.register(forwardingRoutes, { forwarding, recordAdminAction: deps.recordAdminAction });
  await app.register(whoamiRoutes);

  writePath.start();
  const server = app;
  return {
    ...deps,
    app: server,
    retention,
    forwarding,
    /** Bounded: what is not loaded within a few seconds stays in the log for the next start. */
    async close() {
      closing = true;
      admission.stop();
      await server.close();
      await writePath.close(CLOSE_LOAD_MS);
      for (const fn of closers.reverse()) await fn();
      projectSettings.stop();
      await events.close();
      await meta.close();
    },
  };
}
