// SSRF: channel targets are checked when a channel is created or changed (not only when an alert is
// due), and a delivery connects to the address that was checked. No request here leaves loopback:
// refused targets are refused without connecting, and the allowed public literal is never sent to.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { call, startEngine, type TestEngine } from '../../test/helpers.js';
import { postJson } from './channels/webhook.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startEngine({ MONITORING_ALLOW_PRIVATE_WEBHOOKS: 'false' });
});
afterAll(async () => {
  await t.close();
});

const REFUSED: [type: string, config: Record<string, unknown>, field: string][] = [
  ['webhook', { url: 'http://169.254.169.254/latest/meta-data/' }, 'config.url'],
  ['webhook', { url: 'http://10.1.2.3/hook' }, 'config.url'],
  ['webhook', { url: 'http://0x7f000001/hook' }, 'config.url'],
  ['webhook', { url: 'http://2130706433/hook' }, 'config.url'],
  ['webhook', { url: 'http://[::ffff:7f00:1]/hook' }, 'config.url'],
  ['webhook', { url: 'http://[::ffff:169.254.169.254]/' }, 'config.url'],
  ['webhook', { url: 'http://[fe80::1]/' }, 'config.url'],
  ['webhook', { url: 'http://localhost:8080/' }, 'config.url'],
  ['feedback_loop', { url: 'http://192.168.0.10/feedback' }, 'config.url'],
  ['slack', { webhook_url: 'http://127.0.0.1:9/services/x' }, 'config.webhook_url'],
  ['email', { host: '127.0.0.1', port: 25, from: 'a@example.com', to: ['b@example.com'] }, 'config.host'],
];

describe('channel targets', () => {
  it.each(REFUSED)('refuses a %s channel to %j at creation, naming the field', async (type, config, field) => {
    const r = await call(t.url, 'POST', '/monitoring/channels', { body: { name: 'x', type, project_id: 'pf_ssrf', config } });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error.details.errors.map((e: any) => e.field)).toContain(field);
  });

  it('refuses the same targets on update (PUT and PATCH), keeping the stored channel', async () => {
    // a public literal is allowed (and never sent to here)
    const c = await call(t.url, 'POST', '/monitoring/channels', { body: { name: 'pub', type: 'webhook', project_id: 'pf_ssrf', config: { url: 'https://8.8.8.8/hook' } } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    for (const url of ['http://169.254.169.254/', 'http://0x7f000001/', 'http://10.0.0.1/']) {
      const p = await call(t.url, 'PATCH', `/monitoring/channels/${c.body.id}`, { body: { config: { url } } });
      expect(p.status).toBe(400);
      expect(p.body.error.details.errors[0].field).toBe('config.url');
      const put = await call(t.url, 'PUT', `/monitoring/channels/${c.body.id}`, { body: { name: 'pub', type: 'webhook', config: { url } } });
      expect(put.status).toBe(400);
    }
    const now = await call(t.url, 'GET', `/monitoring/channels/${c.body.id}`);
    expect(now.body.config.url).toMatch(/^https:\/\/8\.8\.8\.8/);
  });
});

describe('pinned delivery', () => {
  it('connects to the checked address, whatever the name resolves to now, and keeps the Host header', async () => {
    const seen: { host?: string; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ host: req.headers.host, body });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      // `.invalid` never resolves: the request can only arrive through the pinned address
      const res = await postJson(`http://hooks.example.invalid:${port}/h`, '{"a":1}', { pinned: { address: '127.0.0.1', family: 4 }, timeoutMs: 2000 });
      expect(res).toMatchObject({ ok: true, status: 200 });
      expect(seen).toEqual([{ host: `hooks.example.invalid:${port}`, body: '{"a":1}' }]);
    } finally {
      server.close();
    }
  });
});
