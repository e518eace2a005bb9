// Admission's per key fairness, over real HTTP: with one key holding every slot (and more knocking),
// another key's requests are still taken, and the flooding key is the one refused.
import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { installErrorHandler } from '../http/errors.js';
import { Admission } from './admission.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** An ingest-like route whose requests stay in flight until released. */
async function serve(admission: Admission): Promise<{ url: string; release: () => void }> {
  app = Fastify();
  installErrorHandler(app);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  admission.install(app, (req) => String((req as { headers?: Record<string, string> }).headers?.['x-key'] ?? ''));
  app.post('/ingest', async () => {
    await gate;
    return { ok: true };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, release };
}

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* parsing a body */ }
}

const send = (url: string, key: string) => fetch(`${url}/ingest`, { method: 'POST', headers: { 'x-key': key, 'content-type': 'application/json' }, body: '{}' }).then((r) => r.status);

/** Waits until the admission counts n requests in flight. */
async function inFlight(a: Admission, n: number): Promise<void> {
  for (let i = 0; i < 200 && a.inflight < n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(a.inflight).toBe(n);
}

describe('admission fairness', () => {
  it('takes another key\'s requests while one key holds every slot, and refuses the flooding key', async () => {
    const a = new Admission({ maxInflight: 4, maxLagMs: 0 });
    const { url, release } = await serve(a);
    const flood = Array.from({ length: 4 }, () => send(url, 'A'));
    await inFlight(a, 4);
    // A is at capacity: more of A is refused at once
    expect(await send(url, 'A')).toBe(503);
    // B holds nothing: it is below its share and gets in, past the soft cap
    const b1 = send(url, 'B');
    const b2 = send(url, 'B');
    await inFlight(a, 6);
    // B now holds its share (4 / 2 keys): its next request waits its turn like A's
    expect(await send(url, 'B')).toBe(503);
    expect(await send(url, 'A')).toBe(503);
    release();
    expect(await Promise.all([...flood, b1, b2])).toEqual([200, 200, 200, 200, 200, 200]);
    expect(a.stats.admittedFair).toBe(2);
    expect(a.inflight).toBe(0);
    expect(a.perKey.size).toBe(0);
  });

  it('a key alone is held to the cap as before', async () => {
    const a = new Admission({ maxInflight: 2, maxLagMs: 0 });
    const { url, release } = await serve(a);
    const held = [send(url, 'A'), send(url, 'A')];
    await inFlight(a, 2);
    expect(await send(url, 'A')).toBe(503);
    release();
    expect(await Promise.all(held)).toEqual([200, 200]);
  });

  it('while requests queue, the key with the biggest share is refused and the others taken', async () => {
    const a = new Admission({ maxInflight: 100, maxLagMs: 50 });
    const { url, release } = await serve(a);
    const held = [...Array.from({ length: 15 }, () => send(url, 'A')), send(url, 'C')];
    await inFlight(a, 16);
    // the state the interval timer sets when even the quickest answer waited past the target
    a.congested = true;
    expect(await send(url, 'A')).toBe(503);
    const b = send(url, 'B');
    await inFlight(a, 17);
    expect(a.stats.shedQueue).toBe(1);
    release();
    expect(await Promise.all([...held, b])).toEqual(Array(17).fill(200));
  });

  it('refuses a request while the bodies waiting to be parsed would take longer than the target', async () => {
    const a = new Admission({ maxInflight: 100, maxLagMs: 50 });
    const { url, release } = await serve(a);
    const held = Array.from({ length: 16 }, () => send(url, 'A'));
    await inFlight(a, 16);
    // 200 bodies of 20 kB waiting for their turn, each taking a millisecond to parse: ~200 ms of
    // work queued, drained one turn per loop iteration while the next request comes in
    const waiting = Array.from({ length: 200 }, () => a.turns.take(20_000).then(() => busy(1)));
    expect(a.turns.queuedMs()).toBeGreaterThan(50);
    const refused = await fetch(`${url}/ingest`, { method: 'POST', headers: { 'x-key': 'A', 'content-type': 'application/json' }, body: '{}' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(a.stats).toMatchObject({ shedTurns: 1 });
    await Promise.all(waiting);
    release();
    expect(await Promise.all(held)).toEqual(Array(16).fill(200));
    // the queue drained: the same request is taken
    expect(await send(url, 'A')).toBe(200);
  });
});

describe('admission against a fixed set of clients sending back to back', () => {
  // each client's request waits ~150 ms in the engine (it is held there: three times the target),
  // then the client sends the next: a standing queue of the clients' own size, not one that grows
  async function closedLoop(a: Admission, clients: number, rounds: number): Promise<number[]> {
    app = Fastify();
    installErrorHandler(app);
    a.install(app, () => 'A');
    app.post('/ingest', async () => {
      await new Promise((r) => setTimeout(r, 150));
      return { ok: true };
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    a.start();
    try {
      const statuses: number[] = [];
      await Promise.all(Array.from({ length: clients }, async () => {
        for (let i = 0; i < rounds; i++) statuses.push(await send(url, 'A'));
      }));
      return statuses;
    } finally {
      a.stop();
    }
  }

  it('fewer than 16 clients are never refused, however long their requests wait', async () => {
    const a = new Admission({ maxInflight: 100, maxLagMs: 50 });
    expect(await closedLoop(a, 15, 4)).toEqual(Array(60).fill(200));
    // the engine saw the wait: it is congested, and still takes the clients' requests
    expect(a.congested).toBe(true);
    expect(a.stats.shedQueue).toBe(0);
  });

  it('more are: past 16 in flight, a queue waiting past the target is refused', async () => {
    const a = new Admission({ maxInflight: 100, maxLagMs: 50 });
    const statuses = await closedLoop(a, 24, 4);
    expect(statuses).toContain(503);
    expect(a.stats.shedQueue).toBeGreaterThan(0);
  });
});

describe('admission under memory pressure', () => {
  it('refuses ingest while the heap in use is past the line, a full collection telling live data from garbage', async () => {
    let heap = 100;
    let live = 100;
    let collections = 0;
    const a = new Admission({
      maxInflight: 100, maxLagMs: 0, refuseHeapBytes: 500,
      heapUsed: () => heap,
      collectGarbage: () => {
        collections++;
        heap = live;
      },
    });
    const { url, release } = await serve(a);
    release();
    const later = (ms: number) => new Promise((r) => setTimeout(r, ms));
    expect(await send(url, 'A')).toBe(200);
    expect(collections).toBe(0);
    // garbage past the line: a full collection shows the live heap is small, the request is taken
    heap = 900;
    await later(25); // past the 20 ms a reading stands
    expect(await send(url, 'A')).toBe(200);
    expect(collections).toBe(1);
    // past the line again within the second: no second collection, refused
    heap = 900;
    await later(25);
    const refused = await fetch(`${url}/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await refused.json()).error.message).toMatch(/short of memory/);
    expect(collections).toBe(1);
    // a second later, live data past the line: collected, still past it, refused
    live = 800;
    await later(1000);
    expect(await send(url, 'A')).toBe(503);
    expect(collections).toBe(2);
    expect(a.stats.shedMemory).toBe(2);
    // memory freed: taken again
    heap = 100;
    await later(25);
    expect(await send(url, 'A')).toBe(200);
    expect(a.inflight).toBe(0);
  });
});
