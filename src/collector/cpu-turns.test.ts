import { createServer, connect, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CpuTurns } from './cpu-turns.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* a request's parsing */ }
}

describe('CpuTurns', () => {
  it('serves I/O between two requests\' work: a socket answer arrives after a few turns, not after all of them', async () => {
    const server = createServer((s) => s.on('data', (d) => s.write(d)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const turns = new CpuTurns();
    let done = 0;
    let doneWhenAnswered = -1;
    sock.once('data', () => (doneWhenAnswered = done));
    const work = Array.from({ length: 40 }, (_, i) => turns.take(1000).then(() => {
      if (i === 0) sock.write('ping');
      busy(3);
      done++;
    }));
    expect(turns.length).toBe(40);
    await Promise.all(work);
    await new Promise((r) => setTimeout(r, 50));
    sock.destroy();
    server.close();
    // without turns all 40 would run back to back before the echo could be read
    expect(doneWhenAnswered).toBeGreaterThan(0);
    expect(doneWhenAnswered).toBeLessThan(10);
    expect(turns.length).toBe(0);
    expect(turns.stats.turns).toBe(40);
  });

  it('grants turns in the order they were asked for, and learns the time a byte takes', async () => {
    const turns = new CpuTurns();
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map((i) => turns.take(10_000).then(() => {
      order.push(i);
      busy(5);
    })));
    expect(order).toEqual([0, 1, 2, 3]);
    // 5 ms per 10,000 bytes is 10 times the starting guess of 20,000 bytes per ms
    expect(turns.msPerByte).toBeGreaterThan(1 / 20_000);
    expect(turns.queuedMs()).toBe(0);
  });
});
