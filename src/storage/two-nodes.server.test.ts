// Two engine nodes started at the same moment on one clickhouse-server (Debian's 18.16) and one
// PostgreSQL: both come up, each migration of either schema is applied once, and what one node
// writes (events, keys) the other serves.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, spawnEngine, tempDir, until } from '../../test/helpers.js';
import { createTestDatabase, dropTestDatabases } from '../../test/control-db.js';
import { CONTROL_MIGRATIONS } from './control-migrations.js';
import { EVENT_MIGRATIONS } from './event-migrations.js';
import { HttpTransport } from './http-transport.js';
import { PgDb } from './pg-db.js';

const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'clickhouse-server.sh');
let dir = '';
let chUrl = '';
let pgUrl = '';
const procs: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  dir = tempDir('pm-two-');
  const httpPort = await freePort();
  let tcpPort = await freePort();
  while (tcpPort === httpPort) tcpPort = await freePort();
  chUrl = execFileSync('bash', [SCRIPT, 'start', join(dir, 'server'), String(httpPort), String(tcpPort)], { encoding: 'utf8' }).trim();
  pgUrl = await createTestDatabase();
});
afterAll(async () => {
  for (const p of procs) {
    if (p.exitCode === null) {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
  }
  await dropTestDatabases();
  if (!dir) return;
  try {
    execFileSync('bash', [SCRIPT, 'stop', join(dir, 'server')]);
  } finally {
    removeDir(dir);
  }
});

describe('two nodes starting at once', () => {
  it('apply each migration once and share events and keys', async () => {
    const env = { MONITORING_CLICKHOUSE_URL: chUrl, MONITORING_CLICKHOUSE_DATABASE: 'pm_two', MONITORING_DATABASE_URL: pgUrl, MONITORING_LOG_LEVEL: 'warn' };
    const [a, b] = await Promise.all([spawnEngine(join(dir, 'a'), env), spawnEngine(join(dir, 'b'), env)]);
    procs.push(a.proc, b.proc);

    const ch = await HttpTransport.connect({ url: chUrl, database: 'pm_two' });
    const pg = new PgDb(pgUrl);
    try {
      const events = await ch.query<{ version: number; n: number }>('SELECT version, count() AS n FROM schema_migrations GROUP BY version ORDER BY version');
      expect(events.map((r) => [Number(r.version), Number(r.n)])).toEqual(EVENT_MIGRATIONS.map((m) => [m.version, 1]));
      const control = await pg.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(control.map((r) => r.version)).toEqual(CONTROL_MIGRATIONS.map((m) => m.version));
    } finally {
      await ch.close();
      await pg.close();
    }

    const key = await call(a.url, 'POST', '/monitoring/keys', { body: { name: 'shared', scopes: ['read', 'ingest'], project_id: 'pf_two' } });
    expect(key.status).toBe(201);
    const sent = await call(b.url, 'POST', '/monitoring/logs', { token: key.body.token, body: { project_id: 'pf_two', message: 'via b' } });
    expect(sent.status).toBe(200);
    // B answered once the event was in its own write-ahead log; A sees it once B's loader has stored
    // it (read-your-writes holds on the node that took the write, not across nodes)
    // (the key's creation is in the project's audit trail too)
    const onA = async () => (await call(a.url, 'GET', '/monitoring/logs?project_id=pf_two', { token: key.body.token }))
      .body.logs.filter((l: any) => l.event_type !== 'audit').map((l: any) => l.id);
    await until('the event sent to B is read through A', async () => (await onA()).length > 0, 10_000);
    expect(await onA()).toEqual(sent.body.ids);
  });
});
