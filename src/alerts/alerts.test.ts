// The Alerts Dispatcher end to end: a real engine, real receivers on loopback (an HTTP server standing
// in for Slack, webhooks and the Feedback Loop engine; smtp-server for e-mail), every rule kind,
// floods, repeats, resolves, silences, retries, HMAC, POST /monitoring/alert and in-app notifications.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, qs, removeDir, startEngine, sleep, until, type TestEngine } from '../../test/helpers.js';
import { verifySignature } from './channels/index.js';

// ---- receivers ----------------------------------------------------------------------------

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  json: any;
  status: number;
  at: number;
}

interface Receiver {
  url: string;
  all: Received[];
  /** Requests to a path (any answer). */
  at(path: string): Received[];
  /** Requests to a path that were answered 2xx: the deliveries. */
  ok(path: string): Received[];
  /** The next answers for a path, e.g. [500, 503]; then 200. */
  plan(path: string, answers: { status: number; headers?: Record<string, string> }[]): void;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const all: Received[] = [];
  const plans = new Map<string, { status: number; headers?: Record<string, string> }[]>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '').split('?')[0];
      const next = plans.get(path)?.shift() ?? { status: 200 };
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        json = undefined;
      }
      all.push({ path, headers: req.headers, raw, json, status: next.status, at: Date.now() });
      res.writeHead(next.status, next.headers ?? {}).end(next.status < 300 ? 'ok' : 'not now');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    all,
    at: (p) => all.filter((r) => r.path === p),
    ok: (p) => all.filter((r) => r.path === p && r.status < 300),
    plan: (p, a) => plans.set(p, [...a]),
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

interface Mail {
  raw: string;
  to: string[];
}

async function startSmtp(): Promise<{ server: SMTPServer; port: number; mails: Mail[] }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ raw: Buffer.concat(chunks).toString('utf8'), to: session.envelope.rcptTo.map((r) => r.address) });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.server.address() as AddressInfo).port, mails };
}

/** Headers of a raw mail, unfolded and lower-cased. */
function mailHeaders(raw: string): Map<string, string> {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  const out = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    out.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return out;
}

function decodeWords(v: string): string {
  return v.replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=(\s+(?==\?))?/g, (_m, _cs, enc: string, text: string) => {
    if (enc.toUpperCase() === 'B') return Buffer.from(text, 'base64').toString('utf8');
    const bytes = text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  });
}

/** Structural Block Kit check with Slack's documented limits. */
function expectBlockKit(msg: any): void {
  expect(typeof msg.text).toBe('string');
  expect(msg.text.length).toBeGreaterThan(0);
  expect(Array.isArray(msg.blocks)).toBe(true);
  expect(msg.blocks.length).toBeGreaterThan(0);
  expect(msg.blocks.length).toBeLessThanOrEqual(50);
  const text = (t: any, types: string[], max: number) => {
    expect(types).toContain(t.type);
    expect(typeof t.text).toBe('string');
    expect(t.text.length).toBeGreaterThan(0);
    expect(t.text.length).toBeLessThanOrEqual(max);
  };
  for (const b of msg.blocks) {
    expect(['header', 'section', 'context', 'actions', 'divider']).toContain(b.type);
    if (b.type === 'header') text(b.text, ['plain_text'], 150);
    if (b.type === 'section') {
      expect(b.text !== undefined || b.fields !== undefined).toBe(true);
      if (b.text) text(b.text, ['plain_text', 'mrkdwn'], 3000);
      for (const f of b.fields ?? []) text(f, ['plain_text', 'mrkdwn'], 2000);
      expect((b.fields ?? []).length).toBeLessThanOrEqual(10);
    }
    if (b.type === 'context') for (const e of b.elements) text(e, ['plain_text', 'mrkdwn'], 2000);
    if (b.type === 'actions') {
      for (const e of b.elements) {
        expect(e.type).toBe('button');
        text(e.text, ['plain_text'], 75);
        expect(e.url).toMatch(/^https?:\/\//);
        expect(typeof e.action_id).toBe('string');
      }
    }
  }
}

// ---- engine + helpers ---------------------------------------------------------------------

const TICK_MS = 200;
let t: TestEngine;
let rx: Receiver;
let smtp: Awaited<ReturnType<typeof startSmtp>>;

beforeAll(async () => {
  [rx, smtp] = await Promise.all([startReceiver(), startSmtp()]);
  t = await startEngine({
    MONITORING_ALERT_EVAL_INTERVAL_MS: String(TICK_MS),
    MONITORING_ALERT_RETRY_BASE_MS: '100',
    MONITORING_ALERT_SEND_TIMEOUT_MS: '2000',
    MONITORING_PUBLIC_URL: 'https://monitor.puraify.test/',
  });
});
afterAll(async () => {
  await t?.close();
  if (t) removeDir(t.dataDir);
  await rx?.close();
  await new Promise<void>((r) => (smtp ? smtp.server.close(() => r()) : r()));
});

/** Lets a few evaluation passes run (for "and nothing else happened" checks). */
const settle = (ticks = 4) => sleep(TICK_MS * ticks);

async function channel(project: string | null, name: string, type: string, config: unknown, extra: Record<string, unknown> = {}, token?: string): Promise<string> {
  const res = await call(t.url, 'POST', '/monitoring/channels', { token, body: { name, type, config, ...(project ? { project_id: project } : {}), ...extra } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function rule(body: Record<string, unknown>, token?: string): Promise<string> {
  const res = await call(t.url, 'POST', '/monitoring/alert-rules', { token, body: { severity: 'critical', ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function send(events: Record<string, unknown>[] | Record<string, unknown>): Promise<void> {
  const res = await call(t.url, 'POST', '/monitoring/logs', { body: events });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

async function alerts(params: Record<string, string>): Promise<any[]> {
  const res = await call(t.url, 'GET', `/monitoring/alerts?${qs(params)}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.alerts;
}

async function projectKey(project: string, scopes: ('ingest' | 'read' | 'admin')[]): Promise<string> {
  return (await t.engine.keys.create({ name: `k-${project}-${scopes.join('')}`, scopes, project_id: project })).token;
}

// ---- channels -----------------------------------------------------------------------------

describe('channels', () => {
  it('stores secrets but never returns them in full; a masked round trip keeps them; test sends', async () => {
    const url = `${rx.url}/slack/T000/B000/very-secret-path-token`;
    const res = await call(t.url, 'POST', '/monitoring/channels', { body: { project_id: 'pf_ch', name: 'ops-slack', type: 'slack', config: { webhook_url: url } } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: expect.stringMatching(/^ch_/), project_id: 'pf_ch', name: 'ops-slack', type: 'slack', default: false });
    expect(JSON.stringify(res.body)).not.toContain('very-secret-path-token');
    const id = res.body.id;

    const list = await call(t.url, 'GET', '/monitoring/channels?project_id=pf_ch');
    expect(list.body.channels.map((c: any) => c.id)).toEqual([id]);
    expect(JSON.stringify(list.body)).not.toContain('very-secret-path-token');

    // sending the masked config back (as a UI would) keeps the stored URL
    const put = await call(t.url, 'PUT', `/monitoring/channels/${id}`, { body: { name: 'ops-slack-2', type: 'slack', config: res.body.config } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.name).toBe('ops-slack-2');

    const test = await call(t.url, 'POST', `/monitoring/channels/${id}/test`);
    expect(test.status).toBe(200);
    expect(test.body).toMatchObject({ ok: true, status: 200 });
    const got = rx.at('/slack/T000/B000/very-secret-path-token');
    expect(got).toHaveLength(1);
    expectBlockKit(got[0].json);
    expect(got[0].json.blocks[0].text.text).toMatch(/Test/);

    const mail = await call(t.url, 'POST', '/monitoring/channels', { body: {
      project_id: 'pf_ch', name: 'mail', type: 'email',
      config: { host: '127.0.0.1', port: smtp.port, from: 'alerts@puraify.test', to: ['ops@example.com'], user: 'u', password: 'correct-horse-battery-staple' },
    } });
    expect(mail.status).toBe(201);
    expect(mail.body.config.password).toBe('***le');
  });

  it('refuses invalid channels with the field named', async () => {
    const bad = async (body: unknown) => {
      const res = await call(t.url, 'POST', '/monitoring/channels', { body });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      return res.body.error.details.errors[0].field;
    };
    expect(await bad({ name: 'x', type: 'pager', config: {} })).toBe('type');
    expect(await bad({ name: 'x', type: 'webhook', config: { url: 'ftp://example.com/x' } })).toBe('config.url');
    expect(await bad({ name: 'x', type: 'webhook', config: { url: 'http://u:p@example.com/x' } })).toBe('config.url');
    expect(await bad({ name: 'x', type: 'email', config: { host: 'h', port: 25, from: 'a@b.test', to: [] } })).toBe('config.to');
    expect(await bad({ type: 'ui', config: {} })).toBe('name');
    expect(await bad({ name: 'x', type: 'ui', config: {}, colour: 'red' })).toBe('colour');
  });
});

// ---- rules: validation and tenancy --------------------------------------------------------

describe('rules', () => {
  it('invalid rules get a 400 naming the field', async () => {
    const bad = async (body: Record<string, unknown>) => {
      const res = await call(t.url, 'POST', '/monitoring/alert-rules', { body: { name: 'r', channels: [], severity: 'high', project_id: 'pf_rv', ...body } });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      return res.body.error.details.errors.map((e: any) => e.field);
    };
    expect(await bad({ kind: 'threshold' })).toEqual(['threshold']);
    expect(await bad({ kind: 'error_rate', threshold: 5 })).toEqual(['threshold']);
    expect(await bad({ kind: 'event', filter: { colour: 'red' } })).toEqual(['filter.colour']);
    expect(await bad({ kind: 'event', window_s: -1 })).toEqual(['window_s']);
    expect(await bad({ kind: 'sometimes' })).toEqual(['kind']);
    expect(await bad({ kind: 'event', channels: ['ch_missing'] })).toEqual(['channels.0']);
    const res = await call(t.url, 'POST', '/monitoring/alert-rules', { body: { name: 'r', kind: 'threshold', channels: [], severity: 'high' } });
    expect(res.body.error.message).toBe('threshold: is required for kind threshold');
  });

  it('a project key manages its own project only, with its own channels', async () => {
    const key = await projectKey('pf_ten_a', ['admin']);
    const readKey = await projectKey('pf_ten_a', ['read']);
    const own = await channel(null, 'a-hook', 'webhook', { url: `${rx.url}/ten-a` }, {}, key);
    const other = await channel('pf_ten_b', 'b-hook', 'webhook', { url: `${rx.url}/ten-b` });
    const global = await channel(null, 'global-hook', 'webhook', { url: `${rx.url}/global` });

    // the key's project is the default
    const created = await call(t.url, 'POST', '/monitoring/alert-rules', { token: key, body: { name: 'mine', kind: 'event', channels: [own], severity: 'high' } });
    expect(created.status).toBe(201);
    expect(created.body.project_id).toBe('pf_ten_a');
    const forB = await call(t.url, 'POST', '/monitoring/alert-rules', { token: key, body: { name: 'b', project_id: 'pf_ten_b', kind: 'event', channels: [], severity: 'high' } });
    expect(forB.status).toBe(403);
    for (const ch of [other, global]) {
      const res = await call(t.url, 'POST', '/monitoring/alert-rules', { token: key, body: { name: 'x', kind: 'event', channels: [ch], severity: 'high' } });
      expect(res.status).toBe(400);
      expect(res.body.error.details.errors[0]).toEqual({ field: 'channels.0', message: `no channel ${ch}` });
    }
    // the admin token may not send a project's alerts to another project's channel either
    const cross = await call(t.url, 'POST', '/monitoring/alert-rules', { body: { name: 'x', project_id: 'pf_ten_a', kind: 'event', channels: [other], severity: 'high' } });
    expect(cross.status).toBe(400);
    expect(cross.body.error.details.errors[0].field).toBe('channels.0');
    const bRule = await rule({ name: 'b-rule', project_id: 'pf_ten_b', kind: 'event', channels: [other] });

    const listed = await call(t.url, 'GET', '/monitoring/alert-rules', { token: key });
    expect(listed.body.rules.map((r: any) => r.name)).toEqual(['mine']);
    expect((await call(t.url, 'GET', `/monitoring/alert-rules/${bRule}`, { token: key })).status).toBe(404);
    expect((await call(t.url, 'DELETE', `/monitoring/alert-rules/${bRule}`, { token: key })).status).toBe(404);
    expect((await call(t.url, 'GET', '/monitoring/channels', { token: key })).body.channels.map((c: any) => c.id)).toEqual([own]);
    expect((await call(t.url, 'GET', '/monitoring/alert-rules?project_id=pf_ten_b', { token: key })).status).toBe(403);
    // read scope is not enough to change the policy
    expect((await call(t.url, 'POST', '/monitoring/alert-rules', { token: readKey, body: { name: 'r', kind: 'event', channels: [], severity: 'high' } })).status).toBe(403);

    // PATCH changes what it names; a channel in use cannot be deleted
    const patched = await call(t.url, 'PATCH', `/monitoring/alert-rules/${created.body.id}`, { token: key, body: { enabled: false, filter: { engine: 'vault' } } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ enabled: false, filter: { engine: 'vault' }, channels: [own], project_id: 'pf_ten_a' });
    expect((await call(t.url, 'DELETE', `/monitoring/channels/${own}`, { token: key })).status).toBe(409);
    expect((await call(t.url, 'DELETE', `/monitoring/alert-rules/${created.body.id}`, { token: key })).status).toBe(204);
    expect((await call(t.url, 'DELETE', `/monitoring/channels/${own}`, { token: key })).status).toBe(204);

    // every change is in the audit trail
    const audit = await until('audit events', async () => {
      const r = await call(t.url, 'GET', `/monitoring/logs?${qs({ project_id: 'pf_ten_a', event_type: 'audit', limit: 50 })}`);
      return r.body.logs.length >= 5 ? r.body.logs : undefined;
    });
    const actions = audit.map((l: any) => `${l.action} ${l.attributes.target_kind}`).sort();
    expect(actions).toEqual(['create alert_channel', 'create alert_rule', 'delete alert_channel', 'delete alert_rule', 'update alert_rule']);
  });
});

// ---- instant rules, floods, repeats, resolves ---------------------------------------------

describe('event rules', () => {
  it('fire on a match with a valid Block Kit message, not on other events; a flood of 10,000 makes one notification', async () => {
    const ch = await channel('pf_flood', 'flood-slack', 'slack', { webhook_url: `${rx.url}/slack/flood` });
    const r = await rule({ name: 'Critical errors', project_id: 'pf_flood', kind: 'event', filter: { severity: 'critical' }, group_by: ['engine'], channels: [ch] });
    await send([{ project_id: 'pf_flood', engine: 'execution', severity: 'high', message: 'not critical' }, { project_id: 'pf_other', engine: 'execution', severity: 'critical', message: 'other project' }]);
    await settle(2);
    expect(rx.at('/slack/flood')).toHaveLength(0);

    const batch = (i: number) => Array.from({ length: 500 }, (_, j) => ({
      project_id: 'pf_flood', engine: 'execution', severity: 'critical', platform: 'Slack', action: 'send_message',
      message: 'Failed to send message – token expired', error_type: 'token_expired', attributes: { n: i * 500 + j },
    }));
    await Promise.all(Array.from({ length: 20 }, (_, i) => send(batch(i))));
    const group = await until('the flood to be counted', async () => {
      const g = await call(t.url, 'GET', `/monitoring/alert-groups?${qs({ rule_id: r })}`);
      return g.body.groups[0]?.count === 10_000 ? g.body.groups[0] : undefined;
    });
    expect(group).toMatchObject({ state: 'firing', labels: { engine: 'execution' }, project_id: 'pf_flood' });
    await until('the slack message', () => rx.ok('/slack/flood').length >= 1);
    await settle();
    const got = rx.at('/slack/flood');
    expect(got).toHaveLength(1);
    const msg = got[0].json;
    expectBlockKit(msg);
    const history = await alerts({ rule_id: r });
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ state: 'firing', kind: 'firing', rule_name: 'Critical errors', project_id: 'pf_flood', labels: { engine: 'execution' } });
    expect(history[0].deliveries).toEqual([expect.objectContaining({ channel_id: ch, status: 'delivered', attempts: 1, last_error: null })]);
    expect(JSON.stringify(msg)).toContain(history[0].id);
    expect(msg.blocks[0].text.text).toContain('Failed to send message – token expired');
    const button = msg.blocks.find((b: any) => b.type === 'actions').elements[0];
    expect(button.url).toBe(`https://monitor.puraify.test/#/alerts?project=pf_flood&group=${history[0].group_id}`);
  });

  it('repeat: at most one per repeat_interval_s while firing, with the count so far', async () => {
    const ch = await channel('pf_rep', 'rep-hook', 'webhook', { url: `${rx.url}/rep` });
    const r = await rule({ name: 'repeating', project_id: 'pf_rep', kind: 'event', filter: { error_type: 'quota' }, channels: [ch], repeat_interval_s: 1, window_s: 60 });
    await send({ project_id: 'pf_rep', error_type: 'quota', message: 'quota exceeded' });
    await until('the first notification', () => rx.ok('/rep').length === 1);
    await send([1, 2, 3].map(() => ({ project_id: 'pf_rep', error_type: 'quota', message: 'quota exceeded' })));
    await until('the repeat', () => rx.ok('/rep').length === 2, 5000);
    const [first, second] = rx.ok('/rep');
    // when they were raised (receipt times also carry delivery latency)
    const raisedAt = async () => new Map((await alerts({ rule_id: r })).map((a) => [a.id, Date.parse(a.created_at)]));
    const raised = await raisedAt();
    expect(raised.get(second.json.notification_id)! - raised.get(first.json.notification_id)!).toBeGreaterThanOrEqual(1000);
    expect(first.json.notification).toMatchObject({ state: 'firing', count: 1 });
    expect(second.json.notification).toMatchObject({ state: 'firing', count: 4 });
    expect(second.json.notification_id).not.toBe(first.json.notification_id);
    // no more than one per second, even with new matches in between
    await send({ project_id: 'pf_rep', error_type: 'quota' });
    await sleep(1500);
    const all = await raisedAt();
    const times = rx.ok('/rep').map((x) => all.get(x.json.notification_id)!);
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(1000);
    expect(times.length).toBeLessThanOrEqual(4);
    const kinds = (await alerts({ rule_id: r })).map((a) => a.kind);
    expect(kinds.at(-1)).toBe('firing');
    expect(kinds.slice(0, -1).every((k) => k === 'repeat')).toBe(true);
    await call(t.url, 'DELETE', `/monitoring/alert-rules/${r}`);
  });

  it('resolved: one "resolved" notification when the group stops, only with send_resolved', async () => {
    const ch = await channel('pf_res', 'res-hook', 'webhook', { url: `${rx.url}/res` });
    const quiet = await channel('pf_res', 'quiet-hook', 'webhook', { url: `${rx.url}/res-quiet` });
    const resolving = await rule({ name: 'resolving', project_id: 'pf_res', kind: 'event', filter: { engine: 'vault' }, channels: [ch], window_s: 1 });
    await rule({ name: 'not resolving', project_id: 'pf_res', kind: 'event', filter: { engine: 'vault' }, channels: [quiet], window_s: 1, send_resolved: false });
    await send({ project_id: 'pf_res', engine: 'vault', status: 'error', message: 'vault sealed' });
    await until('the resolved notification', () => rx.ok('/res').length === 2, 6000);
    const [fire, res] = rx.ok('/res');
    expect(fire.json).toMatchObject({ event: 'alert.firing' });
    expect(res.json).toMatchObject({ event: 'alert.resolved', notification: { state: 'resolved', count: 1 } });
    const raised = new Map((await alerts({ rule_id: resolving })).map((a) => [a.id, Date.parse(a.created_at)]));
    // resolved only once window_s has passed since the last match (counted from when it was received;
    // the firing notification itself may be raised late on a busy machine)
    const [last] = (await call(t.url, 'GET', '/monitoring/logs?project_id=pf_res&limit=1')).body.logs;
    const receivedAt = typeof last.received_at === 'number' ? last.received_at : Date.parse(last.received_at);
    expect(raised.get(res.json.notification_id)! - receivedAt).toBeGreaterThanOrEqual(990);
    expect(raised.get(res.json.notification_id)!).toBeGreaterThan(raised.get(fire.json.notification_id)!);
    await settle();
    expect(rx.ok('/res')).toHaveLength(2);
    expect(rx.ok('/res-quiet')).toHaveLength(1);
    // it fires again as a new episode with a new id
    await send({ project_id: 'pf_res', engine: 'vault', status: 'error', message: 'vault sealed again' });
    await until('the second episode', () => rx.ok('/res').length === 3);
    expect(new Set(rx.ok('/res').map((x) => x.json.notification_id)).size).toBe(3);
  });
});

// ---- windowed rules -----------------------------------------------------------------------

describe('windowed rules', () => {
  it('threshold: fires for the group at or over the threshold, not for the one under', async () => {
    const ch = await channel('pf_thr', 'thr-hook', 'webhook', { url: `${rx.url}/thr` });
    const r = await rule({ name: 'timeouts', project_id: 'pf_thr', kind: 'threshold', threshold: 5, window_s: 60, filter: { error_type: 'api_timeout' }, group_by: ['platform'], channels: [ch] });
    const ev = (platform: string, error_type = 'api_timeout') => ({ project_id: 'pf_thr', platform, error_type, status: 'error' });
    await send([...Array(5).fill(ev('Slack')), ...Array(4).fill(ev('Notion')), ...Array(10).fill(ev('Notion', 'invalid_auth'))]);
    await until('the threshold alert', () => rx.ok('/thr').length >= 1);
    await settle();
    expect(rx.ok('/thr')).toHaveLength(1);
    const n = rx.ok('/thr')[0].json.notification;
    expect(n).toMatchObject({ labels: { platform: 'Slack' }, count: 5, state: 'firing' });
    expect(n.title).toBe('timeouts – 5 events in 1m');
    expect(n.summary).toContain('5 matching events in the last 1m (threshold 5)');
    const groups = (await call(t.url, 'GET', `/monitoring/alert-groups?rule_id=${r}`)).body.groups;
    expect(groups.map((g: any) => g.labels.platform)).toEqual(['Slack']);
  });

  it('error_rate: error share over the threshold with the minimum volume', async () => {
    const ch = await channel('pf_er', 'er-hook', 'webhook', { url: `${rx.url}/er` });
    await rule({ name: 'error rate', project_id: 'pf_er', kind: 'error_rate', threshold: 0.5, min_count: 10, window_s: 60, group_by: ['flow_id'], channels: [ch] });
    const evs = (flow: string, ok: number, bad: number) => [
      ...Array.from({ length: ok }, () => ({ project_id: 'pf_er', flow_id: flow, status: 'success' })),
      ...Array.from({ length: bad }, () => ({ project_id: 'pf_er', flow_id: flow, status: 'error' })),
    ];
    await send([...evs('flow_a', 8, 12), ...evs('flow_b', 15, 5), ...evs('flow_c', 0, 4)]);
    await until('the error-rate alert', () => rx.ok('/er').length >= 1);
    await settle();
    expect(rx.ok('/er').map((x) => x.json.notification.labels.flow_id)).toEqual(['flow_a']);
    expect(rx.ok('/er')[0].json.notification.summary).toContain('error rate 60% (12 of 20)');
  });

  it('latency: p95 duration over the threshold', async () => {
    const ch = await channel('pf_lat', 'lat-hook', 'webhook', { url: `${rx.url}/lat` });
    await rule({ name: 'slow actions', project_id: 'pf_lat', kind: 'latency', threshold: 1000, min_count: 5, window_s: 60, group_by: ['action'], channels: [ch] });
    await send([
      ...Array.from({ length: 10 }, (_, i) => ({ project_id: 'pf_lat', action: 'slow', duration_ms: 1500 + i })),
      ...Array.from({ length: 20 }, (_, i) => ({ project_id: 'pf_lat', action: 'fast', duration_ms: 200 + i })),
      ...Array.from({ length: 3 }, () => ({ project_id: 'pf_lat', action: 'rare', duration_ms: 9000 })),
      ...Array.from({ length: 10 }, () => ({ project_id: 'pf_lat', action: 'untimed' })),
    ]);
    await until('the latency alert', () => rx.ok('/lat').length >= 1);
    await settle();
    expect(rx.ok('/lat').map((x) => x.json.notification.labels.action)).toEqual(['slow']);
    expect(rx.ok('/lat')[0].json.notification.summary).toMatch(/p95 duration 15\d\d ms/);
  });

  it('spike: the count over the window against its baseline', async () => {
    const ch = await channel('pf_spk', 'spk-hook', 'webhook', { url: `${rx.url}/spk` });
    await rule({ name: 'spikes', project_id: 'pf_spk', kind: 'spike', threshold: 3, min_count: 5, window_s: 10, baseline_window_s: 100, group_by: ['engine'], channels: [ch] });
    const now = Date.now();
    const past = (engine: string, n: number) => Array.from({ length: n }, (_, i) => ({ project_id: 'pf_spk', engine, timestamp: now - 15_000 - i * 2000 }));
    const recent = (engine: string, n: number) => Array.from({ length: n }, () => ({ project_id: 'pf_spk', engine }));
    // a: baseline 2 per window, 10 now (5×) · b: baseline 4 per window, 10 now (2.5×) · c: 3 now, under the minimum
    await send([...past('a', 20), ...recent('a', 10), ...past('b', 40), ...recent('b', 10), ...recent('c', 3)]);
    await until('the spike alert', () => rx.ok('/spk').length >= 1);
    await settle();
    expect(rx.ok('/spk').map((x) => x.json.notification.labels.engine)).toEqual(['a']);
    expect(rx.ok('/spk')[0].json.notification.summary).toContain('5× the baseline of 2 per 10s');
  });
});

// ---- aggregator signals -------------------------------------------------------------------

describe('new_group and regression', () => {
  it('a never-seen fingerprint fires new_group once; a resolved group happening again fires regression', async () => {
    const ch = await channel('pf_ng', 'ng-hook', 'webhook', { url: `${rx.url}/ng` });
    const rch = await channel('pf_ng', 'reg-hook', 'webhook', { url: `${rx.url}/reg` });
    await rule({ name: 'new errors', project_id: 'pf_ng', kind: 'new_group', channels: [ch] });
    await rule({ name: 'regressions', project_id: 'pf_ng', kind: 'regression', channels: [rch] });
    const err = { project_id: 'pf_ng', engine: 'execution', status: 'error', error_type: 'TypeError', message: 'Cannot read properties of undefined (reading "token")', stack: 'TypeError: Cannot read\n    at sendMessage (/app/slack.js:10:5)' };
    await send(err);
    await until('the new_group alert', () => rx.ok('/ng').length === 1);
    const n = rx.ok('/ng')[0].json.notification;
    expect(n.title).toContain('New error');
    const fp = n.labels.fingerprint;
    expect(fp).toMatch(/.+/);
    expect(n.link).toBe(`https://monitor.puraify.test/#/errors?project=pf_ng&fp=${encodeURIComponent(fp)}`);
    await send([err, err]);
    await settle();
    expect(rx.ok('/ng')).toHaveLength(1);
    expect(rx.ok('/reg')).toHaveLength(0);

    await t.engine.errorGroups.setState('pf_ng', fp, 'resolved', 'test');
    await sleep(5);
    await send(err);
    await until('the regression alert', () => rx.ok('/reg').length === 1);
    expect(rx.ok('/reg')[0].json.notification).toMatchObject({ rule_name: 'regressions', labels: { fingerprint: fp } });
    expect(rx.ok('/ng')).toHaveLength(1);
  });
});

// ---- silences -----------------------------------------------------------------------------

describe('silences', () => {
  it('silenced notifications are recorded as such and not sent; sent once the silence ends', async () => {
    const ch = await channel('pf_sil', 'sil-hook', 'webhook', { url: `${rx.url}/sil` });
    const r = await rule({ name: 'silenceable', project_id: 'pf_sil', kind: 'event', filter: { status: 'error' }, group_by: ['engine'], channels: [ch] });
    const bad = await call(t.url, 'POST', '/monitoring/silences', { body: { project_id: 'pf_sil', matchers: { colour: 'red' }, ends_at: Date.now() + 60_000 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.errors[0].field).toBe('matchers.colour');
    const s = await call(t.url, 'POST', '/monitoring/silences', { body: { project_id: 'pf_sil', matchers: { engine: 'vault' }, ends_at: new Date(Date.now() + 60_000).toISOString(), comment: 'maintenance' } });
    expect(s.status).toBe(201);
    expect(s.body).toMatchObject({ active: true, matchers: { engine: 'vault', project_id: 'pf_sil' }, comment: 'maintenance' });

    await send([{ project_id: 'pf_sil', engine: 'vault', status: 'error' }, { project_id: 'pf_sil', engine: 'execution', status: 'error' }]);
    await until('the unsilenced alert', () => rx.ok('/sil').length === 1);
    const silenced = await until('the silenced record', async () => (await alerts({ rule_id: r, state: 'silenced' }))[0]);
    expect(silenced).toMatchObject({ silence_id: s.body.id, labels: { engine: 'vault' }, deliveries: [] });
    await settle();
    expect(rx.ok('/sil').map((x) => x.json.notification.labels.engine)).toEqual(['execution']);

    // ending the silence lets the still-firing group through
    const ended = await call(t.url, 'DELETE', `/monitoring/silences/${s.body.id}`);
    expect(ended.body.active).toBe(false);
    await until('the group after the silence', () => rx.ok('/sil').length === 2);
    expect(rx.ok('/sil')[1].json.notification.labels.engine).toBe('vault');
    expect((await call(t.url, 'GET', '/monitoring/silences?project_id=pf_sil&active=false')).body.silences).toHaveLength(1);
  });
});

// ---- delivery: retries, give-up, HMAC, e-mail ---------------------------------------------

describe('delivery', () => {
  it('a receiver that fails twice then succeeds gets exactly one delivery; Retry-After is honoured; HMAC verifies', async () => {
    rx.plan('/flaky', [{ status: 500 }, { status: 429, headers: { 'retry-after': '1' } }]);
    const secret = 'whsec_flaky_0123456789';
    const ch = await channel('pf_flaky', 'flaky-hook', 'webhook', { url: `${rx.url}/flaky`, secret });
    const r = await rule({ name: 'flaky', project_id: 'pf_flaky', kind: 'event', channels: [ch] });
    await send({ project_id: 'pf_flaky', message: 'hello' });
    await until('the third attempt', () => rx.ok('/flaky').length === 1, 8000);
    const reqs = rx.at('/flaky');
    expect(reqs.map((x) => x.status)).toEqual([500, 429, 200]);
    expect(reqs[2].at - reqs[1].at).toBeGreaterThanOrEqual(950);
    const ids = new Set(reqs.map((x) => x.headers['x-puraify-notification-id']));
    expect(ids.size).toBe(1);
    for (const x of reqs) {
      expect(verifySignature(secret, x.headers['x-puraify-timestamp'] as string, x.raw, x.headers['x-puraify-signature'] as string, { toleranceSeconds: 300 })).toBe(true);
      expect(verifySignature('wrong-secret', x.headers['x-puraify-timestamp'] as string, x.raw, x.headers['x-puraify-signature'] as string)).toBe(false);
    }
    const [a] = await until('the delivered record', async () => {
      const l = await alerts({ rule_id: r });
      return l[0]?.deliveries[0]?.status === 'delivered' ? l : undefined;
    });
    expect(a.deliveries[0]).toMatchObject({ attempts: 3, status: 'delivered', last_error: null, last_status: 200 });
    expect(a.id).toBe([...ids][0]);
    await settle();
    expect(rx.ok('/flaky')).toHaveLength(1);
  });

  it('gives up on a 4xx and records why', async () => {
    rx.plan('/gone', [{ status: 404 }]);
    const ch = await channel('pf_gone', 'gone-hook', 'webhook', { url: `${rx.url}/gone` });
    const r = await rule({ name: 'gone', project_id: 'pf_gone', kind: 'event', channels: [ch] });
    await send({ project_id: 'pf_gone', message: 'hello' });
    const [a] = await until('the failed record', async () => {
      const l = await alerts({ rule_id: r });
      return l[0]?.deliveries[0]?.status === 'failed' ? l : undefined;
    });
    expect(a.deliveries[0]).toMatchObject({ attempts: 1, last_status: 404, last_error: expect.stringContaining('HTTP 404') });
    await settle();
    expect(rx.at('/gone')).toHaveLength(1);
  });

  it('e-mail arrives at a real SMTP server', async () => {
    const ch = await channel('pf_mail', 'oncall-mail', 'email', { host: '127.0.0.1', port: smtp.port, from: '"PURAIFY Alerts" <alerts@puraify.test>', to: ['oncall@example.com'] });
    await rule({ name: 'Token failures', project_id: 'pf_mail', kind: 'event', filter: { error_type: 'token_expired' }, channels: [ch] });
    const before = smtp.mails.length;
    await send({ project_id: 'pf_mail', error_type: 'token_expired', message: 'Failed to send message – token expired', platform: 'Slack' });
    const mail = await until('the mail', () => smtp.mails[before]);
    expect(mail.to).toEqual(['oncall@example.com']);
    const h = mailHeaders(mail.raw);
    expect(decodeWords(h.get('subject')!)).toBe('[CRITICAL] project pf_mail: Token failures – Failed to send message – token expired (Slack)');
    expect(h.get('x-puraify-notification-id')).toMatch(/^ntf_/);
  });
});

// ---- POST /monitoring/alert ---------------------------------------------------------------

describe('POST /monitoring/alert', () => {
  const ALERT = { project_id: 'pf_alert', event_type: 'error', severity: 'high', message: 'Failed to send message – token expired', triggered_by: 'execution_engine' };

  it('goes to the default channels when no rule matches and answers {id, notified, channels}', async () => {
    const none = await call(t.url, 'POST', '/monitoring/alert', { body: { ...ALERT, project_id: 'pf_alert_none' } });
    expect(none.body).toEqual({ id: expect.any(String), notified: false, channels: [] });
    await channel('pf_alert', 'in-app', 'ui', {}, { default: true });
    await channel('pf_alert', 'ops-hook', 'webhook', { url: `${rx.url}/alert-default` }, { default: true });
    await channel('pf_alert', 'not-default', 'webhook', { url: `${rx.url}/alert-not-default` });
    const res = await call(t.url, 'POST', '/monitoring/alert', { body: ALERT });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: expect.any(String), notified: true });
    expect(res.body.channels.sort()).toEqual(['in-app', 'ops-hook']);
    // the first attempt was made before the answer
    expect(rx.ok('/alert-default')).toHaveLength(1);
    expect(rx.ok('/alert-default')[0].json.notification).toMatchObject({ severity: 'high', project_id: 'pf_alert', title: expect.stringContaining('token expired') });
    // the same alert again is the same problem: deduplicated
    const again = await call(t.url, 'POST', '/monitoring/alert', { body: ALERT });
    expect(again.body).toMatchObject({ notified: false, channels: [] });
    expect(rx.at('/alert-not-default')).toHaveLength(0);
    const inApp = await call(t.url, 'GET', '/monitoring/notifications?project_id=pf_alert');
    expect(inApp.body.notifications).toHaveLength(1);
  });

  it('matches event rules (the alert flag, error_type) and reaches the Feedback Loop engine', async () => {
    const fb = await channel('pf_alert2', 'feedback', 'feedback_loop', { url: `${rx.url}/feedback`, secret: 'fb-secret' });
    await rule({
      name: 'Token expired', project_id: 'pf_alert2', kind: 'event', filter: { alert: true, error_type: 'token_expired' }, channels: [fb],
      user_message: 'Your Slack connection expired; please reconnect it.',
    });
    const res = await call(t.url, 'POST', '/monitoring/alert', { body: { ...ALERT, project_id: 'pf_alert2', error_type: 'token_expired' } });
    expect(res.body).toEqual({ id: expect.any(String), notified: true, channels: ['feedback'] });
    const got = rx.ok('/feedback');
    expect(got).toHaveLength(1);
    expect(got[0].json).toMatchObject({ project_id: 'pf_alert2', severity: 'critical', user_message: 'Your Slack connection expired; please reconnect it.' });
    expect(verifySignature('fb-secret', got[0].headers['x-puraify-timestamp'] as string, got[0].raw, got[0].headers['x-puraify-signature'] as string)).toBe(true);
    // the same rule does not fire on the plain log stream's alerts-free events
    await send({ project_id: 'pf_alert2', error_type: 'token_expired' });
    await settle(2);
    expect(rx.at('/feedback')).toHaveLength(1);
  });
});

// ---- in-app notifications -----------------------------------------------------------------

describe('ui channel', () => {
  it('lists notifications, marks them read, and pushes them live over SSE to the right projects only', async () => {
    const key = await projectKey('pf_ui', ['read']);
    const otherKey = await projectKey('pf_ui_other', ['read']);
    const open = async (token: string) => {
      const ac = new AbortController();
      const res = await fetch(`${t.url}/monitoring/notifications/stream`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      void (async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            text += Buffer.from(value).toString('utf8');
          }
        } catch {
          // aborted
        }
      })();
      return { text: () => text, close: () => ac.abort() };
    };
    const mine = await open(key);
    const theirs = await open(otherKey);
    await until('the stream to open', () => mine.text().includes(': connected'));

    const ch = await channel('pf_ui', 'in-app', 'ui', {});
    await rule({ name: 'UI alerts', project_id: 'pf_ui', kind: 'event', filter: { severity: 'critical' }, channels: [ch] });
    await send({ project_id: 'pf_ui', severity: 'critical', message: 'disk full' });
    await until('the SSE event', () => mine.text().includes('event: notification'));
    const data = JSON.parse(/data: (.*)\n/.exec(mine.text())![1]);
    expect(data).toMatchObject({ project_id: 'pf_ui', title: 'UI alerts – disk full', read: false, severity: 'critical' });
    expect(theirs.text()).toContain(': connected');
    expect(theirs.text()).not.toContain('event: notification');
    mine.close();
    theirs.close();

    const list = await call(t.url, 'GET', '/monitoring/notifications?unread=true', { token: key });
    expect(list.status).toBe(200);
    expect(list.body.unread).toBe(1);
    expect(list.body.notifications).toHaveLength(1);
    const id = list.body.notifications[0].id;
    expect((await call(t.url, 'GET', '/monitoring/notifications?project_id=pf_ui', { token: otherKey })).status).toBe(403);
    expect((await call(t.url, 'POST', `/monitoring/notifications/${encodeURIComponent(id)}/read`, { token: otherKey })).status).toBe(404);
    const read = await call(t.url, 'POST', `/monitoring/notifications/${encodeURIComponent(id)}/read`, { token: key });
    expect(read.body.read).toBe(true);
    expect((await call(t.url, 'GET', '/monitoring/notifications?unread=true', { token: key })).body).toMatchObject({ unread: 0, notifications: [] });
    // history is tenant-scoped too
    expect((await call(t.url, 'GET', '/monitoring/alerts', { token: otherKey })).body.alerts).toEqual([]);
    expect((await call(t.url, 'GET', '/monitoring/alerts', { token: key })).body.alerts).toHaveLength(1);
  });
});
