// The id registry on the machine's PostgreSQL (a fresh database): the first claimant of an id wins,
// its own claim is found again (a replay), concurrent claimants of one id get one winner, odd ids
// (NUL, backslashes) are kept apart, and claims older than the resend window are pruned.
import { afterAll, describe, expect, it } from 'vitest';
import { twoPgNodes } from '../../test/control-db.js';
import { RESEND_WINDOW_MS } from './event-store.js';
import { IdClaims } from './id-claims.js';

const pgNodes = twoPgNodes();
afterAll(() => pgNodes.cleanup());
const twoNodes = () => pgNodes.open();

const row = (id: string, project_id = 'pc') => ({ project_id, id });
const k = (id: string, project = 'pc') => `${project}\u0000${id}`;

describe('IdClaims (PostgreSQL)', () => {
  it('gives an id to its first claimant; the same claimant finds its claim again, another loses', async () => {
    const [a, b] = await twoNodes();
    const A = new IdClaims(a);
    const B = new IdClaims(b);
    expect(await A.claim([{ row: row('x'), claimant: 'A:1:0' }, { row: row('y'), claimant: 'A:1:0' }])).toEqual(new Set());
    // another node's copy of x loses; its own new id is won
    expect(await B.claim([{ row: row('x'), claimant: 'B:1:0' }, { row: row('z'), claimant: 'B:1:0' }])).toEqual(new Set([k('x')]));
    // A replays its log after a crash: same claimant, so its rows stay
    expect(await A.claim([{ row: row('x'), claimant: 'A:1:0' }, { row: row('y'), claimant: 'A:1:0' }])).toEqual(new Set());
    // a later record of A with the same id (a resend A took again) loses to A's first copy
    expect(await A.claim([{ row: row('x'), claimant: 'A:1:99' }])).toEqual(new Set([k('x')]));
    // the same id in another project is another id; within one call the first copy wins
    expect(await B.claim([{ row: row('x', 'other'), claimant: 'B:2:0' }, { row: row('x', 'other'), claimant: 'B:2:50' }])).toEqual(new Set([k('x', 'other')]));
  });

  it('keeps ids that differ only by NUL or backslashes apart', async () => {
    const [a] = await twoNodes();
    const A = new IdClaims(a);
    const ids = ['a\u0000b', 'a\\0b', 'a\\\\0b', 'a\\b', 'ab'];
    expect(await A.claim(ids.map((id, i) => ({ row: row(id), claimant: `A:1:${i}` })))).toEqual(new Set());
    expect(await A.claim(ids.map((id, i) => ({ row: row(id), claimant: `A:1:${i}` })))).toEqual(new Set());
    expect(await A.claim(ids.map((id) => ({ row: row(id), claimant: 'A:9:9' })))).toEqual(new Set(ids.map((id) => k(id))));
  });

  it('two nodes claiming the same ids at once: each id has exactly one winner', async () => {
    const [a, b] = await twoNodes();
    const A = new IdClaims(a);
    const B = new IdClaims(b);
    const ids = Array.from({ length: 2000 }, (_, i) => `c-${i}`);
    // batched claims (as answers make them), several requests per node in flight together
    const claimAll = (n: IdClaims, name: string) => Promise.all(Array.from({ length: 10 }, (_, r) =>
      n.claimBatched(ids.slice(r * 200, r * 200 + 200).map((id) => ({ row: row(id), claimant: `${name}:${r}:0` })))));
    const [lostA, lostB] = await Promise.all([claimAll(A, 'A'), claimAll(B, 'B')]);
    const la = new Set(lostA.flatMap((s) => [...s]));
    const lb = new Set(lostB.flatMap((s) => [...s]));
    for (const id of ids) expect(Number(la.has(k(id))) + Number(lb.has(k(id))), id).toBe(1);
    // one statement served several requests
    expect(A.stats.statements + B.stats.statements).toBeLessThan(20);
  });

  it('a claim larger than one statement: its chunks, made side by side, lose exactly the ids held elsewhere', async () => {
    const [a, b] = await twoNodes();
    const A = new IdClaims(a);
    const B = new IdClaims(b);
    const ids = Array.from({ length: 23_000 }, (_, i) => `big-${i}`);
    const held = ids.filter((_, i) => i % 997 === 0);
    expect(await B.claim(held.map((id) => ({ row: row(id), claimant: 'B:1:0' })))).toEqual(new Set());
    const statements = A.stats.statements;
    const lost = await A.claim(ids.map((id) => ({ row: row(id), claimant: 'A:1:0' })));
    expect(A.stats.statements - statements).toBe(5);
    expect(lost).toEqual(new Set(held.map((id) => k(id))));
    // the replay finds every one of its own claims again
    expect(await A.claim(ids.map((id) => ({ row: row(id), claimant: 'A:1:0' })))).toEqual(new Set(held.map((id) => k(id))));
  });

  it('prunes claims older than the resend window, and only those', async () => {
    const [a] = await twoNodes();
    let now = 10 * RESEND_WINDOW_MS;
    const A = new IdClaims(a, () => now);
    await A.claim([{ row: row('old'), claimant: 'A:1:0' }]);
    now += RESEND_WINDOW_MS / 2;
    await A.claim([{ row: row('new'), claimant: 'A:1:1' }]);
    now += RESEND_WINDOW_MS / 2 + 1;
    expect(await A.prune()).toBe(1);
    // the old id is free again (the loader's check against the events table covers it from now on)
    expect(await A.claim([{ row: row('old'), claimant: 'B:1:0' }, { row: row('new'), claimant: 'B:1:0' }])).toEqual(new Set([k('new')]));
  });
});
