// The query language through the HTTP API, on a real engine: GET /monitoring/logs?query= (with the
// other filters and the tenant guard), /logs/count, the live tail, and the error-group list with
// search, paging and totals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, qs, removeDir, startEngine, tailEvents, type TestEngine } from '../../test/helpers.js';

let t: TestEngine;
const T0 = Date.now() - 3600_000;

const EVENTS = [
  { id: 'a1', project_id: 'pq_a', platform: 'Slack', action: 'send_message', status: 'error', error_type: 'token_expired', message: 'Token expired while sending', stack: 'Error: token\n    at send (slack.js:10:5)', duration_ms: 1500, user_id: 'u1', attributes: { region: 'eu', http_status: 401 } },
  { id: 'a2', project_id: 'pq_a', platform: 'Notion', action: 'create_page', status: 'error', error_type: 'auth_error', message: 'expired: the token of the Notion integration', duration_ms: 200, user_id: 'u2', attributes: { region: 'us', http_status: 403 } },
  { id: 'a3', project_id: 'pq_a', platform: 'Slack', action: 'send_message', status: 'timeout', error_type: 'api_timeout', message: 'Request timeout after 30 s', duration_ms: 30000, user_id: 'u1', attributes: { region: 'eu', http_status: 504 } },
  { id: 'a4', project_id: 'pq_a', platform: 'Stripe', action: 'charge', status: 'success', message: 'charged; Stripe says ok', duration_ms: 50, user_id: 'u3' },
  { id: 'a5', project_id: 'pq_a', platform: 'Slack', action: 'send_message', status: 'success', message: 'sent', user_id: 'u10' },
  { id: 'b1', project_id: 'pq_b', platform: 'Stripe', status: 'error', error_type: 'card_declined', message: 'Token expired for card', duration_ms: 900 },
].map((e, i) => ({ ...e, timestamp: T0 + i * 1000 }));

beforeAll(async () => {
  t = await startEngine();
  const r = await call(t.url, 'POST', '/monitoring/logs', { body: EVENTS });
  expect(r.body.accepted).toBe(EVENTS.length);
});
afterAll(async () => {
  await t?.close();
  if (t) removeDir(t.dataDir);
});

async function ids(params: Record<string, string | number | undefined>, token?: string): Promise<string[]> {
  const r = await call(t.url, 'GET', `/monitoring/logs?${qs({ order: 'asc', ...params })}`, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.logs.map((e: { id: string }) => e.id);
}

describe('GET /monitoring/logs?query=', () => {
  it('answers the issue\'s searches, which found nothing before', async () => {
    expect(await ids({ query: 'expired token' })).toEqual(['a1', 'a2', 'b1']);
    expect(await ids({ query: '"token expired"' })).toEqual(['a1', 'b1']);
    expect(await ids({ query: 'status:error', project_id: 'pq_a' })).toEqual(['a1', 'a2']);
    expect(await ids({ query: 'platform=Slack AND timeout' })).toEqual(['a3']);
    expect(await ids({ query: 'Notion|Stripe' })).toEqual(['a2', 'a4']);
    expect(await ids({ query: 'platform:Notion|Stripe' })).toEqual(['a2', 'a4', 'b1']);
  });
  it('the rest of the grammar', async () => {
    expect(await ids({ query: 'duration_ms:>1000' })).toEqual(['a1', 'a3']);
    expect(await ids({ query: 'duration_ms:[100 TO 1000]' })).toEqual(['a2', 'b1']);
    expect(await ids({ query: 'attr.http_status:>=500 OR attr.region:us' })).toEqual(['a2', 'a3']);
    expect(await ids({ query: 'has:stack' })).toEqual(['a1']);
    expect(await ids({ query: '-has:duration_ms' })).toEqual(['a5']);
    expect(await ids({ query: 'user_id:u1*' })).toEqual(['a1', 'a3', 'a5']);
    expect(await ids({ query: 'platform:Slack -status:(error OR timeout)' })).toEqual(['a5']);
    expect(await ids({ query: 'message:"after 30"' })).toEqual(['a3']);
    expect(await ids({ query: `timestamp:>=${T0 + 4000}` })).toEqual(['a5', 'b1']);
    expect(await ids({ query: 'type:error level:*' })).toEqual(['a1', 'a2', 'a3', 'b1']);
  });
  it('is ANDed with the other filters and pages with the cursor', async () => {
    expect(await ids({ query: 'expired', project_id: 'pq_b' })).toEqual(['b1']);
    expect(await ids({ query: 'expired', status: 'error', platform: 'Slack' })).toEqual(['a1']);
    expect(await ids({ query: 'platform:Slack', platform: 'Notion' })).toEqual([]);
    const first = await call(t.url, 'GET', `/monitoring/logs?${qs({ query: 'has:duration_ms', limit: 2, order: 'asc' })}`);
    const second = await call(t.url, 'GET', `/monitoring/logs?${qs({ query: 'has:duration_ms', limit: 2, order: 'asc', cursor: first.body.next_cursor })}`);
    expect([...first.body.logs, ...second.body.logs].map((e: { id: string }) => e.id)).toEqual(['a1', 'a2', 'a3', 'a4']);
  });
  it('a syntax error is a 400 that points at the column', async () => {
    const r = await call(t.url, 'GET', `/monitoring/logs?${qs({ query: 'status:error AND (platform:Slack' })}`);
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({
      code: 'invalid_query',
      message: 'query: column 18: missing ) for the ( here',
      details: { field: 'query', column: 18, errors: [{ field: 'query', message: 'column 18: missing ) for the ( here', column: 18 }] },
    });
    const twice = await call(t.url, 'GET', '/monitoring/logs?query=a&query=b');
    expect(twice.status).toBe(400);
    expect(twice.body.error.details.errors[0]).toEqual({ field: 'query', message: 'must be given once' });
  });
  it('a project key sees its project only, however the query names projects', async () => {
    const key = (await t.engine.keys.create({ name: 'pq_a reader', scopes: ['read'], project_id: 'pq_a' })).token;
    expect(await ids({ query: 'expired token' }, key)).toEqual(['a1', 'a2']);
    expect(await ids({ query: 'project_id:pq_a expired' }, key)).toEqual(['a1', 'a2']);
    expect(await ids({ query: 'project_id:pq_a OR expired' }, key)).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
    for (const query of ['project_id:pq_b', 'project_id:(pq_a OR pq_b)']) {
      const r = await call(t.url, 'GET', `/monitoring/logs?${qs({ query })}`, { token: key });
      expect(r.status, query).toBe(403);
    }
    // inside an OR the guard still holds: pq_b's events stay out
    expect(await ids({ query: 'project_id:pq_b OR expired' }, key)).toEqual(['a1', 'a2']);
  });
});

describe('the other read routes take query= too', () => {
  it('performance and timeseries', async () => {
    const perf = await call(t.url, 'GET', `/monitoring/performance?${qs({ project_id: 'pq_a', group_by: 'platform', from: T0 - 1000, query: 'duration_ms:>100 -status:timeout' })}`);
    expect(perf.status, JSON.stringify(perf.body)).toBe(200);
    expect(perf.body.groups.map((g: { group: { platform: string }; count: number }) => [g.group.platform, g.count]).sort())
      .toEqual([['Notion', 1], ['Slack', 1]]);
    const bad = await call(t.url, 'GET', `/monitoring/timeseries?${qs({ metric: 'count', query: 'duration_ms:[1 TO' })}`);
    expect(bad.body.error).toMatchObject({ code: 'invalid_query', details: { column: 18 } });
  });
});

describe('GET /monitoring/logs/count', () => {
  it('counts what the search would list', async () => {
    const count = async (params: Record<string, string>) => (await call(t.url, 'GET', `/monitoring/logs/count?${qs(params)}`)).body;
    expect(await count({ query: 'expired token' })).toEqual({ count: 3, timed_out: false });
    expect(await count({ query: 'expired token', project_id: 'pq_a' })).toEqual({ count: 2, timed_out: false });
    expect(await count({})).toEqual({ count: EVENTS.length, timed_out: false });
    expect(await count({ query: 'nothing-matches-this' })).toEqual({ count: 0, timed_out: false });
    const bad = await call(t.url, 'GET', '/monitoring/logs/count?timeout_ms=5');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.errors[0].field).toBe('timeout_ms');
    expect((await call(t.url, 'GET', `/monitoring/logs/count?${qs({ query: '(' })}`)).body.error.code).toBe('invalid_query');
  });
});

describe('GET /monitoring/stream?query=', () => {
  it('pushes only what the query matches, decided in memory by the same AST', async () => {
    const path = `/monitoring/stream?${qs({ project_id: 'pq_live', query: '"token expired" OR (duration_ms:>1000 -platform:Slack)' })}`;
    const got = await tailEvents(t.url, path, 2, async () => {
      await call(t.url, 'POST', '/monitoring/logs', { body: [
        { id: 'l1', project_id: 'pq_live', message: 'slow Slack', platform: 'Slack', duration_ms: 5000 },
        { id: 'l2', project_id: 'pq_live', message: 'TOKEN EXPIRED', platform: 'Slack' },
        { id: 'l3', project_id: 'pq_other', message: 'token expired' },
        { id: 'l4', project_id: 'pq_live', message: 'slow Notion', platform: 'Notion', duration_ms: 5000 },
      ] });
    });
    expect(got.map((e) => e.id)).toEqual(['l2', 'l4']);
  });
  it('refuses a bad query before opening the stream', async () => {
    const r = await call(t.url, 'GET', `/monitoring/stream?${qs({ query: 'duration_ms:>fast' })}`);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_query', details: { column: 14 } });
  });
});

describe('GET /monitoring/errors: search, sort, paging with a total', () => {
  const groups = async (params: Record<string, string | number>) => {
    const r = await call(t.url, 'GET', `/monitoring/errors?${qs({ project_id: 'pq_err', ...params })}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };
  beforeAll(async () => {
    // 7 groups (distinct error types), group i with i + 1 events; the odd ones on Slack
    const body = Array.from({ length: 7 }, (_, i) => Array.from({ length: i + 1 }, () => ({
      project_id: 'pq_err', status: 'error', error_type: `E${i}`, message: `failure number ${i}`, platform: i % 2 ? 'Slack' : 'Notion',
    }))).flat();
    expect((await call(t.url, 'POST', '/monitoring/logs', { body })).body.accepted).toBe(28);
  });
  it('pages beyond the first page, with the total and the next offset', async () => {
    const all = await groups({ limit: 100 });
    expect(all.total).toBe(7);
    expect(all.groups.map((g: { error_type: string }) => g.error_type)).toEqual(['E6', 'E5', 'E4', 'E3', 'E2', 'E1', 'E0']);
    const pages: string[] = [];
    let offset: number | null = 0;
    while (offset !== null) {
      const page = await groups({ limit: 3, offset });
      expect(page.total).toBe(7);
      expect(page.offset).toBe(offset);
      pages.push(...page.groups.map((g: { error_type: string }) => g.error_type));
      offset = page.next_offset;
    }
    expect(pages).toEqual(['E6', 'E5', 'E4', 'E3', 'E2', 'E1', 'E0']);
    expect(await groups({ limit: 3, offset: 10 })).toMatchObject({ total: 7, offset: 10, next_offset: null, groups: [] });
    expect(await groups({ limit: 7 })).toMatchObject({ total: 7, next_offset: null });
  });
  it('searches with the query language and sorts', async () => {
    const slack = await groups({ query: 'platform:Slack', sort: 'first_seen' });
    expect(slack.total).toBe(3);
    expect(slack.groups.map((g: { error_type: string }) => g.error_type).sort()).toEqual(['E1', 'E3', 'E5']);
    expect((await groups({ query: '"number 4" OR error_type:E0' })).groups.map((g: { error_type: string }) => g.error_type)).toEqual(['E4', 'E0']);
    const bad = await call(t.url, 'GET', `/monitoring/errors?${qs({ query: 'platform:' })}`);
    expect(bad.body.error).toMatchObject({ code: 'invalid_query', details: { column: 10 } });
  });
  it('filters on state in the SQL, so totals and pages stay exact', async () => {
    const all = await groups({});
    const e5 = all.groups.find((g: { error_type: string }) => g.error_type === 'E5');
    const e2 = all.groups.find((g: { error_type: string }) => g.error_type === 'E2');
    for (const [g, state] of [[e5, 'resolved'], [e2, 'ignored']]) {
      expect((await call(t.url, 'PATCH', `/monitoring/errors/${g.fingerprint}?project_id=pq_err`, { body: { state } })).status).toBe(200);
    }
    const open = await groups({ state: 'open', limit: 2, offset: 2 });
    expect(open.total).toBe(5);
    expect(open.groups.map((g: { error_type: string }) => g.error_type)).toEqual(['E3', 'E1']);
    expect(open.next_offset).toBe(4);
    const resolved = await groups({ state: 'resolved' });
    expect(resolved.total).toBe(1);
    expect(resolved.groups.map((g: { error_type: string; state: string }) => [g.error_type, g.state])).toEqual([['E5', 'resolved']]);
    expect((await groups({ state: 'ignored', query: 'platform:Slack' })).total).toBe(0);
  });
});
