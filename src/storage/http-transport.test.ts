// The server transport's pure parts: error parsing, insert conversion and DDL sharding (its
// parameter binding is tested in sql-params.test.ts).
import { describe, expect, it } from 'vitest';
import { compactToEachRow, replicatedEngine, serverError, shardStatement } from './http-transport.js';

describe('serverError', () => {
  it('keeps the server\'s message and code, without the stack', () => {
    const old = serverError('Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 8, e.what() = DB::Exception\n', 500);
    expect(old.message).toBe('ClickHouse: Code: 62, DB::Exception: Syntax error: failed at position 8');
    expect(old.clickhouseCode).toBe(62);
    const modern = serverError('Code: 60. DB::Exception: Unknown table expression identifier \'x\'. (UNKNOWN_TABLE) (version 24.8.1.1)\nStack trace:\n0. DB::Exception…', 404, '60');
    expect(modern.message).toBe("ClickHouse: Code: 60. DB::Exception: Unknown table expression identifier 'x'. (UNKNOWN_TABLE) (version 24.8.1.1)");
    expect(modern.clickhouseCode).toBe(60);
    expect(modern).not.toHaveProperty('statusCode'); // the HTTP layer would take it for a client error
  });
});

describe('compactToEachRow', () => {
  it('names every value with its column', () => {
    const payload = Buffer.from(['["a",1,null,["k"],"ü\\n\\"q\\""]', '', '["b",-2.5,3,[],""]'].join('\n'));
    const out = compactToEachRow(['id', 'n', 'r', 'ks', 'm'], payload).toString();
    expect(out.split('\n').filter(Boolean).map((l) => JSON.parse(l))).toEqual([
      { id: 'a', n: 1, r: null, ks: ['k'], m: 'ü\n"q"' },
      { id: 'b', n: -2.5, r: 3, ks: [], m: '' },
    ]);
    expect(() => compactToEachRow(['a', 'b'], Buffer.from('["x"]'))).toThrow(/1 values for 2 columns/);
  });
});

describe('shardStatement', () => {
  it('puts tables on every shard with a Distributed table over them, and views on the local tables', () => {
    expect(shardStatement('CREATE TABLE IF NOT EXISTS events (id String) ENGINE = MergeTree() ORDER BY id', 'c', 'db')).toEqual([
      'CREATE TABLE IF NOT EXISTS db.events_local ON CLUSTER c (id String) ENGINE = MergeTree() ORDER BY id',
      "CREATE TABLE IF NOT EXISTS db.events ON CLUSTER c AS db.events_local ENGINE = Distributed(c, db, events_local, cityHash64(project_id, if(session_id = '', id, session_id)))",
    ]);
    expect(shardStatement('CREATE MATERIALIZED VIEW IF NOT EXISTS k_mv TO k AS\n SELECT a FROM events WHERE 1', 'c', 'db', { onCluster: false }))
      .toEqual(['CREATE MATERIALIZED VIEW IF NOT EXISTS db.k_mv TO db.k_local AS\n SELECT a FROM db.events_local WHERE 1']);
    expect(() => shardStatement('CREATE MATERIALIZED VIEW IF NOT EXISTS v TO t AS SELECT a FROM x WHERE a IN (SELECT a FROM y)', 'c', 'db')).toThrow(/several tables/);
    expect(shardStatement('SELECT 1', 'c', 'db')).toEqual(['SELECT 1']);
    expect(() => shardStatement('CREATE TABLE x (a String)', 'c;', 'db')).toThrow(/identifier/);
  });

  it('makes the local tables Replicated on a cluster with replicas, keeping the engine\'s own arguments', () => {
    const [local] = shardStatement('CREATE TABLE IF NOT EXISTS r (a String) ENGINE = AggregatingMergeTree() PARTITION BY a ORDER BY a', 'c', 'db', { replicated: true });
    expect(local).toBe("CREATE TABLE IF NOT EXISTS db.r_local ON CLUSTER c (a String) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db.r_local', '{replica}') PARTITION BY a ORDER BY a");
    expect(replicatedEngine('CREATE TABLE t (v Int8) ENGINE = ReplacingMergeTree(v) ORDER BY v', 'db', 't'))
      .toBe("CREATE TABLE t (v Int8) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db.t', '{replica}', v) ORDER BY v");
    expect(() => replicatedEngine('CREATE TABLE t (v Int8) ENGINE = Log', 'db', 't')).toThrow(/no MergeTree/);
  });
});
