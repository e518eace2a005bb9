// The write path's segments against real chDB: once everything is loaded and observed, no segment
// file keeps the loaded records — neither after a clean stop nor on an idle engine (the last segment
// is rolled away) — and what comes after is loaded as usual.
import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir } from '../../test/helpers.js';
import { normalize, type EventRow } from '../event.js';
import { ChdbTransport } from '../storage/chdb-transport.js';
import { EventStore } from '../storage/event-store.js';
import { WritePath } from './write-path.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function row(id: string): EventRow {
  const r = normalize({ project_id: 'pf_segs', id, message: `m ${id} ${'x'.repeat(200)}` }, Date.now());
  if (!r.ok) throw new Error('bad test event');
  return r.row;
}

/** Bytes of records kept in segment files. */
function segmentBytes(dir: string): number {
  return readdirSync(dir).filter((f) => f.endsWith('.wal')).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

const open = (store: EventStore, dir: string) => WritePath.open(store, {
  dir, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20, blockRows: 10_000, intervalMs: 50, insertTimeoutMs: 60_000, log: () => undefined,
});

describe('write path segments', () => {
  it('leaves no loaded record on disk after a clean stop, or once idle', async () => {
    const dir = tempDir('pm-wp-');
    dirs.push(dir);
    const wal = join(dir, 'wal');
    const store = new EventStore(new ChdbTransport(join(dir, 'events')));
    await store.init();
    const wp = await open(store, wal);
    wp.start();
    await Promise.all(Array.from({ length: 10 }, (_, b) => wp.accept(Array.from({ length: 100 }, (_, i) => row(`a-${b}-${i}`)), { clientIds: true })));
    expect(await wp.visible(20_000)).toBe(true);
    expect(segmentBytes(wal)).toBeGreaterThan(100_000);
    await wp.close(5_000);
    expect(wp.stats.releasedAtStop).toBeGreaterThan(0);
    expect(segmentBytes(wal)).toBe(0);

    // the next start has nothing to replay, takes new events, and an idle log lets its segment go
    const again = await open(store, wal);
    again.start();
    await again.accept([row('b-1'), row('b-2')], { clientIds: true });
    expect(await again.visible(20_000)).toBe(true);
    expect(again.loader.stats.rowsLoaded).toBe(2);
    for (let i = 0; i < 200 && again.stats.rolls === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(again.stats.rolls).toBeGreaterThan(0);
    expect(segmentBytes(wal)).toBe(0);
    // after the roll the log's end is the new segment's start: reads see everything at once, and
    // what is appended next is loaded
    expect(await again.visible(20_000)).toBe(true);
    await again.accept([row('b-3')], { clientIds: true });
    expect(await again.visible(20_000)).toBe(true);
    const stored = await store.query<{ id: string }>("SELECT id FROM events WHERE project_id = 'pf_segs' AND id LIKE 'b-%' ORDER BY id");
    expect(stored.map((r) => r.id)).toEqual(['b-1', 'b-2', 'b-3']);
    await again.close(5_000);
    expect(segmentBytes(wal)).toBe(0);
    const [n] = await store.query<{ n: number }>("SELECT count() AS n FROM events WHERE project_id = 'pf_segs'");
    expect(Number(n.n)).toBe(1003);
    await store.close();
  }, 60_000);

  it('makes a query wait for its own writer\'s acknowledged events only', async () => {
    const dir = tempDir('pm-wp-ryw-');
    dirs.push(dir);
    const store = new EventStore(new ChdbTransport(join(dir, 'events')));
    await store.init();
    const wp = await open(store, join(dir, 'wal'));
    // the loader is not started yet: nothing acknowledged reaches storage
    await wp.accept([row('w-1')], { clientIds: true, writer: 'key-a' });
    expect(await wp.visible(200, 'key-b')).toBe(true);
    expect(await wp.visible(200, 'key-a')).toBe(false);
    expect(await wp.visible(200)).toBe(false);
    wp.start();
    expect(await wp.visible(20_000, 'key-a')).toBe(true);
    const stored = await store.query<{ id: string }>("SELECT id FROM events WHERE project_id = 'pf_segs' AND id = 'w-1'");
    expect(stored).toHaveLength(1);
    // a later write of the same writer is waited for again
    await wp.loader.stop(5_000);
    await wp.accept([row('w-2')], { clientIds: true, writer: 'key-a' });
    expect(await wp.visible(200, 'key-a')).toBe(false);
    expect(await wp.visible(200, 'key-b')).toBe(true);
    await wp.close(5_000);
    await store.close();
  }, 60_000);
});
