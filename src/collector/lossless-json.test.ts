import { describe, expect, it } from 'vitest';
import { hasLossyNumber, LosslessNumber, parseJsonKeepingNumbers, parseLossless, rawNumbersIn } from './lossless-json.js';
import { normalize } from '../event.js';

describe('numbers keep their text', () => {
  it('finds only numbers JSON.parse would change, never digits inside strings', () => {
    for (const t of ['1', '-5', '12.5', '[1,2,{"a":0.25}]', '"1e-400"', '{"x":"0.10","y":"\\"1.0"}', '123456789012345']) {
      expect(hasLossyNumber(t), t).toBe(false);
    }
    for (const t of ['1e-400', '1.50', '-0', '1E3', '{"a":"x\\\\","b":1e400}', '12345678901234567890', '[0.0000001]']) {
      expect(hasLossyNumber(t), t).toBe(true);
    }
  });

  it('parses like JSON.parse, lossy numbers kept as text', () => {
    const text = '{"a":[1,2.5,1e-400,{"b":null,"c":true,"d":false,"e":"s\\"q\\u00e9"}],"__proto__":{"x":1},"n":1.50}';
    const v = parseLossless(text) as any;
    expect(v.a[2]).toBeInstanceOf(LosslessNumber);
    expect(v.a[2].text).toBe('1e-400');
    expect(v.n.text).toBe('1.50');
    expect(v.a[3]).toEqual({ b: null, c: true, d: false, e: 's"qé' });
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['a', '__proto__', 'n']);
    expect(rawNumbersIn(JSON.stringify(v.a))).toBe('[1,2.5,1e-400,{"b":null,"c":true,"d":false,"e":"s\\"qé"}]');
    expect(() => parseJsonKeepingNumbers('{"a":')).toThrow(SyntaxError);
  });

  it('attribute values are stored as the text they were sent as', () => {
    const digits = '9'.repeat(10_000);
    const body = `{"project_id":"p","attributes":{"tiny":1e-400,"huge":${digits},"exact":12345678901234567890,"plain":42,"half":1.50,"nested":{"v":1e-400}},"user_id":12345678901234567890,"top":1E3,"duration_ms":1.0}`;
    const r = normalize(parseJsonKeepingNumbers(body), Date.now());
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const attrs = Object.fromEntries(r.row.attr_keys.map((k, i) => [k, r.row.attr_values[i]]));
    expect(attrs).toEqual({ tiny: '1e-400', huge: digits, exact: '12345678901234567890', plain: '42', half: '1.50', nested: '{"v":1e-400}', top: '1E3' });
    expect(r.row.user_id).toBe('12345678901234567890');
    expect(r.row.duration_ms).toBe(1);
  });

  it('a number too large for a typed field is still refused, naming it', () => {
    const r = normalize(parseJsonKeepingNumbers('{"project_id":"p","duration_ms":1e309}'), Date.now());
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors[0].field).toBe('duration_ms');
  });
});

describe('well-formed strings', () => {
  it('replaces lone surrogates with U+FFFD in every string of the event, keeping pairs', () => {
    const bad = 'a\ud800b\udfffc😀';
    const r = normalize({
      project_id: 'p', id: `id${bad}`, message: bad, stack: bad, error_type: bad, engine: bad, triggered_by: bad, platform: bad,
      action: bad, status: bad, severity: bad, fingerprint: bad, event_type: bad, flow_id: bad, session_id: bad, user_id: bad,
      trace_id: bad, span_id: bad, attributes: { [`k${bad}`]: bad, obj: { [bad]: bad } }, [`top${bad}`]: bad,
    }, Date.now());
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const strings = Object.values(r.row).flat().filter((v): v is string => typeof v === 'string');
    for (const s of strings) expect((s as any).isWellFormed(), JSON.stringify(s)).toBe(true);
    expect(r.row.message).toBe('a\ufffdb\ufffdc😀');
    expect(r.row.attr_keys).toContain('ka\ufffdb\ufffdc😀');
  });
});
