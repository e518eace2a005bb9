// Query parameter binding: client-side literals (servers without query parameters, and chDB) and the
// native parameter encoding. Both are checked against chDB's own parser (ClickHouse 26.7) here; the
// server test (event-store.server.test.ts) checks them against clickhouse-server 18.16.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from 'chdb';
import { removeDir, tempDir } from '../../test/helpers.js';
import { bindLiterals, encodeNativeParams, placeholders, quoteString } from './sql-params.js';

const HOSTILE = [
  '', "it's", "''", 'back\\slash', '\\', "\\'", 'quote\'\\\'', 'nul\u0000byte', 'line\nbreak\r\ttab\b\f\v',
  '{p0:String}', '{x:Array(String)}', '{{p1:Int64}}', 'ünïcødé ДАННЫЕ 日本語 😀 \u2028\u2029', "'; DROP TABLE events; --",
  '\\x41\\0\\n', '\u0001\u001f\u007f', '/* c */ -- d', '`"', '%00%27', 'a'.repeat(5000),
];

describe('placeholders', () => {
  it('finds {name:Type} outside strings, quoted names and comments', () => {
    const sql = `SELECT {a:String}, '{b:String}', "{c:String}", \`{d:String}\`, 'it\\'s {e:String}', 'x''{f:String}' -- {g:String}
      /* {h:String} */ {i : Array( String )} {not a placeholder} {j:Int64}`;
    expect(placeholders(sql).map((p) => [p.name, p.type])).toEqual([['a', 'String'], ['i', 'Array(String)'], ['j', 'Int64']]);
  });
});

describe('bindLiterals', () => {
  it('quotes strings: quotes and backslashes escaped, control characters as escapes, the rest as is', () => {
    expect(bindLiterals('SELECT {s:String}', { s: "it's" })).toBe("SELECT 'it\\'s'");
    expect(bindLiterals('SELECT {s:String}', { s: 'a\\b' })).toBe("SELECT 'a\\\\b'");
    expect(bindLiterals('SELECT {s:String}', { s: 'a\u0000b\nc\rd\te\u0001f\u007f' })).toBe("SELECT 'a\\0b\\nc\\rd\\te\\x01f\\x7f'");
    expect(bindLiterals('SELECT {s:String}', { s: 'ü😀' })).toBe("SELECT 'ü😀'");
    expect(quoteString("\\'")).toBe("'\\\\\\''");
  });

  it('never substitutes into a value, even one that looks like a placeholder', () => {
    const out = bindLiterals('SELECT {a:String}, {b:String}', { a: '{b:String}', b: "x'" });
    expect(out).toBe("SELECT '{b:String}', 'x\\''");
    expect(bindLiterals('SELECT {a:String}, {a:String}', { a: 'v' })).toBe("SELECT 'v', 'v'");
  });

  it('binds numbers as literals of their type, negatives in parentheses', () => {
    expect(bindLiterals('SELECT {a:Int64}, {b:Int64}, {c:UInt8}, {d:Float64}, {e:Float64}, {f:Float64}, {g:Int64}', {
      a: 1_753_401_600_000, b: -5, c: 255, d: 2, e: -0.5, f: 1e21, g: 9_223_372_036_854_775_807n as unknown as number,
    })).toBe('SELECT 1753401600000, (-5), 255, 2.0, (-0.5), 1e+21, 9223372036854775807');
    // `x -{n}` must not become a comment
    expect(bindLiterals('SELECT 1 -{n:Int64}', { n: -1 })).toBe('SELECT 1 -(-1)');
  });

  it('rejects values that do not fit their type', () => {
    const bad: [string, unknown][] = [
      ['Int64', 1.5], ['Int64', '5'], ['Int64', Number.MAX_SAFE_INTEGER + 1], ['Int64', 2n ** 63n], ['UInt8', 256], ['UInt32', -1],
      ['Float64', Infinity], ['Float64', NaN], ['Float64', '1'], ['String', 5], ['String', null], ['String', ['a']],
      ['Array(String)', 'a'], ['Array(String)', [1]], ['Array(Int64)', ['1']], ['Date', '2025-01-01'], ['Nullable(String)', 'a'],
      ['Map(String, String)', {}], ['Bool', 1],
    ];
    for (const [type, v] of bad) {
      expect(() => bindLiterals(`SELECT {v:${type}}`, { v: v as string }), `${type} ${String(v)}`).toThrow(/query parameter v/);
    }
    expect(() => bindLiterals('SELECT {v:String}', {})).toThrow(/v is missing/);
  });

  it('binds arrays as array literals, and after IN as tuples, (NULL) when empty, a subquery when long', () => {
    expect(bindLiterals('SELECT has({a:Array(String)}, x)', { a: ['a', "b'"] })).toBe("SELECT has(['a', 'b\\''], x)");
    expect(bindLiterals('SELECT {a:Array(Int64)}[1]', { a: [1, -2] })).toBe('SELECT [1, (-2)][1]');
    expect(bindLiterals('x IN {a:Array(String)}', { a: ['a', 'b'] })).toBe("x IN ('a', 'b')");
    expect(bindLiterals('x not in {a:Array(String)}', { a: ['a'] })).toBe("x not in ('a')");
    expect(bindLiterals('x GLOBAL IN\n  {a:Array(String)}', { a: [] })).toBe('x GLOBAL IN\n  (NULL)');
    expect(bindLiterals('x IN {a:Array(String)}', { a: Array.from({ length: 300 }, (_, i) => `v${i}`) }))
      .toMatch(/^x IN \(SELECT arrayJoin\(\['v0', 'v1', .*'v299'\]\)\)$/);
    expect(bindLiterals('MIN {a:Array(String)}', { a: [] })).toBe('MIN []');
    expect(bindLiterals('SELECT {a:Array(Array(String))}', { a: [['x'], []] as unknown as string[] })).toBe("SELECT [['x'], []]");
  });
});

describe('native parameters', () => {
  it('encodes values in the escaped text form the server reads', () => {
    const { entries } = encodeNativeParams('SELECT {s:String}, {a:Array(String)}, {n:Int64}, {unused:String}', {
      s: "a'b\\c\td\n", a: ["x'", 'y\\'], n: -3, unused: 'u', extra: 'e',
    });
    expect(entries).toEqual([['s', "a\\'b\\\\c\\td\\n"], ['a', "['x\\'','y\\\\']"], ['n', '-3'], ['unused', 'u']]);
    expect(() => encodeNativeParams('SELECT {n:Int64}', { n: 'x' })).toThrow(/expected an integer/);
  });
});

describe('against ClickHouse 26.7 (chDB)', () => {
  let dir: string;
  let s: Session;
  beforeAll(() => {
    dir = tempDir('pm-bind-');
    s = new Session(dir);
  });
  afterAll(() => {
    s.close();
    removeDir(dir);
  });
  const one = (sql: string): Record<string, unknown> => JSON.parse(s.query(sql, 'JSONEachRow'));

  it('bound literals read back as the values, in and out of IN', () => {
    for (const v of HOSTILE) {
      const sql = bindLiterals('SELECT {v:String} AS v, {a:Array(String)} AS a, {v:String} IN {a:Array(String)} AS i, {v:String} IN {none:Array(String)} AS n',
        { v, a: [v, 'x'], none: [] });
      expect(one(sql), JSON.stringify(v)).toEqual({ v, a: [v, 'x'], i: 1, n: 0 });
    }
    const many = Array.from({ length: 1000 }, (_, i) => `k${i}`);
    expect(one(bindLiterals("SELECT 'k999' IN {m:Array(String)} AS i, {t:Int64} - 1 AS t, 10 -{neg:Int64} AS d, {f:Float64} AS f",
      { m: many, t: 1_753_401_600_000, neg: -5, f: 2 }))).toEqual({ i: 1, t: 1_753_401_599_999, d: 15, f: 2 });
  });

  it('native parameters read back as the values', () => {
    for (const v of HOSTILE) {
      const { entries } = encodeNativeParams('SELECT {v:String}, {a:Array(String)}', { v, a: [v, 'x'] });
      for (const [name, text] of entries) s.query(`SET param_${name} = ${quoteString(text)}`);
      expect(one('SELECT {v:String} AS v, {a:Array(String)} AS a'), JSON.stringify(v)).toEqual({ v, a: [v, 'x'] });
    }
  });
});
