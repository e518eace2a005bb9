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
import { queryLimiter } from './query/limiter.js';
import { KeyStore } from './auth/key-store.js';
import { authPlugin } from './auth/http.js';
import { installErrorHandler } from './http/errors.js';
import { healthRoutes } from './http/health.js';

export interface Engine {
  app: FastifyInstance;
  config: Config;
  events: EventStore;
  meta: SqlDb;
  writer: GroupCommitWriter;
  collector: Collector;
  keys: KeyStore;
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
  const processors: RowProcessor[] = [];
  const collector = new Collector(writer, processors);
  const keys = new KeyStore(meta, config.adminToken);
  const limiter = queryLimiter(config.maxConcurrentQueries);

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
    app, config, events, meta, writer, collector, keys,
    async close() {
      await app.close();
      await writer.close();
      await events.close();
      await meta.close();
    },
  };
}
