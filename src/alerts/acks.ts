// Acknowledgements: someone on call has seen a firing alert group. An acknowledged group sends no
// repeats for the rest of its firing episode; the next episode (after it resolved) starts unacknowledged.
// Its own table (CREATE TABLE IF NOT EXISTS, like the other control tables), keyed by group.
import type { SqlDb } from '../storage/sql-db.js';
import { placeholders } from './store.js';

export const ACK_TABLES = [
  `CREATE TABLE IF NOT EXISTS alert_group_acks (
     group_id TEXT PRIMARY KEY,
     episode_start BIGINT NOT NULL,
     acknowledged_at BIGINT NOT NULL,
     acknowledged_by TEXT
   )`,
];

export interface Ack {
  group_id: string;
  /** The firing episode it covers (alert_groups.episode_start). */
  episode_start: number;
  acknowledged_at: number;
  acknowledged_by: string | null;
}

/** Pure: does this acknowledgement cover the group's current firing episode? */
export function covers(ack: Ack | undefined, g: { state: string; episode_start: number }): boolean {
  return !!ack && g.state === 'firing' && Number(ack.episode_start) === Number(g.episode_start);
}

export class AckStore {
  constructor(private readonly db: SqlDb) {}

  async migrate(): Promise<void> {
    for (const s of ACK_TABLES) await this.db.run(s);
  }

  async ack(a: Ack): Promise<void> {
    await this.db.run(
      `INSERT INTO alert_group_acks (group_id, episode_start, acknowledged_at, acknowledged_by) VALUES (?, ?, ?, ?)
       ON CONFLICT (group_id) DO UPDATE SET episode_start = excluded.episode_start, acknowledged_at = excluded.acknowledged_at,
         acknowledged_by = excluded.acknowledged_by`,
      [a.group_id, a.episode_start, a.acknowledged_at, a.acknowledged_by],
    );
  }

  async get(groupId: string): Promise<Ack | undefined> {
    return (await this.getMany([groupId])).get(groupId);
  }

  async getMany(groupIds: readonly string[]): Promise<Map<string, Ack>> {
    const out = new Map<string, Ack>();
    if (groupIds.length === 0) return out;
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT * FROM alert_group_acks WHERE group_id IN (${placeholders(groupIds.length)})`, [...groupIds]);
    for (const r of rows) {
      out.set(String(r.group_id), {
        group_id: String(r.group_id), episode_start: Number(r.episode_start), acknowledged_at: Number(r.acknowledged_at),
        acknowledged_by: (r.acknowledged_by as string | null) ?? null,
      });
    }
    return out;
  }
}
