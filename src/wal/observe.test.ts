// The observers' runner against a real log: blocks gathered under a stream of requests, a record
// after a quiet spell observed at once.
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../../test/helpers.js';
import type { EventRow } from '../event.js';
import { WriteAheadLog } from './log.js';
import { ObserverRunner } from './observe.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

const row = (id: string) => ({ id, project_id: 'p', message: `m ${id}` }) as unknown as EventRow;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ObserverRunner', () => {
  it('observes a stream of requests in blocks at least gatherMs apart, and a lone request at once', async () => {
    const dir = tempDir('pm-observe-');
    dirs.push(dir);
    const log = await WriteAheadLog.open({ dir, maxBytes: 64 << 20, maxWaitingBytes: 8 << 20 });
    const blocks: { at: number; ids: string[] }[] = [];
    const runner = new ObserverRunner(log.observer, { openedAt: log.end, log: () => undefined, onObserved: () => undefined, gatherMs: 1000 });
    runner.add((rows) => void blocks.push({ at: Date.now(), ids: rows.map((r) => r.id) }));
    runner.start();

    // 30 requests over ~300 ms: the first is observed alone, the rest wait for the gathering time
    for (let i = 0; i < 30; i++) {
      await log.append([row(`s-${i}`)], { clientIds: false });
      await sleep(10);
    }
    await sleep(1200);
    expect(blocks.flatMap((b) => b.ids)).toEqual(Array.from({ length: 30 }, (_, i) => `s-${i}`));
    expect(blocks.length).toBeLessThanOrEqual(2);

    // quiet for over gatherMs: the next request is not held back
    const appended = Date.now();
    await log.append([row('lone')], { clientIds: false });
    for (let i = 0; i < 100 && blocks.at(-1)!.ids[0] !== 'lone'; i++) await sleep(10);
    expect(blocks.at(-1)!.ids).toEqual(['lone']);
    expect(blocks.at(-1)!.at - appended).toBeLessThan(500);

    await runner.stop(1000);
    await log.stopAppends();
  });
});
