// The control bus on the machine's PostgreSQL: a change published by one node reaches the others
// (and the publisher, told it is its own), and a listener that loses its connection comes back by
// itself and then fires every topic once.
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, dropTestDatabases } from '../../test/control-db.js';
import { CONTROL_TOPICS, LocalBus, PgBus } from './control-bus.js';

afterAll(async () => {
  await dropTestDatabases();
});

const until = async (ok: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('control bus', () => {
  it('in one process: listeners run at once, told the change is their own', async () => {
    const bus = new LocalBus();
    const got: boolean[] = [];
    bus.on('keys', (fromHere) => got.push(fromHere));
    await bus.publish('keys');
    await bus.publish('rules');
    expect(got).toEqual([true]);
  });

  it('messages: reach every node with their text, told which is their own; a line break is refused', async () => {
    const local = new LocalBus();
    const seenLocal: string[] = [];
    local.onMessage('ui_notification', (d, own) => seenLocal.push(`${d}:${own}`));
    await local.send('ui_notification', 'n1:c 1');
    expect(seenLocal).toEqual(['n1:c 1:true']);
    await expect(local.send('ui_notification', 'a\nb')).rejects.toThrow();

    const url = await createTestDatabase();
    const [a, b] = await Promise.all([PgBus.start(url), PgBus.start(url)]);
    try {
      const seen: string[] = [];
      const changes: string[] = [];
      a.onMessage('ui_notification', (d, own) => seen.push(`a:${d}:${own}`));
      b.onMessage('ui_notification', (d, own) => seen.push(`b:${d}:${own}`));
      b.on('rules', () => changes.push('rules'));
      await a.send('ui_notification', 'n1:c with spaces');
      await a.publish('rules');
      await until(() => seen.length === 2 && changes.length === 1);
      expect(seen.sort()).toEqual(['a:n1:c with spaces:true', 'b:n1:c with spaces:false']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('on PostgreSQL: reaches every node, and reconnects after its connection is killed', async () => {
    const url = await createTestDatabase();
    const [a, b] = await Promise.all([PgBus.start(url), PgBus.start(url)]);
    try {
      const seen: string[] = [];
      a.on('keys', (own) => seen.push(`a:keys:${own}`));
      b.on('keys', (own) => seen.push(`b:keys:${own}`));
      const t0 = Date.now();
      await a.publish('keys');
      await until(() => seen.length === 2);
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(seen.sort()).toEqual(['a:keys:true', 'b:keys:false']);

      // b's listening connection is killed (as a PostgreSQL restart would): it comes back and reloads all
      const reloaded: string[] = [];
      for (const t of CONTROL_TOPICS) b.on(t, (own) => reloaded.push(`${t}:${own}`));
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()");
      await admin.end();
      await until(() => reloaded.length >= CONTROL_TOPICS.length);
      expect(reloaded.slice(0, CONTROL_TOPICS.length).sort()).toEqual(CONTROL_TOPICS.map((t) => `${t}:false`).sort());
      seen.length = 0;
      await a.publish('keys');
      await until(() => seen.includes('b:keys:false'));
    } finally {
      await a.close();
      await b.close();
    }
  });
});
