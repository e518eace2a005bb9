// The shared id registry of a cluster (PostgreSQL): which copy of a client-supplied event id is the
// one stored. Every node has its own write-ahead log, so an id sent to node A and then to node B sits
// in two logs; checking storage alone cannot decide (A's copy may not be loaded yet, or A may be dead
// with it in its log). Each copy is named by a *claimant* — the node's identity and the position of
// its log record — and the first claimant of (project_id, id) wins, through INSERT … ON CONFLICT DO
// NOTHING. A copy whose id is claimed by another claimant is not stored; a node replaying its log
// after a crash claims with the same claimant again and finds its own claim, so its own rows stay.
//
// Claims are made twice for each copy, with the same claimant: when the request is answered (so the
// answer counts the duplicate; best effort, batched across concurrent requests) and by the loader
// before each insert (authoritative: the loader never inserts an unclaimed row). Claims older than
// RESEND_WINDOW_MS are pruned: past it, the loader's check against the events table (which looks
// that far around an event's time) is what catches a resend, as on one node.
import type { SqlDb } from './sql-db.js';
import { RESEND_WINDOW_MS } from './event-store.js';

export interface ClaimRow {
  project_id: string;
  id: string;
}

export interface Claim {
  row: ClaimRow;
  /** Names this copy: `<node id>:<log segment>:<offset>` (see src/wal/claimant.ts). */
  claimant: string;
}

const key = (r: ClaimRow) => `${r.project_id}\u0000${r.id}`;
/** PostgreSQL text cannot hold NUL, an id may: stored escaped (injective: backslashes are doubled). */
export const pgId = (id: string) => (id.includes('\\') || id.includes('\u0000') ? id.replace(/\\/g, '\\\\').replace(/\u0000/g, '\\0') : id);
const pgKey = (r: ClaimRow) => `${r.project_id}\u0000${pgId(r.id)}`;

/** Ids per statement: one JSON parameter, a few MB at most. */
const CHUNK = 5000;
/** Statements of one claim run at once: 16 requests of 1,000 ids took 350 ms one chunk after another, ~90 ms each. */
const PARALLEL_CHUNKS = 4;

export class IdClaims {
  readonly stats = { statements: 0, claimed: 0, lost: 0 };
  private queue: { claims: Claim[]; resolve: (s: Set<string>) => void; reject: (e: unknown) => void }[] = [];
  private flying = false;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(private readonly db: SqlDb, private readonly clock: () => number = Date.now) {
    if (db.dialect !== 'postgres') throw new Error('the id registry is for clusters (PostgreSQL)');
  }

  /**
   * Claims each row's (project_id, id) for its claimant. Returns the keys (`project\0id`) claimed by
   * another claimant: those copies must not be stored. A row repeated within `claims` is won by its
   * first claimant.
   */
  async claim(claims: readonly Claim[]): Promise<Set<string>> {
    const lost = new Set<string>();
    const first = new Map<string, Claim>();
    for (const c of claims) {
      const k = key(c.row);
      const had = first.get(k);
      if (!had) first.set(k, c);
      else if (had.claimant !== c.claimant) lost.add(k);
    }
    const unique = [...first.values()];
    const chunks: Claim[][] = [];
    for (let i = 0; i < unique.length; i += CHUNK) chunks.push(unique.slice(i, i + CHUNK));
    // the chunks hold distinct keys, so they do not wait on one another: a few side by side
    for (let i = 0; i < chunks.length; i += PARALLEL_CHUNKS) {
      const wave = chunks.slice(i, i + PARALLEL_CHUNKS);
      const owners = await Promise.all(wave.map((c) => this.claimChunk(c)));
      wave.forEach((chunk, j) => {
        for (const c of chunk) if (owners[j].get(pgKey(c.row)) !== c.claimant) lost.add(key(c.row));
      });
    }
    this.stats.claimed += claims.length;
    this.stats.lost += lost.size;
    return lost;
  }

  /**
   * The same, batched: concurrent callers share statements (one in flight at a time, the next takes
   * everything that queued meanwhile) — what ingest answers use, one request each.
   */
  claimBatched(claims: readonly Claim[]): Promise<Set<string>> {
    return new Promise((resolve, reject) => {
      this.queue.push({ claims: [...claims], resolve, reject });
      if (!this.flying) void this.fly();
    });
  }

  private async fly(): Promise<void> {
    this.flying = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        // each request's own repeats were removed before it got here; across requests the first wins
        const lost = await this.claim(batch.flatMap((b) => b.claims));
        for (const b of batch) {
          const mine = new Set<string>();
          for (const c of b.claims) if (lost.has(key(c.row))) mine.add(key(c.row));
          b.resolve(mine);
        }
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.flying = false;
  }

  /** The claimant holding each key (pgKey) after this statement (inserted now, or there before). */
  private async claimChunk(claims: readonly Claim[]): Promise<Map<string, string>> {
    const json = JSON.stringify(claims.map((c) => ({ p: c.row.project_id, i: pgId(c.row.id), c: c.claimant })));
    this.stats.statements++;
    // one round trip: the insert, then who holds each key. Rows another transaction inserted after
    // this statement's snapshot are not seen by its SELECT (the insert waited for them, then did
    // nothing): those few are read again below, by a statement that sees them committed.
    const rows = await this.db.all<{ p: string; i: string; c: string }>(
      `WITH input AS (SELECT p, i, c FROM json_to_recordset($1::json) AS t(p text, i text, c text)),
       ins AS (INSERT INTO event_claims (project_id, id, claimant, claimed_at)
               SELECT p, i, c, $2::bigint FROM input ON CONFLICT (project_id, id) DO NOTHING RETURNING project_id, id, claimant)
       SELECT project_id AS p, id AS i, claimant AS c FROM ins
       UNION ALL
       SELECT e.project_id, e.id, e.claimant FROM event_claims e JOIN input ON e.project_id = input.p AND e.id = input.i`,
      [json, this.clock()],
    );
    const owners = new Map<string, string>();
    for (const r of rows) owners.set(`${r.p}\u0000${r.i}`, r.c);
    const unseen = claims.filter((c) => !owners.has(pgKey(c.row)));
    if (unseen.length > 0) {
      const again = await this.db.all<{ p: string; i: string; c: string }>(
        `SELECT e.project_id AS p, e.id AS i, e.claimant AS c FROM event_claims e
         JOIN json_to_recordset($1::json) AS t(p text, i text) ON e.project_id = t.p AND e.id = t.i`,
        [JSON.stringify(unseen.map((c) => ({ p: c.row.project_id, i: pgId(c.row.id) })))],
      );
      for (const r of again) owners.set(`${r.p}\u0000${r.i}`, r.c);
      // still nobody (pruned in between): claimed by no one is not claimed by us — the caller retries
      if (unseen.some((c) => !owners.has(pgKey(c.row)))) throw new Error('id registry: a claim vanished while being made; retrying');
    }
    return owners;
  }

  /** Deletes claims older than the resend window. Any node may run it; concurrent runs are harmless. */
  async prune(): Promise<number> {
    return (await this.db.run('DELETE FROM event_claims WHERE claimed_at < ?', [this.clock() - RESEND_WINDOW_MS])).changes;
  }

  /** Prunes every `everyMs` (errors are logged and retried at the next run). */
  startPruning(everyMs: number, log: (msg: string, err: unknown) => void): void {
    this.pruneTimer = setInterval(() => this.prune().catch((e) => log('id registry: pruning failed', e)), everyMs);
    this.pruneTimer.unref();
  }

  stop(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
  }
}
