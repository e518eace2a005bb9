import { connect } from 'node:net';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, call, qs, startEngine, type TestEngine } from '../../test/helpers.js';
import { authPlugin } from '../auth/http.js';
import { installErrorHandler } from '../http/errors.js';
import { exportText, exportWindows } from './export.js';
import { CSV_COLUMNS } from './csv.js';
import { auditRoutes, MAX_CONCURRENT_EXPORTS } from './http.js';

let t: TestEngine;
let keyA: string;
const P = 'pf_audit';
const T = Date.parse('2025-07-25T09:00:00Z');

const base = { project_id: P, engine: 'execution', status: 'success' };
const EVENTS = [
  { ...base, user_id: 'alice', flow_id: 'f1', action: 'login', engine: 'vault', timestamp: T, client_ip: '203.0.113.5' },
  { ...base, user_id: 'alice', flow_id: 'f1', action: 'send_message', platform: 'Slack', timestamp: T + 1000, ip: '203.0.113.5' },
  { ...base, user_id: 'bob', flow_id: 'f2', action: 'create_page', platform: 'Notion', timestamp: T + 2000, attributes: { remote_addr: '2001:db8::7' } },
  { ...base, user_id: 'alice', flow_id: 'f1', action: 'send_message', platform: 'Slack', status: 'error', error_type: 'token_expired', message: 'Slack token expired', timestamp: T + 3000 },
  {
    project_id: P, event_type: 'config_change', engine: 'platform_builder', user_id: 'bob', flow_id: 'f1', timestamp: T + 4000,
    message: 'changed the Slack step', target: 'slack_step', before: { channel: '#sales', timeout: 30 }, after: { channel: '#sales-eu', timeout: 30, retries: 2 },
  },
  { ...base, user_id: 'carol', flow_id: 'f2', action: 'charge', platform: 'Stripe', timestamp: T + 5000, message: '=HYPERLINK("http://evil","x")' },
  { ...base, user_id: 'carol', flow_id: 'f2', action: 'charge', platform: 'Stripe', timestamp: T + 6000, message: 'line one\nline "two", three' },
];

beforeAll(async () => {
  t = await startEngine();
  keyA = (await t.engine.keys.create({ name: 'a', scopes: ['read', 'ingest'], project_id: 'pf_a' })).token;
  // posted newest first: the timeline must still come back in time order
  expect((await call(t.url, 'POST', '/monitoring/logs', { body: [...EVENTS].reverse() })).body.accepted).toBe(EVENTS.length);
  expect((await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_a', user_id: 'alice', action: 'login', timestamp: T } })).body.accepted).toBe(1);
  // a bulk project for the export checks
  const bulk = Array.from({ length: 3000 }, (_, i) => ({
    project_id: 'pf_bulk', user_id: `u${i % 7}`, action: 'step', seq: i, timestamp: T + Math.floor(i / 3) * 1000, message: i % 100 === 0 ? '-1 balance, "odd"' : `step ${i}`,
  }));
  expect((await call(t.url, 'POST', '/monitoring/logs', { body: bulk })).body.accepted).toBe(3000);
  // ~12 MB of export: more than the socket buffers hold, for the stalled-client checks
  const big = Array.from({ length: 3000 }, (_, i) => ({ project_id: 'pf_big', seq: i, timestamp: T + i, message: `${i} ${'x'.repeat(4000)}` }));
  for (let i = 0; i < big.length; i += 750) {
    expect((await call(t.url, 'POST', '/monitoring/logs', { body: big.slice(i, i + 750) })).body.accepted).toBe(750);
  }
});
afterAll(async () => {
  await t.close();
});

const audit = (params: Record<string, string | number | undefined>, token?: string) =>
  call(t.url, 'GET', `/monitoring/audit?${qs(params)}`, { token });

describe('GET /monitoring/audit', () => {
  it('is a timeline per project, in time order: who, what, when, from where, outcome', async () => {
    const r = await audit({ project_id: P });
    expect(r.status).toBe(200);
    expect(r.body.timeline.map((e: any) => e.when)).toEqual(EVENTS.map((e) => new Date(e.timestamp).toISOString()));
    expect(r.body.timeline[0]).toMatchObject({
      project_id: P, who: { user_id: 'alice' }, what: { event_type: 'log', action: 'login', flow_id: 'f1' },
      from: { engine: 'vault', address: '203.0.113.5' }, outcome: { status: 'success', error: null },
    });
    expect(r.body.timeline[1].from.address).toBe('203.0.113.5'); // sent as "ip"
    expect(r.body.timeline[2].from.address).toBe('2001:db8::7'); // sent as remote_addr
    expect(r.body.timeline[3].outcome).toMatchObject({ status: 'error', error: { error_type: 'token_expired', message: 'Slack token expired' } });
    expect(r.body.timeline[3].outcome.error.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(r.body.next_cursor).toBeNull();
  });

  it('is a timeline per user and per flow', async () => {
    const alice = await audit({ project_id: P, user_id: 'alice' });
    expect(alice.body.timeline.map((e: any) => e.what.action)).toEqual(['login', 'send_message', 'send_message']);
    const f2 = await audit({ project_id: P, flow_id: 'f2' });
    expect(f2.body.timeline.map((e: any) => [e.who.user_id, e.what.action])).toEqual([['bob', 'create_page'], ['carol', 'charge'], ['carol', 'charge']]);
    // a user across every project the caller may read (admin: all)
    const everywhere = await audit({ user_id: 'alice' });
    expect(everywhere.body.timeline.map((e: any) => e.project_id).sort()).toEqual(['pf_a', P, P, P].sort());
  });

  it('shows config changes with the difference between before and after', async () => {
    const r = await audit({ project_id: P, event_type: 'config_change' });
    expect(r.body.timeline).toHaveLength(1);
    expect(r.body.timeline[0].change).toEqual({
      kind: 'config_change', target: 'slack_step', version: null, summary: 'changed the Slack step',
      before: { channel: '#sales', timeout: 30 }, after: { channel: '#sales-eu', timeout: 30, retries: 2 },
      diff: [
        { path: 'channel', op: 'changed', before: '#sales', after: '#sales-eu' },
        { path: 'retries', op: 'added', after: 2 },
      ],
    });
    expect(r.body.timeline[0].who.user_id).toBe('bob');
  });

  it('pages by cursor in either order without skipping or repeating', async () => {
    for (const order of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const r = await audit({ project_id: P, limit: 3, order, cursor });
        expect(r.status).toBe(200);
        seen.push(...r.body.timeline.map((e: any) => e.when));
        cursor = r.body.next_cursor ?? undefined;
      } while (cursor);
      const expected = EVENTS.map((e) => new Date(e.timestamp).toISOString());
      expect(seen).toEqual(order === 'asc' ? expected : expected.reverse());
    }
  });

  it('validates every parameter', async () => {
    for (const [params, field] of [
      [{ project_id: P, colour: 'red' }, 'colour'],
      [{ project_id: P, from: 'monday' }, 'from'],
      [{ project_id: P, limit: 0 }, 'limit'],
      [{ project_id: P, order: 'up' }, 'order'],
      [{ project_id: P, cursor: '!!' }, 'cursor'],
    ] as const) {
      const r = await audit(params as Record<string, string | number>);
      expect(r.status, JSON.stringify(params)).toBe(400);
      expect(r.body.error.details.errors.map((e: any) => e.field)).toContain(field);
    }
  });

  it('a key for one project never sees another', async () => {
    expect((await audit({ project_id: P }, keyA)).status).toBe(403);
    const own = await audit({ user_id: 'alice' }, keyA);
    expect(own.body.timeline.map((e: any) => e.project_id)).toEqual(['pf_a']);
    const exp = await call(t.url, 'GET', `/monitoring/audit/export?${qs({ project_id: P })}`, { token: keyA });
    expect(exp.status).toBe(403);
    const ownExport = await call(t.url, 'GET', '/monitoring/audit/export', { token: keyA });
    expect(ownExport.body.project_id).toBe('pf_a'); // one NDJSON line, parsed by the helper
  });
});

describe('GET /monitoring/audit/export', () => {
  it('streams NDJSON timeline entries as an attachment', async () => {
    const r = await fetch(`${t.url}/monitoring/audit/export?${qs({ project_id: P, format: 'ndjson' })}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(r.headers.get('content-disposition')).toMatch(/^attachment; filename="audit-pf_audit-\d{8}T\d{6}Z\.ndjson"$/);
    const lines = (await r.text()).trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.when)).toEqual(EVENTS.map((e) => new Date(e.timestamp).toISOString()));
    expect(lines[4].change.diff).toHaveLength(2);
  });

  it('streams RFC 4180 CSV with formula cells guarded', async () => {
    const r = await fetch(`${t.url}/monitoring/audit/export?${qs({ project_id: P, format: 'csv', flow_id: 'f2' })}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(r.headers.get('content-disposition')).toMatch(/\.csv"$/);
    const text = await r.text();
    const records = parseCsv(text);
    expect(records[0]).toEqual([...CSV_COLUMNS]);
    expect(records).toHaveLength(4);
    const msg = CSV_COLUMNS.indexOf('message');
    expect(records[2][msg]).toBe('\'=HYPERLINK("http://evil","x")');
    expect(records[3][msg]).toBe('line one\nline "two", three');
    expect(records[1][CSV_COLUMNS.indexOf('client_address')]).toBe('2001:db8::7');
    expect(text.endsWith('\r\n')).toBe(true);
  });

  it('exports every matching event in order, over several windows when the range is large', async () => {
    const filter = { projects: ['pf_bulk'], eq: {}, attrs: [] };
    const plan = await exportWindows(t.engine.events, filter, 250);
    expect(plan.rows).toBe(3000);
    expect(plan.windows.length).toBeGreaterThanOrEqual(12);
    let text = '';
    for await (const piece of exportText(t.engine.events, filter, 'ndjson', plan.windows)) text += piece;
    const seqs = text.trimEnd().split('\n').map((l) => Number(JSON.parse(l).attributes.seq));
    expect(seqs).toHaveLength(3000);
    expect(seqs.map((s) => Math.floor(s / 3))).toEqual(Array.from({ length: 3000 }, (_, i) => Math.floor(i / 3)));
    // buckets holding more than a window are refined down to milliseconds (3 events share each one here)
    const dense = await exportWindows(t.engine.events, { ...filter, from: T, to: T + 20_000 }, 2);
    expect(dense.rows).toBe(60);
    expect(dense.windows.length).toBe(40); // [s, s+1 ms) and [s+1 ms, next s) for each of the 20 seconds
    expect(dense.windows[0].from).toBe(T);
    expect(dense.windows.at(-1)!.to).toBe(T + 20_000);
    dense.windows.slice(1).forEach((w, i) => expect(w.from).toBe(dense.windows[i].to));
    let denseRows = 0;
    for await (const piece of exportText(t.engine.events, { ...filter, from: T, to: T + 20_000 }, 'ndjson', dense.windows, { pageRows: 2 })) {
      denseRows += piece.trimEnd().split('\n').length;
    }
    expect(denseRows).toBe(60);
    // the HTTP export of the same range, as CSV
    const r = await fetch(`${t.url}/monitoring/audit/export?${qs({ project_id: 'pf_bulk', format: 'csv' })}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(r.headers.get('x-export-rows')).toBe('3000');
    const records = parseCsv(await r.text());
    expect(records).toHaveLength(3001);
    const messages = records.map((r) => r[CSV_COLUMNS.indexOf('message')]);
    expect(messages.filter((m) => m === '\'-1 balance, "odd"')).toHaveLength(30);
  });

  it('rejects a bad format or unknown parameter before it starts', async () => {
    const bad = await call(t.url, 'GET', `/monitoring/audit/export?${qs({ project_id: P, format: 'xlsx' })}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.errors[0].field).toBe('format');
    expect((await call(t.url, 'GET', `/monitoring/audit/export?${qs({ project_id: P, cursor: 'x' })}`)).status).toBe(400);
  });

  it('stops reading storage when the client goes away', async () => {
    const ac = new AbortController();
    const r = await fetch(`${t.url}/monitoring/audit/export?${qs({ project_id: 'pf_bulk' })}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: ac.signal });
    const reader = r.body!.getReader();
    await reader.read();
    ac.abort();
    // the engine is still answering and a new export runs to the end
    const again = await fetch(`${t.url}/monitoring/audit/export?${qs({ project_id: P })}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect((await again.text()).trimEnd().split('\n')).toHaveLength(EVENTS.length);
  });
});

describe('exports and slow clients', () => {
  it('closes an export whose client stopped reading, and refuses more than the concurrent limit', async () => {
    // the audit routes on their own app, with a short stall limit
    const app = Fastify();
    installErrorHandler(app);
    await app.register(authPlugin, { keys: t.engine.keys });
    await app.register(auditRoutes, { events: t.engine.events, limiter: t.engine.limiter, exportStallMs: 800 });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const port = Number(new URL(url).port);
    const serverSide = new Map<number, import('node:net').Socket>();
    app.server.on('connection', (s: import('node:net').Socket) => serverSide.set(s.remotePort!, s));
    try {
      // clients that ask for an export and never read it
      const stalled = await Promise.all(Array.from({ length: MAX_CONCURRENT_EXPORTS }, () => new Promise<import('node:net').Socket>((resolve) => {
        const s = connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', () => undefined);
        s.write(`GET /monitoring/audit/export?project_id=pf_big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\n`);
        s.pause();
      })));
      await new Promise((r) => setTimeout(r, 300));
      const refused = await call(url, 'GET', `/monitoring/audit/export?${qs({ project_id: P })}`);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('10');
      // three go away; the engine closes the one still connected once it has stalled
      for (const s of stalled.slice(1)) s.destroy();
      const held = serverSide.get(stalled[0].localPort!)!;
      expect(held.destroyed).toBe(false);
      const started = Date.now();
      await new Promise((r) => (held.destroyed ? r(null) : held.once('close', r)));
      expect(Date.now() - started).toBeLessThan(5000);
      stalled[0].destroy();
      // and the next export runs to the end
      const again = await fetch(`${url}/monitoring/audit/export?${qs({ project_id: P })}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect((await again.text()).trimEnd().split('\n')).toHaveLength(EVENTS.length);
    } finally {
      app.server.closeAllConnections();
      await app.close();
    }
  });
});

/** A strict RFC 4180 reader for the checks above. */
function parseCsv(text: string): string[][] {
  const out: string[][] = [];
  let rec: string[] = [];
  let i = 0;
  while (i < text.length) {
    let cell = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (text[i] === '"' && text[i + 1] === '"') { cell += '"'; i += 2; } else if (text[i] === '"') { i++; break; } else cell += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r') cell += text[i++];
    }
    rec.push(cell);
    if (text[i] === ',') i++;
    else if (text[i] === '\r' && text[i + 1] === '\n') {
      i += 2;
      out.push(rec);
      rec = [];
    } else if (i < text.length) throw new Error(`bad CSV at ${i}`);
  }
  if (rec.length) out.push(rec);
  return out;
}
