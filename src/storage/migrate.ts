// The event store's schema at start: creates what is missing and brings a store written by an
// earlier layout up to the current one. Idempotent by construction: every step looks at what the
// store has (system.columns, SHOW CREATE) and changes only what differs, so it runs at every start,
// on every engine node, and a start interrupted half-way finishes at the next.
//
// From the first layout (plain String columns, no codecs, the five-rows-per-event `event_keys`
// table and its view): the view and table are dropped (no query reads them any more), columns get
// their LowCardinality types and codecs (a background mutation: queries read old parts meanwhile),
// the skip indexes are added and built for old parts, and the rollup's view is recreated to feed
// String states from LowCardinality columns. A column whose codec is not the one schema.ts asks for
// (an earlier release's level) gets the current one: metadata only, written by new parts and merges.
import {
  EVENT_INDEXES, EVENTS_TABLE, LEGACY_KEYS_TABLE, ROLLUP_STATES, ROLLUP_TABLE, eventColumnType, rollupStateCodec, schemaStatements,
} from './schema.js';
import type { ClickHouseTransport } from './transport.js';

/** ALTER_OF_COLUMN_IS_FORBIDDEN: a column of the sorting or partition key keeps its old type. */
const ALTER_FORBIDDEN = 524;

export interface MigrationReport {
  /** Statements run beyond the CREATE … IF NOT EXISTS every start runs. */
  changes: string[];
}

export async function migrateEventStore(t: ClickHouseTransport): Promise<MigrationReport> {
  const f = t.features;
  const changes: string[] = [];
  const run = async (sql: string) => {
    await t.exec(sql);
    changes.push(sql);
  };
  const local = (name: string) => (t.cluster ? `${name}_local` : name);

  if (await tableExists(t, `${LEGACY_KEYS_TABLE}_mv`)) await run(`DROP TABLE IF EXISTS ${LEGACY_KEYS_TABLE}_mv`);
  if (await tableExists(t, local(LEGACY_KEYS_TABLE))) await run(`DROP TABLE IF EXISTS ${LEGACY_KEYS_TABLE}`);

  const rollupView = `${ROLLUP_TABLE}_mv`;
  if (await tableExists(t, rollupView)) {
    const ddl = await showCreate(t, rollupView);
    // the first layout's view fed LowCardinality values into String states
    if (!/argMaxState\(toString\(error_type\)/.test(ddl)) await run(`DROP TABLE IF EXISTS ${rollupView}`);
  }
  for (const stmt of schemaStatements(f)) await t.exec(stmt);

  // column types and codecs: on one store only (a cluster's Distributed tables would need the
  // same change on every node at once; old types read correctly, so a cluster keeps them)
  if (f.codecs && !t.cluster) {
    const cols = await t.query<{ name: string; type: string; compression_codec: string }>(
      `SELECT name, type, compression_codec FROM system.columns WHERE database = currentDatabase() AND table = '${EVENTS_TABLE}'`,
    );
    for (const c of cols) {
      const want = eventColumnType(c.name, f);
      // a codec changed alone is metadata: new parts and merges write it, old parts read as they are
      if (c.type === want.type && (want.codec === '' || sameCodec(c.compression_codec, want.codec))) continue;
      try {
        await run(`ALTER TABLE ${EVENTS_TABLE} MODIFY COLUMN ${c.name} ${want.type}${want.codec ? ' ' + want.codec : ''}`);
      } catch (e) {
        if ((e as { clickhouseCode?: number }).clickhouseCode !== ALTER_FORBIDDEN && !/ALTER_OF_COLUMN_IS_FORBIDDEN/.test(String(e))) throw e;
      }
    }
  }
  // the rollup's states get their codec the same way (new parts and merges write it)
  const stateCodec = rollupStateCodec(f);
  if (stateCodec && !t.cluster) {
    const cols = await t.query<{ name: string; type: string; compression_codec: string }>(
      `SELECT name, type, compression_codec FROM system.columns WHERE database = currentDatabase() AND table = '${ROLLUP_TABLE}'`,
    );
    for (const c of cols) {
      if (!ROLLUP_STATES.some(([n]) => n === c.name) || sameCodec(c.compression_codec, stateCodec)) continue;
      await run(`ALTER TABLE ${ROLLUP_TABLE} MODIFY COLUMN ${c.name} ${c.type} ${stateCodec}`);
    }
  }
  if (f.skipIndexes) {
    const ddl = await showCreate(t, local(EVENTS_TABLE));
    for (const [name, expr, type] of EVENT_INDEXES) {
      if (new RegExp(`\\bINDEX ${name}\\b`).test(ddl)) continue;
      await run(`ALTER TABLE ${EVENTS_TABLE} ADD INDEX IF NOT EXISTS ${name} ${expr} TYPE ${type} GRANULARITY 1`);
      // old parts get the index in the background; until then they are read without it
      await run(`ALTER TABLE ${EVENTS_TABLE} MATERIALIZE INDEX ${name}`);
    }
  }
  return { changes };
}

/**
 * Whether a column's codec as system.columns shows it is the one schema.ts asks for. The server fills
 * in what the DDL left implicit: `Delta` of an Int64 reads back `Delta(8)`, a bare `ZSTD` `ZSTD(1)`.
 */
export function sameCodec(have: string, want: string): boolean {
  const norm = (c: string) => c.replace(/\s+/g, '').replace(/\b(Delta|DoubleDelta|Gorilla)\(\d+\)/g, '$1').replace(/\bZSTD(?!\()/g, 'ZSTD(1)');
  return norm(have) === norm(want);
}

async function tableExists(t: ClickHouseTransport, name: string): Promise<boolean> {
  const rows = await t.query<{ n: number }>(
    `SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = {name:String}`, { name },
  );
  return Number(rows[0]?.n) > 0;
}

async function showCreate(t: ClickHouseTransport, name: string): Promise<string> {
  const rows = await t.query<{ statement: string }>(`SHOW CREATE TABLE ${name}`);
  return String(rows[0]?.statement ?? '');
}
