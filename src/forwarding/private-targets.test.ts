// Forwarding targets on loopback/private addresses are refused at send time, without a connection,
// unless MONITORING_ALLOW_PRIVATE_WEBHOOKS (an engine of its own: chDB allows one per process).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, removeDir, startEngine, type TestEngine } from '../../test/helpers.js';

let eng: TestEngine;
beforeAll(async () => { eng = await startEngine({ MONITORING_ALLOW_PRIVATE_WEBHOOKS: 'false' }); });
afterAll(async () => { await eng?.close(); if (eng) removeDir(eng.dataDir); });

it('a DSN on 127.0.0.1 fails for good as "target refused"; nothing reaches the receiver', async () => {
  let connections = 0;
  const server = createServer((_req, res) => res.end());
  server.on('connection', () => { connections++; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    const put = await call(eng.url, 'PUT', '/monitoring/projects/fw_ssrf/forwarding', { body: { sentry: { dsn: `http://k@127.0.0.1:${port}/1` } } });
    expect(put.status).toBe(200);
    expect((await call(eng.url, 'POST', '/monitoring/logs', { body: { project_id: 'fw_ssrf', event_type: 'error', message: 'x' } })).status).toBe(200);
    const status = async () => (await call(eng.url, 'GET', '/monitoring/projects/fw_ssrf/forwarding')).body.status.sentry;
    const end = Date.now() + 10_000;
    while ((await status()).failed !== 1) {
      if (Date.now() > end) throw new Error(`not failed: ${JSON.stringify(await status())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await status()).last_error).toMatch(/target refused/);
    expect(connections).toBe(0);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
