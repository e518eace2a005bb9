// bench/query's background ingest, in a worker thread: `rate` events/s of now (batches of 500, from
// 8 senders so one slow answer does not hold the pace) until the parent posts 'stop'; then it posts
// back what was accepted and refused.
import { parentPort, workerData } from 'node:worker_threads';
import { newEventId } from '../src/ids.js';
import { post } from './common.js';
import { eventAt } from './query-shapes.js';

const { url, rate } = workerData as { url: string; rate: number };
let running = rate > 0;
let sent = 0;
let failed = 0;
let scheduled = 0;
let n = 0;
const t0 = performance.now();
const sender = async () => {
  while (running) {
    const due = t0 + (scheduled / rate) * 1000;
    scheduled += 500;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (!running) break;
    const now = Date.now();
    const batch = Array.from({ length: 500 }, () => ({ ...eventAt(10_000_000 + n++, 1, now), timestamp: now, id: newEventId(now) }));
    const status = await post(url, '/monitoring/logs', JSON.stringify(batch)).catch(() => 0);
    if (status === 200) sent += batch.length;
    else failed += batch.length;
  }
};
const senders = Promise.all(Array.from({ length: 8 }, sender));
parentPort!.once('message', async () => {
  running = false;
  await senders;
  parentPort!.postMessage({ sent, seconds: (performance.now() - t0) / 1000, failed });
});
