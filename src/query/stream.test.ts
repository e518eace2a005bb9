import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, call, startEngine, tailEvents, type TestEngine } from '../../test/helpers.js';
import { matchesFilter } from './match.js';
import { emptyFilter } from './filters.js';
import { normalize, type EventRow } from '../event.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startEngine();
});
afterAll(async () => {
  await t.close();
});

const tail = (path: string, n: number, whileOpen: () => Promise<void>, token = ADMIN_TOKEN) => tailEvents(t.url, path, n, whileOpen, token);

describe('live tail', () => {
  it('pushes matching events once they are stored, and only those', async () => {
    const got = await tail('/monitoring/stream?project_id=pf_live&status=error', 2, async () => {
      await new Promise((r) => setTimeout(r, 100));
      await call(t.url, 'POST', '/monitoring/logs', { body: [
        { project_id: 'pf_live', status: 'error', message: 'first' },
        { project_id: 'pf_live', status: 'success', message: 'not me' },
        { project_id: 'pf_other', status: 'error', message: 'not me either' },
      ] });
      await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_live', status: 'error', message: 'second' } });
    });
    expect(got.map((e) => e.message)).toEqual(['first', 'second']);
    expect(got[0].project_id).toBe('pf_live');
  });

  it('keeps a project key to its own project', async () => {
    const { token } = await t.engine.keys.create({ name: 'a', scopes: ['read'], project_id: 'pf_a' });
    const denied = await call(t.url, 'GET', '/monitoring/stream?project_id=pf_b', { token });
    expect(denied.status).toBe(403);
    const got = await tail('/monitoring/stream', 1, async () => {
      await new Promise((r) => setTimeout(r, 100));
      await call(t.url, 'POST', '/monitoring/logs', { body: [{ project_id: 'pf_b', message: 'secret of b' }, { project_id: 'pf_a', message: 'mine' }] });
    }, token);
    expect(got.map((e) => e.message)).toEqual(['mine']);
  });
});

describe('a full live-tail pool', () => {
  it('answers 503 with Retry-After (the engine\'s capacity, not a bad request), and takes tails again once one closes', async () => {
    const { MAX_SUBSCRIBERS } = await import('./stream.js');
    const { Agent, request } = await import('node:http');
    const { port } = new URL(t.url);
    const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const open = () => new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/monitoring/stream', agent, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, resolve);
      req.on('error', reject);
      req.end();
    });
    const tails: import('node:http').IncomingMessage[] = [];
    try {
      for (let i = 0; i < MAX_SUBSCRIBERS; i += 100) {
        tails.push(...await Promise.all(Array.from({ length: Math.min(100, MAX_SUBSCRIBERS - i) }, open)));
      }
      expect(tails.every((r) => r.statusCode === 200)).toBe(true);
      const full = await call(t.url, 'GET', '/monitoring/stream');
      expect(full.status).toBe(503);
      expect(full.body.error.code).toBe('too_many_tails');
      expect(Number(full.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      tails.pop()!.destroy();
      await new Promise((r) => setTimeout(r, 200));
      const again = await open();
      expect(again.statusCode).toBe(200);
      tails.push(again);
    } finally {
      for (const r of tails) r.destroy();
      agent.destroy();
    }
  }, 60_000);
});

describe('matchesFilter', () => {
  const row = (e: Record<string, unknown>): EventRow => {
    const n = normalize({ project_id: 'p', ...e }, Date.parse('2025-07-25T12:00:00Z'));
    if (!n.ok) throw new Error('bad');
    return n.row;
  };
  it('agrees with the SQL filter vocabulary', () => {
    const f = emptyFilter();
    f.eq.platform = ['Slack', 'Notion'];
    f.attrs.push({ key: 'region', values: ['eu'] });
    f.q = 'TOKEN';
    expect(matchesFilter(f, row({ platform: 'Slack', region: 'eu', message: 'token expired' }))).toBe(true);
    expect(matchesFilter(f, row({ platform: 'Gmail', region: 'eu', message: 'token expired' }))).toBe(false);
    expect(matchesFilter(f, row({ platform: 'Slack', region: 'us', message: 'token expired' }))).toBe(false);
    expect(matchesFilter(f, row({ platform: 'Slack', message: 'token expired' }))).toBe(false);
    expect(matchesFilter(f, row({ platform: 'Slack', region: 'eu', message: 'fine' }))).toBe(false);
    const timed = { ...emptyFilter(), from: Date.parse('2025-07-25T12:00:00Z'), to: Date.parse('2025-07-25T13:00:00Z') };
    expect(matchesFilter(timed, row({ timestamp: '2025-07-25T12:00:00Z' }))).toBe(true);
    expect(matchesFilter(timed, row({ timestamp: '2025-07-25T11:59:59Z' }))).toBe(false);
  });
});
