import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, qs, startEngine, type TestEngine } from '../../test/helpers.js';

let t: TestEngine;
let keyA: string;
const T = Date.parse('2025-07-25T10:00:00Z');
const P = 'pf_replay';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The replayed session: eight steps, the first error at step 5.
const S1 = [
  { step: 0, at: 0, action: 'login', engine: 'vault', ip: '198.51.100.7' },
  { step: 1, at: 1000, action: 'open_flow', engine: 'execution' },
  { step: 2, at: 1500, action: 'fetch_contact', platform: 'HubSpot', duration_ms: 300 },
  { step: 3, at: 4000, action: 'build_message', platform: 'Slack' },
  { step: 4, at: 4000, action: 'validate', engine: 'validation' },
  { step: 5, at: 7000, action: 'send_message', platform: 'Slack', status: 'error', error_type: 'api_timeout', message: 'Slack timed out after 5000 ms' },
  { step: 6, at: 8000, action: 'send_message', platform: 'Slack', status: 'error', error_type: 'api_timeout', message: 'Slack timed out after 5100 ms' },
  { step: 7, at: 9000, action: 'retry', platform: 'Slack', status: 'success' },
].map((s) => ({
  project_id: P, session_id: 's1', user_id: 'u1', flow_id: 'lead_submit', engine: 'execution', status: 'success',
  ...s, timestamp: T + s.at,
}));
const slackTimeout = (user: string, session: string, at: number) => ({
  project_id: P, session_id: session, user_id: user, flow_id: 'lead_submit', engine: 'execution', platform: 'Slack',
  action: 'send_message', status: 'error', error_type: 'api_timeout', message: `Slack timed out after ${4000 + at % 1000} ms`, timestamp: T + at,
});

beforeAll(async () => {
  t = await startEngine();
  keyA = (await t.engine.keys.create({ name: 'a', scopes: ['read', 'ingest'], project_id: 'pf_a' })).token;
  // s1 arrives out of order in three batches: the error first, the steps that led to it later
  for (const batch of [[S1[7], S1[0], S1[5]], [S1[3], S1[1]], [S1[2], S1[6], S1[4]]]) {
    const r = await call(t.url, 'POST', '/monitoring/logs', { body: batch });
    expect(r.body.accepted).toBe(batch.length);
    await sleep(5); // distinct arrival times: ties at 4000 ms are broken by arrival
  }
  const others = [
    // u2 and u3 hit the same Slack timeout within the hour; u4 a different error; u5 the same one but hours later
    { project_id: P, session_id: 's2', user_id: 'u2', action: 'start', timestamp: T + 100_000 },
    slackTimeout('u2', 's2', 120_000),
    slackTimeout('u3', 's3', 1_800_000),
    slackTimeout('u3', 's3', 1_800_500),
    { project_id: P, session_id: 's4', user_id: 'u4', engine: 'execution', platform: 'Notion', status: 'error', error_type: 'token_expired', message: 'Notion token expired', timestamp: T + 60_000 },
    slackTimeout('u5', 's5', 5 * 3_600_000),
    // s6: no errors; a user-less error of the same kind outside any session
    { project_id: P, session_id: 's6', user_id: 'u6', action: 'browse', timestamp: T + 200_000 },
    { project_id: P, session_id: 's6', user_id: 'u6', action: 'browse', timestamp: T + 260_000 },
    // the same session id in another project, and a session in pf_a
    { project_id: 'pf_other', session_id: 's1', user_id: 'x', timestamp: T },
    { project_id: 'pf_a', session_id: 'sa', user_id: 'ua', timestamp: T },
  ];
  expect((await call(t.url, 'POST', '/monitoring/logs', { body: others })).body.accepted).toBe(others.length);
});
afterAll(async () => {
  // a keep-alive connection the fetch client opened but never used counts as active for Node's
  // server.close() until its headers timeout: close every connection so the engine stops at once
  t.engine.app.server.closeAllConnections();
  await t.close();
});

const get = (path: string, params: Record<string, string | number | undefined> = {}, token?: string) =>
  call(t.url, 'GET', `${path}?${qs(params)}`, { token });

describe('GET /monitoring/sessions/:id (replay)', () => {
  it('puts a session posted out of order in several batches back in time order, with the right gaps', async () => {
    const r = await get('/monitoring/sessions/s1', { project_id: P });
    expect(r.status).toBe(200);
    expect(r.body.steps.map((s: any) => Number(s.attributes.step))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(r.body.steps.map((s: any) => s.offset_ms)).toEqual([0, 1000, 1500, 4000, 4000, 7000, 8000, 9000]);
    expect(r.body.steps.map((s: any) => s.gap_ms)).toEqual([null, 1000, 500, 2500, 0, 3000, 1000, 1000]);
    expect(r.body.steps.map((s: any) => s.step_duration_ms)).toEqual([1000, 500, 300, 0, 3000, 1000, 1000, null]);
    expect(r.body.steps[2].step_duration_source).toBe('reported');
    // steps 1-4 and 6 arrived after steps that happened later (5, 7): they are late and put back in place
    expect(r.body.steps.map((s: any) => s.arrived_late)).toEqual([false, true, true, true, true, false, true, false]);
    expect(r.body.session).toMatchObject({
      id: 's1', project_id: P, duration_ms: 9000, events: 8, errors: 2, users: ['u1'], flows: ['lead_submit'],
      start: new Date(T).toISOString(), end: new Date(T + 9000).toISOString(),
    });
    expect(r.body.truncated).toBe(false);
    // the same order on every call
    const again = await get('/monitoring/sessions/s1', { project_id: P });
    expect(again.body.steps.map((s: any) => s.id)).toEqual(r.body.steps.map((s: any) => s.id));
  });

  it('marks the first error and lists the steps that led to it', async () => {
    const r = await get('/monitoring/sessions/s1', { project_id: P });
    expect(r.body.steps.filter((s: any) => s.first_error).map((s: any) => s.step)).toEqual([5]);
    expect(r.body.steps.filter((s: any) => s.is_error).map((s: any) => s.step)).toEqual([5, 6]);
    expect(r.body.first_error).toMatchObject({ step: 5, error_type: 'api_timeout', offset_ms: 7000 });
    expect(r.body.first_error.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(r.body.led_to.map((s: any) => [s.action, s.before_error_ms])).toEqual([
      ['login', 7000], ['open_flow', 6000], ['fetch_contact', 5500], ['build_message', 3000], ['validate', 3000],
    ]);
    expect(r.body.led_to_total).toBe(5);
    const two = await get('/monitoring/sessions/s1', { project_id: P, lead: 2 });
    expect(two.body.led_to.map((s: any) => s.action)).toEqual(['build_message', 'validate']);
    expect(r.body.steps[0].attributes.ip).toBe('198.51.100.7');
  });

  it('asks for project_id when the id is used in two projects, and answers 404 for an unknown session', async () => {
    const amb = await get('/monitoring/sessions/s1');
    expect(amb.status).toBe(409);
    expect(amb.body.error.details.projects.sort()).toEqual(['pf_other', P]);
    expect((await get('/monitoring/sessions/s1', { project_id: 'pf_other' })).body.steps).toHaveLength(1);
    expect((await get('/monitoring/sessions/nope', { project_id: P })).status).toBe(404);
  });

  it('validates its parameters', async () => {
    for (const [params, field] of [
      [{ project_id: P, lead: -1 }, 'lead'],
      [{ project_id: P, lead: 'x' }, 'lead'],
      [{ project_id: P, limit: 0 }, 'limit'],
      [{ project_id: P, status: 'error' }, 'status'],
      [{ project_id: P, colour: 'red' }, 'colour'],
    ] as const) {
      const r = await get('/monitoring/sessions/s1', params as Record<string, string | number>);
      expect(r.status, JSON.stringify(params)).toBe(400);
      expect(r.body.error.details.errors.map((e: any) => e.field)).toContain(field);
    }
    const long = await get(`/monitoring/sessions/${'x'.repeat(300)}`, { project_id: P });
    expect(long.status).toBe(400);
  });
});

describe('GET /monitoring/sessions/:id/related', () => {
  it('finds the other sessions and users that hit the same error around then, and not the one with another error', async () => {
    const r = await get('/monitoring/sessions/s1/related', { project_id: P });
    expect(r.status).toBe(200);
    expect(r.body.fingerprints).toHaveLength(1);
    expect(r.body.fingerprints[0]).toMatchObject({ error_type: 'api_timeout', count: 2 });
    expect(r.body.sessions.map((s: any) => s.session_id)).toEqual(['s3', 's2']); // s3 had two errors
    expect(r.body.users.map((u: any) => u.user_id).sort()).toEqual(['u2', 'u3']);
    expect(r.body.users.find((u: any) => u.user_id === 'u3')).toMatchObject({ sessions: ['s3'], errors: 2 });
    expect(r.body.session.users).toEqual(['u1']);
    // from u2's session, the other two of the three are related
    const r2 = await get('/monitoring/sessions/s2/related', { project_id: P });
    expect(r2.body.users.map((u: any) => u.user_id).sort()).toEqual(['u1', 'u3']);
  });

  it('widens with the window: u5 hit it five hours later', async () => {
    const wide = await get('/monitoring/sessions/s1/related', { project_id: P, window: '6h' });
    expect(wide.body.users.map((u: any) => u.user_id).sort()).toEqual(['u2', 'u3', 'u5']);
    expect(wide.body.users.map((u: any) => u.user_id)).not.toContain('u4');
    expect(wide.body.window.window_ms).toBe(6 * 3_600_000);
  });

  it('has nothing related for a session without errors; rejects a bad window', async () => {
    const r = await get('/monitoring/sessions/s6/related', { project_id: P });
    expect(r.body).toMatchObject({ fingerprints: [], sessions: [], users: [] });
    expect((await get('/monitoring/sessions/s1/related', { project_id: P, window: '1w' })).status).toBe(400);
    expect((await get('/monitoring/sessions/s1/related', { project_id: P, window: '10ms' })).status).toBe(400);
  });
});

describe('GET /monitoring/sessions', () => {
  it('lists sessions with start, end, duration, event and error counts, users and flows, newest first', async () => {
    const r = await get('/monitoring/sessions', { project_id: P });
    expect(r.status).toBe(200);
    expect(r.body.sessions.map((s: any) => s.id)).toEqual(['s5', 's3', 's6', 's2', 's4', 's1']);
    expect(r.body.sessions.find((s: any) => s.id === 's1')).toEqual({
      id: 's1', project_id: P, start: new Date(T).toISOString(), end: new Date(T + 9000).toISOString(), duration_ms: 9000,
      events: 8, errors: 2, has_error: true, users: ['u1'], user_count: 1, flows: ['lead_submit'], flow_count: 1,
    });
    expect(r.body.next_cursor).toBeNull();
  });

  it('filters by error, user and time, and pages by cursor', async () => {
    const noErr = await get('/monitoring/sessions', { project_id: P, has_error: 'false' });
    expect(noErr.body.sessions.map((s: any) => s.id)).toEqual(['s6']);
    const err = await get('/monitoring/sessions', { project_id: P, has_error: 'true' });
    expect(err.body.sessions.map((s: any) => s.id)).toEqual(['s5', 's3', 's2', 's4', 's1']);
    const byUser = await get('/monitoring/sessions', { project_id: P, user_id: 'u2' });
    expect(byUser.body.sessions.map((s: any) => [s.id, s.events])).toEqual([['s2', 2]]);
    const inRange = await get('/monitoring/sessions', { project_id: P, from: T + 50_000, to: T + 150_000 });
    expect(inRange.body.sessions.map((s: any) => s.id)).toEqual(['s2', 's4']);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await get('/monitoring/sessions', { project_id: P, limit: 2, cursor });
      expect(page.body.sessions.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.sessions.map((s: any) => s.id));
      cursor = page.body.next_cursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(['s5', 's3', 's6', 's2', 's4', 's1']);
  });

  it('rejects unknown parameters and bad values', async () => {
    for (const [params, field] of [
      [{ project_id: P, status: 'error' }, 'status'],
      [{ project_id: P, has_error: 'yes' }, 'has_error'],
      [{ project_id: P, cursor: 'forged' }, 'cursor'],
      [{ project_id: P, from: 'yesterday' }, 'from'],
    ] as const) {
      const r = await get('/monitoring/sessions', params as Record<string, string>);
      expect(r.status, JSON.stringify(params)).toBe(400);
      expect(r.body.error.details.errors.map((e: any) => e.field)).toContain(field);
    }
  });
});

describe('tenant guard', () => {
  it('a key for pf_a sees its own sessions only', async () => {
    const list = await get('/monitoring/sessions', {}, keyA);
    expect(list.body.sessions.map((s: any) => [s.project_id, s.id])).toEqual([['pf_a', 'sa']]);
    expect((await get('/monitoring/sessions', { project_id: P }, keyA)).status).toBe(403);
    expect((await get('/monitoring/sessions/s1', {}, keyA)).status).toBe(404);
    expect((await get('/monitoring/sessions/s1', { project_id: P }, keyA)).status).toBe(403);
    expect((await get('/monitoring/sessions/s1/related', {}, keyA)).status).toBe(404);
    expect((await get('/monitoring/sessions/s1/related', { project_id: P }, keyA)).status).toBe(403);
    expect((await get('/monitoring/sessions/sa', {}, keyA)).body.steps).toHaveLength(1);
    expect((await call(t.url, 'GET', '/monitoring/sessions/s1', { token: null })).status).toBe(401);
  });
});
