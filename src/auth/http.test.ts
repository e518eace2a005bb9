// The auth hook on a bare app (no storage engine): fail-closed scopes and the request budget.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { removeDir, tempDir } from '../../test/helpers.js';
import type { SqlDb } from '../storage/sql-db.js';
import { openControlStore } from '../storage/control-store.js';
import { controlEnv } from '../../test/control-db.js';
import { installErrorHandler } from '../http/errors.js';
import { KeyStore } from './key-store.js';
import { authPlugin } from './http.js';
import { RateLimiter } from './rate-limit.js';

const ADMIN = 'unit-admin-token-0123456789';
let app: FastifyInstance;
let db: SqlDb;
let dir: string;
let now = 1_000_000;
let readToken: string;

beforeAll(async () => {
  dir = tempDir('pm-auth-unit-');
  db = await openControlStore({ dataDir: dir, databaseUrl: (await controlEnv(dir)).MONITORING_DATABASE_URL });
  const keys = new KeyStore(db, ADMIN);
  readToken = (await keys.create({ name: 'r', scopes: ['read'], project_id: 'p', requests_per_minute: 3 })).token;
  app = Fastify();
  installErrorHandler(app);
  await app.register(authPlugin, { keys, requests: { limiter: new RateLimiter(() => now), perMinute: (p) => p.requestsPerMinute ?? 0 } });
  app.get('/monitoring/declared', { config: { scope: 'read' } }, async () => ({ ok: true }));
  app.get('/monitoring/forgot-its-scope', async () => ({ ok: true }));
  app.get('/v1/forgot', async () => ({ ok: true }));
  app.get('/health', async () => ({ ok: true }));
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await db.close();
  removeDir(dir);
});

const get = (url: string, token?: string) => app.inject({ url, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('authPlugin', () => {
  it('serves an API route that names no scope as admin-only (fail closed), and flags it', async () => {
    expect((await get('/monitoring/forgot-its-scope')).statusCode).toBe(401);
    expect((await get('/monitoring/forgot-its-scope', readToken)).statusCode).toBe(403);
    expect((await get('/v1/forgot', readToken)).statusCode).toBe(403);
    expect((await get('/monitoring/forgot-its-scope', ADMIN)).statusCode).toBe(200);
    expect((await get('/health')).statusCode).toBe(200);
    const table = app.routeTable.filter((r) => r.method === 'GET');
    expect(table).toEqual(expect.arrayContaining([
      { method: 'GET', url: '/monitoring/declared', scope: 'read' },
      { method: 'GET', url: '/monitoring/forgot-its-scope', scope: 'admin', defaulted: true },
      { method: 'GET', url: '/health', scope: undefined },
    ]));
  });

  it('takes one request from the key\'s budget after authenticating; 429 + Retry-After when spent', async () => {
    for (let i = 0; i < 3; i++) expect((await get('/monitoring/declared', readToken)).statusCode).toBe(200);
    const r = await get('/monitoring/declared', readToken);
    expect(r.statusCode).toBe(429);
    expect(r.headers['retry-after']).toBe('20');
    expect(r.json().error.code).toBe('rate_limited');
    now += 20_000;
    expect((await get('/monitoring/declared', readToken)).statusCode).toBe(200);
    // unauthenticated requests never reach (or drain) a key's budget
    expect((await get('/monitoring/declared', 'pm_unknown')).statusCode).toBe(401);
  });
});
