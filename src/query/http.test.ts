import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, qs, startEngine, type TestEngine } from '../../test/helpers.js';

let t: TestEngine;
const BASE = Date.parse('2025-07-25T00:00:00Z');

beforeAll(async () => {
  t = await startEngine();
  // 5,000 events one second apart, with some sharing a timestamp so ties must be broken by id
  const events = Array.from({ length: 5000 }, (_, i) => ({
    project_id: 'pf_walk',
    timestamp: BASE + Math.floor(i / 2) * 1000,
    message: `step ${i}`,
    status: i % 10 === 0 ? 'error' : 'success',
    engine: i % 2 ? 'execution' : 'validation',
    seq: i,
  }));
  for (let i = 0; i < events.length; i += 1000) {
    const r = await call(t.url, 'POST', '/monitoring/logs', { body: events.slice(i, i + 1000) });
    expect(r.body.accepted).toBe(1000);
  }
});
afterAll(async () => {
  await t.close();
});

const logs = (params: Record<string, string | number | undefined>) => call(t.url, 'GET', `/monitoring/logs?${qs(params)}`);

describe('cursor pagination', () => {
  for (const order of ['desc', 'asc'] as const) {
    it(`walks 5,000 events (${order}) without skipping or repeating while another client inserts`, async () => {
      let inserting = true;
      let inserted = 0;
      const writer = (async () => {
        while (inserting) {
          // new events land inside and at both ends of the range being walked
          const r = await call(t.url, 'POST', '/monitoring/logs', { body: [
            { project_id: 'pf_walk', timestamp: BASE + 1234_000, message: 'late arrival', late: 'yes' },
            { project_id: 'pf_walk', timestamp: Date.now(), message: 'new', late: 'yes' },
          ] });
          inserted += r.body.accepted;
        }
      })();
      const seen = new Set<string>();
      const seqs: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const r = await logs({ project_id: 'pf_walk', limit: 333, cursor, order, 'attr.late': undefined, to: BASE + 2500_000 });
        expect(r.status).toBe(200);
        for (const l of r.body.logs) {
          expect(seen.has(l.id)).toBe(false);
          seen.add(l.id);
          if (l.attributes.seq !== undefined) seqs.push(Number(l.attributes.seq));
        }
        cursor = r.body.next_cursor ?? undefined;
        pages++;
      } while (cursor);
      inserting = false;
      await writer;
      expect(inserted).toBeGreaterThan(0);
      // every original event exactly once, in order
      expect(seqs.length).toBe(5000);
      expect(new Set(seqs).size).toBe(5000);
      const ordered = [...seqs].sort((a, b) => a - b);
      if (order === 'desc') ordered.reverse();
      // ties (two events per second) may come in either order within the same second; seconds must be ordered
      expect(seqs.map((s) => Math.floor(s / 2))).toEqual(ordered.map((s) => Math.floor(s / 2)));
      expect(pages).toBeGreaterThanOrEqual(16);
    });
  }

  it('refuses a cursor from the other order or a forged one', async () => {
    const first = await logs({ project_id: 'pf_walk', limit: 10, order: 'desc' });
    const bad = await logs({ project_id: 'pf_walk', cursor: first.body.next_cursor, order: 'asc' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.errors[0].field).toBe('cursor');
    expect((await logs({ project_id: 'pf_walk', cursor: 'not-a-cursor' })).status).toBe(400);
  });
});

describe('filters', () => {
  it('limits, defaults to 100, caps at 1000', async () => {
    expect((await logs({ project_id: 'pf_walk' })).body.logs).toHaveLength(100);
    expect((await logs({ project_id: 'pf_walk', limit: 7 })).body.logs).toHaveLength(7);
    const over = await logs({ project_id: 'pf_walk', limit: 1001 });
    expect(over.status).toBe(400);
    expect(over.body.error.details.errors[0]).toEqual({ field: 'limit', message: 'must be a whole number from 1 to 1000' });
  });

  it('time range in ISO and in ms, [from, to)', async () => {
    const iso = await logs({ project_id: 'pf_walk', from: '2025-07-25T00:00:10Z', to: '2025-07-25T00:00:12Z', order: 'asc' });
    expect(iso.body.logs.map((l: any) => l.attributes.seq).sort()).toEqual(['20', '21', '22', '23']);
    const ms = await logs({ project_id: 'pf_walk', from: BASE + 10_000, to: BASE + 12_000 });
    expect(ms.body.logs).toHaveLength(4);
  });

  it('exact fields combine, repeated values mean any of them', async () => {
    const r = await logs({ project_id: 'pf_walk', status: 'error', engine: 'validation', to: BASE + 100_000 });
    // i % 10 === 0 are errors and all even, so validation; i < 200
    expect(r.body.logs).toHaveLength(20);
    const both = await call(t.url, 'GET', `/monitoring/logs?project_id=pf_walk&seq=1&attr.seq=1&attr.seq=2`);
    expect(both.status).toBe(400); // "seq" alone is not a parameter
    const any = await call(t.url, 'GET', `/monitoring/logs?project_id=pf_walk&attr.seq=1&attr.seq=2`);
    expect(any.body.logs.map((l: any) => l.attributes.seq).sort()).toEqual(['1', '2']);
  });

  it('q searches message, error_type and stack, case-insensitively', async () => {
    await call(t.url, 'POST', '/monitoring/logs', { body: [
      { project_id: 'pf_q', message: 'Failed to send message – Token Expired' },
      { project_id: 'pf_q', error_type: 'TOKEN_EXPIRED', message: 'x' },
      { project_id: 'pf_q', stack: 'Error: token expired\n    at refresh (auth.js:1:1)' },
      { project_id: 'pf_q', message: 'all good' },
      { project_id: 'pf_q', message: 'Ünïcödé TÖKEN' },
    ] });
    expect((await logs({ project_id: 'pf_q', q: 'token expired' })).body.logs).toHaveLength(2);
    expect((await logs({ project_id: 'pf_q', q: 'token_expired' })).body.logs).toHaveLength(1);
    expect((await logs({ project_id: 'pf_q', q: 'token' })).body.logs).toHaveLength(3); // TÖKEN is another word
    expect((await logs({ project_id: 'pf_q', q: 'ünïcödé tök' })).body.logs).toHaveLength(1);
    expect((await logs({ project_id: 'pf_q', q: "' OR 1=1 --" })).body.logs).toHaveLength(0);
  });

  it('rejects unknown parameters, bad times and bad order with the field named', async () => {
    for (const [params, field] of [
      [{ project_id: 'pf_walk', colour: 'red' }, 'colour'],
      [{ project_id: 'pf_walk', from: 'last tuesday' }, 'from'],
      [{ project_id: 'pf_walk', from: BASE + 10, to: BASE }, 'from'],
      [{ project_id: 'pf_walk', order: 'sideways' }, 'order'],
      [{ project_id: 'pf_walk', limit: '-1' }, 'limit'],
      [{ project_id: 'pf_walk', limit: 'abc' }, 'limit'],
    ] as const) {
      const r = await logs(params as Record<string, string | number>);
      expect(r.status, JSON.stringify(params)).toBe(400);
      expect(r.body.error.details.errors.map((e: any) => e.field)).toContain(field);
    }
  });
});
