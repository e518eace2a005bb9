// The group-commit writer against real chDB: one request's row that storage refuses for its data
// fails that row only; every other row of the group, of every tenant, is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChdbTransport } from '../storage/chdb-transport.js';
import { EventStore } from '../storage/event-store.js';
import { normalize, type EventRow } from '../event.js';
import { removeDir, tempDir } from '../../test/helpers.js';
import { GroupCommitWriter } from './writer.js';
import { Collector } from './ingest.js';

let dir: string;
let store: EventStore;

beforeAll(async () => {
  dir = tempDir();
  store = new EventStore(new ChdbTransport(dir));
  await store.init();
});
afterAll(async () => {
  await store.close();
  removeDir(dir);
});

function row(project: string, message: string): EventRow {
  const r = normalize({ project_id: project, message }, Date.now());
  if (!r.ok) throw new Error('bad test row');
  return r.row;
}

describe('GroupCommitWriter isolation', () => {
  it('stores the rest of a group when one row is refused, and tells only its request', async () => {
    // a long interval: all three requests land in one insert
    const writer = new GroupCommitWriter(store, { maxEvents: 10_000, intervalMs: 50, maxQueued: 100_000 });
    const poison = row('w_poison', 'ok');
    poison.message = 'lone \ud800 surrogate'; // as if validation had let it through
    const a = writer.write([row('w_a', 'a1'), row('w_a', 'a2')], false);
    const b = writer.write([row('w_b', 'b1')], false);
    const c = writer.write([row('w_poison', 'fine'), poison, row('w_poison', 'fine too')], false);
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    expect(ra.refused).toEqual([]);
    expect(rb.refused).toEqual([]);
    expect(rc.refused.map((r) => r.row)).toEqual([poison]);
    expect(writer.stats.flushes).toBe(1);
    const stored = await store.query<{ project_id: string; message: string }>(
      "SELECT project_id, message FROM events WHERE project_id IN ('w_a', 'w_b', 'w_poison') ORDER BY message");
    expect(stored.map((r) => r.message)).toEqual(['a1', 'a2', 'b1', 'fine', 'fine too']);
    await writer.close();
  });

  it('the collector turns a refused row into a rejection naming its index and field', async () => {
    const writer = new GroupCommitWriter(store, { maxEvents: 10_000, intervalMs: 0, maxQueued: 100_000 });
    const collector = new Collector(writer, [(r) => {
      if (r.message === 'poison') r.user_id = 'u\ud800';
    }]);
    const p = { name: 't', scopes: new Set(['ingest'] as const), projects: '*' as const };
    const res = await collector.ingest([{ project_id: 'c1', message: 'one' }, { project_id: 'c1' }, { project_id: 'c1', message: 'poison' }, { nope: 1 }], p);
    expect(res.accepted).toBe(2);
    expect(res.rejected.map((r) => r.index)).toEqual([2, 3]);
    expect(res.rejected[0].errors[0].field).toBe('user_id');
    expect(res.rejected[0].errors[0].message).toMatch(/storage refused/);
    expect(res.ids).toHaveLength(2);
    await writer.close();
  });
});
