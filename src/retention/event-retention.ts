// Retention on the event store: for every table of EVENT_TABLES, drop the partitions whose rows are
// all past retention, and delete the rest of the expired rows per project (ALTER TABLE … DELETE, a
// mutation: clickhouse-server has it since 1.1.54388, so 18.16 and chDB both run this). The
// statements name the logical tables; on a cluster the transport turns each ALTER into one on the
// shards' local tables ON CLUSTER.
import { EVENT_TABLES } from '../storage/schema.js';

type EventTable = (typeof EVENT_TABLES)[number];
import type { ClickHouseTransport, QueryOptions } from '../storage/transport.js';
import { latestCutoff, plan, type PartitionStat, type RetentionPolicy } from './policy.js';

export interface TableReport {
  table: string;
  dropped_partitions: string[];
  /** Projects whose expired rows were deleted inside partitions that stay. */
  deleted_for: string[];
}

/** A string literal for ClickHouse SQL (ALTER takes no query parameters on every server). */
export function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Per (partition, project): oldest and newest row, for the partitions holding anything past the latest cutoff. */
async function partitionStats(t: ClickHouseTransport, table: EventTable, before: number, q: QueryOptions): Promise<PartitionStat[]> {
  const pe = table.partitionBy;
  const tc = table.time;
  const old = await t.query<{ p: string }>(`SELECT DISTINCT toString(${pe}) AS p FROM ${table.table} WHERE ${tc} < {before:Int64}`, { before }, q);
  if (old.length === 0) return [];
  const rows = await t.query<{ partition: string; project_id: string; oldest: number; newest: number }>(
    `SELECT toString(${pe}) AS partition, project_id, min(${tc}) AS oldest, max(${tc}) AS newest FROM ${table.table}
     WHERE toString(${pe}) IN {parts:Array(String)} GROUP BY partition, project_id`,
    { parts: old.map((r) => String(r.p)) },
    q,
  );
  return rows.map((r) => ({ partition: String(r.partition), project_id: r.project_id, oldest: Number(r.oldest), newest: Number(r.newest) }));
}

/** Mutations run in the background on a server: wait (bounded) until this table's are done. */
async function mutationsDone(t: ClickHouseTransport, table: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const [r] = await t.query<{ n: number }>(
      `SELECT count() AS n FROM system.mutations WHERE database = currentDatabase() AND table IN {names:Array(String)} AND is_done = 0`,
      { names: [table, `${table}_local`] },
    );
    if (Number(r?.n ?? 0) === 0) return;
    if (Date.now() > until) throw new Error(`retention: the delete on ${table} is still running after ${deadlineMs} ms`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

export async function enforceEventRetention(
  t: ClickHouseTransport, policy: RetentionPolicy, now: number,
  o: { tables?: readonly EventTable[]; mutationDeadlineMs?: number; queryTimeoutMs?: number } = {},
): Promise<TableReport[]> {
  const reports: TableReport[] = [];
  const before = latestCutoff(policy, now);
  for (const table of o.tables ?? EVENT_TABLES) {
    // the engine's query deadline: the job never holds storage longer than a user's query may
    const p = plan(await partitionStats(t, table, before, { timeoutMs: o.queryTimeoutMs ?? 30_000 }), policy, now);
    const pe = table.partitionBy;
    for (const partition of p.drop) {
      // the partition id is the value of the key (YYYYMMDD / YYYYMM): digits only
      if (!/^\d{6,8}$/.test(partition)) throw new Error(`retention: unexpected partition ${partition} of ${table.table}`);
      await t.exec(`ALTER TABLE ${table.table} DROP PARTITION ${partition}`);
    }
    if (p.deletes.length) {
      const cond = p.deletes.map((d) => `(project_id = ${quote(d.project_id)} AND ${table.time} < ${Math.trunc(d.before)})`).join(' OR ');
      await t.exec(`ALTER TABLE ${table.table} DELETE WHERE ${cond}`);
      await mutationsDone(t, table.table, o.mutationDeadlineMs ?? 600_000);
    }
    reports.push({ table: table.table, dropped_partitions: p.drop, deleted_for: p.deletes.map((d) => d.project_id) });
  }
  return reports;
}
