// The loader's filter of stored ids against real chDB: filled from what storage holds (across
// partitions, and through a key shared by more events than a page), it knows every stored id; the
// loader then skips the storage look-up for new ids and still never stores a resent id twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { removeDir, tempDir } from '../../test/helpers.js';
import { normalize, type EventRow } from '../event.js';
import { ChdbTransport } from '../storage/chdb-transport.js';
import { EventStore } from '../storage/event-store.js';
import { StoredIds } from './stored-ids.js';
import { WritePath } from './write-path.js';

// chDB holds one data directory per process: one store for the file, a project per test
const dir = tempDir('pm-ids-');
let store: EventStore;
beforeAll(async () => {
  store = new EventStore(new ChdbTransport(join(dir, 'events')));
  await store.init();
});
afterAll(async () => {
  await store.close();
  removeDir(dir);
});

const DAY = 86_400_000;

function row(project: string, id: string, timestamp?: number): EventRow {
  const r = normalize({ project_id: project, id, message: `m ${id}`, ...(timestamp ? { timestamp: new Date(timestamp).toISOString() } : {}) }, Date.now());
  if (!r.ok) throw new Error('bad test event');
  return r.row;
}

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('stored ids', () => {
  it('is filled with every stored id, across partitions and through a key longer than a page', async () => {
    const now = Date.now();
    const rows: EventRow[] = [];
    // three days (three partitions), two projects, and 130 events sharing one (project, timestamp)
    for (let d = 0; d < 3; d++) for (let i = 0; i < 70; i++) rows.push(row(i % 2 ? 'pf_a' : 'pf_b', `s-${d}-${i}`, now - d * DAY - i * 1000));
    for (let i = 0; i < 130; i++) rows.push(row('pf_a', `same-${i}`, now - 5000));
    await store.insert(rows);
    const logged: string[] = [];
    const ids = await StoredIds.open(store, (_l, _o, msg) => logged.push(msg), { pageRows: 25, minCapacity: 10_000 });
    // before the scan is done nothing is said to be new
    expect(ids.mayBeStored('pf_a', 'never-stored')).toBe(true);
    await ids.fill();
    expect(ids.complete).toBe(true);
    for (const r of rows) expect(ids.mayBeStored(r.project_id, r.id)).toBe(true);
    // the same id in another project is another key
    let fp = 0;
    for (let i = 0; i < 1000; i++) if (ids.mayBeStored('pf_c', `s-0-${i % 70}`) || ids.mayBeStored('pf_a', `new-${i}`)) fp++;
    expect(fp).toBeLessThan(30);
    expect(ids.stats.scannedRows).toBeGreaterThanOrEqual(rows.length);
    expect(logged.some((m) => m.includes('filled from storage'))).toBe(true);
  });

  it('recognises an id stored before the start and skips the storage look-up for new ids', async () => {
    // stored before this engine started (a previous run), straight into storage
    const before = [row('pf_f', 'old-1'), row('pf_f', 'old-2')];
    await store.insert(before);
    const WAL = 'wal-f';
    const open = () => WritePath.open(store, {
      dir: join(dir, WAL), maxBytes: 64 << 20, maxWaitingBytes: 64 << 20, blockRows: 10_000, intervalMs: 20,
      insertTimeoutMs: 60_000, log: () => undefined, idSource: store,
    });
    let wp = await open();
    wp.start();
    await until(() => wp.storedIds!.complete);
    const fresh = Array.from({ length: 200 }, (_, i) => row('pf_f', `new-${i}`));
    await wp.accept([row('pf_f', 'old-1', Date.now()), ...fresh, row('pf_f', 'old-2')], { clientIds: true });
    expect(await wp.visible(20_000)).toBe(true);
    const s = wp.loader.stats;
    // the resent ids were looked for (found); nearly all new ones were not
    expect(s.duplicates).toBe(2);
    expect(s.idProbesSkipped).toBeGreaterThanOrEqual(195);
    expect(s.idProbes + s.idProbesSkipped).toBe(202);
    await wp.close(2_000);

    // after a restart the loaded ids are known from storage again: a resend is still stored once
    wp = await open();
    wp.start();
    await until(() => wp.storedIds!.complete);
    await wp.accept([row('pf_f', 'new-7'), row('pf_f', 'new-199'), row('pf_f', 'later-1')], { clientIds: true });
    expect(await wp.visible(20_000)).toBe(true);
    expect(wp.loader.stats.duplicates).toBe(2);
    const counts = await store.query<{ id: string; n: number }>(
      "SELECT id, count() AS n FROM events WHERE project_id = 'pf_f' GROUP BY id HAVING n > 1");
    expect(counts).toEqual([]);
    const [{ n }] = await store.query<{ n: number }>("SELECT count() AS n FROM events WHERE project_id = 'pf_f'");
    expect(Number(n)).toBe(203);
    await wp.close(2_000);
  });

  it('is not used where other nodes insert too (with an id registry)', async () => {
    const wp = await WritePath.open(store, {
      dir: join(dir, 'wal-r'), maxBytes: 64 << 20, maxWaitingBytes: 64 << 20, blockRows: 10_000, intervalMs: 20,
      insertTimeoutMs: 60_000, log: () => undefined, idSource: store,
      idRegistry: { claim: async () => new Set(), claimBatched: async () => new Set() },
    });
    expect(wp.storedIds).toBeUndefined();
    await wp.close(500);
  });
});
