import { createServer, connect, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CpuTurns, SLICE_MS } from './cpu-turns.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* a request's parsing */ }
}

/** A loopback echo server and a socket connected to it: an answer is I/O the loop must serve. */
async function echo() {
  const server = createServer((s) => s.on('data', (d) => s.write(d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  return { server, sock };
}

describe('CpuTurns', () => {
  it('serves I/O between two requests\' work: a socket answer arrives after a few turns, not after all of them', async () => {
    const { server, sock } = await echo();
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

  it('cuts one request\'s work into slices: I/O is served between them, and its next slice comes before requests not yet started', async () => {
    const { server, sock } = await echo();
    const turns = new CpuTurns();
    const log: string[] = [];
    let slicesWhenAnswered = -1;
    sock.once('data', () => (slicesWhenAnswered = log.length));
    // one big request: 30 ms of work in steps of 1 ms, asking the slicer after each
    const big = turns.take(50_000).then(async (turn) => {
      sock.write('ping');
      for (let step = 0; step < 30; step++) {
        if (turn.due()) {
          log.push('big');
          await turn.next();
        }
        busy(1);
      }
      log.push('big');
    });
    const small = [1, 2].map((i) => turns.take(100).then((turn) => {
      expect(turn.due()).toBe(false);
      log.push(`small${i}`);
    }));
    await Promise.all([big, ...small]);
    await new Promise((r) => setTimeout(r, 50));
    sock.destroy();
    server.close();
    const bigSlices = log.filter((l) => l === 'big').length;
    // 30 ms in slices of SLICE_MS: several turns, not one
    expect(bigSlices).toBeGreaterThanOrEqual(Math.floor(30 / (SLICE_MS + 1)));
    // the started request finishes before the ones that asked after it begin
    expect(log.slice(-2)).toEqual(['small1', 'small2']);
    // the echo was read between its slices, not after all of them
    expect(slicesWhenAnswered).toBeGreaterThan(0);
    expect(slicesWhenAnswered).toBeLessThan(bigSlices);
    expect(turns.stats).toEqual({ turns: bigSlices + 2, requests: 3 });
  });

  it('learns the time a byte takes from all of a request\'s slices, not its first', async () => {
    const turns = new CpuTurns();
    await turns.take(10_000).then(async (turn) => {
      for (let i = 0; i < 4; i++) {
        busy(SLICE_MS + 1);
        expect(turn.due()).toBe(true);
        await turn.next();
      }
    });
    // the request's last turn is measured when the next turn is granted
    await turns.take(0);
    // 4 slices of 5 ms per 10,000 bytes is 2e-3 ms a byte: one slice alone would give ~1e-4
    expect(turns.msPerByte).toBeGreaterThan(1.8e-4);
  });
});
