// The composition root: builds every stage from the config and wires them together. Nothing else
// creates storage, writers or the HTTP app; tests build engines the same way.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { LIMITS } from './event.js';
import { ChdbTransport } from './storage/chdb-transport.js';
import { EventStore } from './storage/event-store.js';
import { SqliteDb, type SqlDb } from './storage/sql-db.js';
import { migrateMeta } from './storage/meta-schema.js';
import { GroupCommitWriter } from './collector/writer.js';
import { Collector, type RowProcessor } from './collector/ingest.js';
import { collectorRoutes } from './collector/http.js';
import { queryRoutes } from './query/http.js';
import { queryLimiter, type QueryLimiter } from './query/limiter.js';
import { fingerprintRow } from './aggregator/processor.js';
import { GroupSignals } from './aggregator/signals.js';
import { adminActionRecorder, type AdminActionRecorder } from './audit/admin-actions.js';
import type { Principal } from './auth/principal.js';
import { KeyStore } from './auth/key-store.js';
import { authPlugin } from './auth/http.js';
import { installErrorHandler } from './http/errors.js';
import { healthRoutes } from './http/health.js';

/** What every stage's route plugin and service may depend on; passed in, never global. */
export interface EngineDeps {
  config: Config;
  events: EventStore;
  meta: SqlDb;
  writer: GroupCommitWriter;
  collector: Collector;
  keys: KeyStore;
  limiter: QueryLimiter;
  /** new_group / regression, raised by the aggregator after the events are durable. */
  signals: GroupSignals;
  /** Records an admin action in the audit trail. */
  recordAdminAction: AdminActionRecorder;
  /** Called by close(), last registered first: stages stop their timers and loops here. */
  onClose(fn: () => Promise<void> | void): void;
}

export interface Engine extends EngineDeps {
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function createEngine(config: Config): Promise<Engine> {
  mkdirSync(config.dataDir, { recursive: true });
  const events = new EventStore(new ChdbTransport(join(config.dataDir, 'events')), config.queryTimeoutMs);
  await events.init();
  const meta = new SqliteDb(join(config.dataDir, 'control.sqlite'));
  await migrateMeta(meta);

  const writer = new GroupCommitWriter(events, {
    maxEvents: config.flushMaxEvents,
    intervalMs: config.flushIntervalMs,
    maxQueued: config.maxQueuedEvents,
  });
  const processors: RowProcessor[] = [fingerprintRow];
  const collector = new Collector(writer, processors);
  const keys = new KeyStore(meta, config.adminToken);
  const limiter = queryLimiter(config.maxConcurrentQueries);
  const system: Principal = { name: 'monitoring', scopes: new Set(['ingest']), projects: '*' };
  const closers: (() => Promise<void> | void)[] = [];
  const deps: EngineDeps = {
    config, events, meta, writer, collector, keys, limiter,
    signals: new GroupSignals(),
    recordAdminAction: adminActionRecorder(collector, system),
    onClose: (fn) => closers.push(fn),
  };

  const app = Fastify({
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
    bodyLimit: LIMITS.maxBodyBytes,
    // a slow client may not hold a connection open forever while sending its body
    requestTimeout: 60_000,
    connectionTimeout: 0,
    keepAliveTimeout: 65_000,
    routerOptions: { maxParamLength: 512 },
    // one log line per request would cost more than ingesting its events
    logController: new LogController({ disableRequestLogging: true }),
  });
  installErrorHandler(app);
  await app.register(authPlugin, { keys });
  await app.register(healthRoutes, { events });
  await app.register(collectorRoutes, { collector });
  await app.register(queryRoutes, { events, limiter });

  return {
    ...deps,
    app,
    async close() {
      await app.close();
      for (const fn of closers.reverse()) await fn();
      await writer.close();
      await events.close();
      await meta.close();
    },
  };
}
