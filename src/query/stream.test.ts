import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, call, startEngine, type TestEngine } from '../../test/helpers.js';
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

/** Reads SSE `log` events from a live tail until `n` arrive or the deadline passes. */
async function tail(path: string, n: number, whileOpen: () => Promise<void>, token = ADMIN_TOKEN): Promise<any[]> {
  const ac = new AbortController();
  const res = await fetch(t.url + path, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = res.body!.getReader();
  const got: any[] = [];
  let buf = '';
  const deadline = setTimeout(() => ac.abort(), 5000);
  const reading = (async () => {
    try {
      while (got.length < n) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += new TextDecoder().decode(value);
        let i;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.includes('event: log')) got.push(JSON.parse(block.split('\n').find((l) => l.startsWith('data: '))!.slice(6)));
        }
      }
    } catch {
      // aborted
    }
  })();
  await whileOpen();
  await reading;
  clearTimeout(deadline);
  ac.abort();
  return got;
}

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
