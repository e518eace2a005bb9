// The loader against real chDB: a row storage refuses for a data reason (one that slipped past
// validation) is quarantined on its own; the rows loaded with it are stored and the log moves on.
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir } from '../../test/helpers.js';
import { normalize, type EventRow } from '../event.js';
import { ChdbTransport } from '../storage/chdb-transport.js';
import { EventStore } from '../storage/event-store.js';
import { WritePath } from './write-path.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function row(id: string, message: string): EventRow {
  const r = normalize({ project_id: 'pf_poison', id, message }, Date.now());
  if (!r.ok) throw new Error('bad test event');
  return r.row;
}

describe('loader', () => {
  it('quarantines the row storage refuses and stores the rest of its block', async () => {
    const dir = tempDir('pm-loader-');
    dirs.push(dir);
    const store = new EventStore(new ChdbTransport(join(dir, 'events')));
    await store.init();
    const logged: string[] = [];
    const wp = await WritePath.open(store, {
      dir: join(dir, 'wal'), maxBytes: 64 << 20, maxWaitingBytes: 64 << 20, blockRows: 10_000, intervalMs: 50,
      insertTimeoutMs: 60_000, log: (_level, _obj, msg) => logged.push(msg),
    });
    wp.start();
    // validation makes strings well-formed; this row is made after it, as a bug upstream would
    const poison = row('poison-1', 'ok');
    poison.message = 'lone \ud800 surrogate';
    const good = Array.from({ length: 50 }, (_, i) => row(`good-${i}`, `fine ${i}`));
    await Promise.all([
      wp.accept(good.slice(0, 25), { clientIds: true }),
      wp.accept([poison], { clientIds: true }),
      wp.accept(good.slice(25), { clientIds: true }),
    ]);
    expect(await wp.visible(20_000)).toBe(true);
    const stored = await store.query<{ id: string }>("SELECT id FROM events WHERE project_id = 'pf_poison' ORDER BY id");
    expect(stored.map((r) => r.id).sort()).toEqual(good.map((r) => r.id).sort());
    expect(wp.loader.stats.quarantined).toBe(1);
    const dead = readFileSync(join(dir, 'wal', 'quarantine.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(dead.map((d) => d.row.id)).toEqual(['poison-1']);
    expect(logged.some((m) => m.includes('quarantined'))).toBe(true);
    // the log moved on: a later request is loaded as usual
    await wp.accept([row('after-1', 'later')], { clientIds: true });
    expect(await wp.visible(20_000)).toBe(true);
    expect(await store.query("SELECT id FROM events WHERE id = 'after-1'")).toHaveLength(1);
    await wp.close(2_000);
    await store.close();
  });

  it('leaves out rows whose id storage holds, keeping their neighbours in the same record', async () => {
    const dir = tempDir('pm-loader-');
    dirs.push(dir);
    const store = new EventStore(new ChdbTransport(join(dir, 'events')));
    await store.init();
    const open = () => WritePath.open(store, {
      dir: join(dir, 'wal'), maxBytes: 64 << 20, maxWaitingBytes: 64 << 20, blockRows: 10_000, intervalMs: 20,
      insertTimeoutMs: 60_000, log: () => undefined,
    });
    let wp = await open();
    wp.start();
    await wp.accept([row('d-1', 'first'), row('d-2', 'first')], { clientIds: true });
    expect(await wp.visible(20_000)).toBe(true);
    await wp.close(2_000);
    // a new run does not remember the ids: storage answers for them, mid-record
    wp = await open();
    wp.start();
    await wp.accept([row('d-0', 'new'), row('d-1', 'resent'), row('d-3', 'new "quoted"\nline'), row('d-2', 'resent'), row('d-4', 'new')], { clientIds: true });
    expect(await wp.visible(20_000)).toBe(true);
    const stored = await store.query<{ id: string; message: string }>("SELECT id, message FROM events WHERE project_id = 'pf_poison' AND id LIKE 'd-%' ORDER BY id");
    expect(stored).toEqual([
      { id: 'd-0', message: 'new' }, { id: 'd-1', message: 'first' }, { id: 'd-2', message: 'first' },
      { id: 'd-3', message: 'new "quoted"\nline' }, { id: 'd-4', message: 'new' },
    ]);
    expect(wp.loader.stats.duplicates).toBe(2);
    await wp.close(2_000);
    await store.close();
  });
});
