import { describe, expect, it } from 'vitest';
import type { EventRow } from '../../event.js';
import type { QueryNode } from './ast.js';
import { evaluate } from './evaluate.js';
import { QuerySyntaxError } from './errors.js';
import { parseQuery, QUERY_LIMITS } from './parser.js';

/** The AST without columns, in a compact notation, so expectations read like the grammar. */
function show(n: QueryNode | undefined): string {
  if (!n) return '(all)';
  const field = (f: { kind: string; key?: string; name?: string }) => (f.kind === 'attr' ? `attr.${f.key}` : f.name);
  switch (n.kind) {
    case 'and': return `AND(${n.items.map(show).join(', ')})`;
    case 'or': return `OR(${n.items.map(show).join(', ')})`;
    case 'not': return `NOT(${show(n.item)})`;
    case 'text': return `text(${n.pattern.join('*')})`;
    case 'match': return `${field(n.field)}=${JSON.stringify(n.pattern.join('*'))}`;
    case 'compare': return `${field(n.field)}${n.op}${n.value}`;
    case 'has': return `has(${field(n.field)})`;
  }
}

const p = (q: string) => show(parseQuery(q));

function errorOf(q: string): { column: number; message: string } {
  try {
    parseQuery(q);
  } catch (e) {
    if (e instanceof QuerySyntaxError) return { column: e.column, message: e.message };
    throw e;
  }
  throw new Error(`no error for ${q}`);
}

describe('the issue\'s examples', () => {
  it('expired token: two words, both anywhere in the text', () => {
    expect(p('expired token')).toBe('AND(text(expired), text(token))');
  });
  it('"token expired": one phrase', () => {
    expect(p('"token expired"')).toBe('text(token expired)');
  });
  it('status:error: a field', () => {
    expect(p('status:error')).toBe('status="error"');
  });
  it('platform=Slack AND timeout: = is accepted as :', () => {
    expect(p('platform=Slack AND timeout')).toBe('AND(platform="Slack", text(timeout))');
    expect(p('platform=Slack AND timeout')).toBe(p('platform:Slack timeout'));
  });
  it('Notion|Stripe: | is OR; glued between terms it binds them into one term; after a field, values of that field', () => {
    expect(p('Notion|Stripe')).toBe('OR(text(Notion), text(Stripe))');
    expect(p('Notion | Stripe')).toBe(p('Notion OR Stripe'));
    expect(p('timeout Notion|"rate limit"|Stripe')).toBe('AND(text(timeout), OR(text(Notion), text(rate limit), text(Stripe)))');
    expect(p('timeout Notion | Stripe')).toBe('OR(AND(text(timeout), text(Notion)), text(Stripe))');
    expect(p('platform:Notion|Stripe')).toBe('OR(platform="Notion", platform="Stripe")');
    expect(p('platform:Notion|Stripe')).toBe(p('platform:(Notion OR Stripe)'));
  });
});

describe('grammar', () => {
  it('empty and blank queries match everything', () => {
    expect(p('')).toBe('(all)');
    expect(p('  \n\t ')).toBe('(all)');
  });
  it('quoted values, attributes, aliases', () => {
    expect(p('message:"token expired"')).toBe('message="token expired"');
    expect(p('attr.region:eu-west-1')).toBe('attr.region="eu-west-1"');
    expect(p('attr.http.status:500')).toBe('attr.http.status="500"');
    expect(p('attr."odd key":x')).toBe('attr.odd key="x"');
    expect(p('type:deploy level:high')).toBe('AND(event_type="deploy", severity="high")');
    expect(p('user_id:""')).toBe('user_id=""');
  });
  it('values may hold : and = (only a field name before them is special)', () => {
    expect(p('attr.url:https://x.test/a=b')).toBe('attr.url="https://x.test/a=b"');
    expect(p('12:30')).toBe('text(12:30)');
  });
  it('NOT, -, ! and != negate', () => {
    expect(p('NOT status:success')).toBe('NOT(status="success")');
    expect(p('-status:success')).toBe('NOT(status="success")');
    expect(p('!status:success')).toBe('NOT(status="success")');
    expect(p('status!=success')).toBe('NOT(status="success")');
    expect(p('-"token expired" -timeout')).toBe('AND(NOT(text(token expired)), NOT(text(timeout)))');
    expect(p('re-try')).toBe('text(re-try)');
    expect(p('NOT NOT a')).toBe('NOT(NOT(text(a)))');
  });
  it('AND binds tighter than OR; parentheses regroup; implicit AND', () => {
    expect(p('a OR b c')).toBe('OR(text(a), AND(text(b), text(c)))');
    expect(p('(a OR b) c')).toBe('AND(OR(text(a), text(b)), text(c))');
    expect(p('a AND b OR c AND d')).toBe('OR(AND(text(a), text(b)), AND(text(c), text(d)))');
    expect(p('-(a b)')).toBe('NOT(AND(text(a), text(b)))');
  });
  it('operators are upper-case only: lower-case and, or, not are words to search', () => {
    expect(p('timeout and retry')).toBe('AND(text(timeout), text(and), text(retry))');
    expect(p('NOTE ORDER')).toBe('AND(text(NOTE), text(ORDER))');
  });
  it('field:( … ) applies the field to every value, with any operators inside', () => {
    expect(p('status:(error OR timeout)')).toBe('OR(status="error", status="timeout")');
    expect(p('status:(error OR (timeout -fatal))')).toBe('OR(status="error", AND(status="timeout", NOT(status="fatal")))');
    expect(p('-platform:(Slack Notion)')).toBe('NOT(AND(platform="Slack", platform="Notion"))');
  });
  it('wildcards: * in a word, literal when escaped or quoted', () => {
    expect(p('user_id:u*')).toBe('user_id="u*"');
    expect(parseQuery('user_id:u*')).toMatchObject({ pattern: ['u', ''] });
    expect(parseQuery('tok*n')).toMatchObject({ kind: 'text', pattern: ['tok', 'n'] });
    expect(parseQuery('user_id:u\\*')).toMatchObject({ pattern: ['u*'] });
    expect(parseQuery('"u*"')).toMatchObject({ pattern: ['u*'] });
  });
  it('escapes in words and phrases', () => {
    expect(parseQuery('a\\ b')).toMatchObject({ kind: 'text', pattern: ['a b'] });
    expect(parseQuery('"say \\"hi\\" \\\\ ok"')).toMatchObject({ pattern: ['say "hi" \\ ok'] });
    expect(parseQuery('\\-x')).toMatchObject({ kind: 'text', pattern: ['-x'] });
    expect(parseQuery('status\\:x')).toMatchObject({ kind: 'text', pattern: ['status:x'] });
  });
  it('numeric comparisons and ranges', () => {
    expect(p('duration_ms:>1000')).toBe('duration_ms>1000');
    expect(p('duration_ms:>=1000.5 retries:<3 retries:<=2')).toBe('AND(duration_ms>=1000.5, retries<3, retries<=2)');
    expect(p('duration_ms:250')).toBe('duration_ms=250');
    expect(p('duration_ms:[100 TO 500]')).toBe('AND(duration_ms>=100, duration_ms<=500)');
    expect(p('duration_ms:{100 TO 500}')).toBe('AND(duration_ms>100, duration_ms<500)');
    expect(p('duration_ms:[100 TO *]')).toBe('duration_ms>=100');
    expect(p('attr.http_status:>=500')).toBe('attr.http_status>=500');
    expect(p('timestamp:>=2025-07-25T00:00:00Z')).toBe(`timestamp>=${Date.parse('2025-07-25T00:00:00Z')}`);
    expect(p('timestamp:<1753400000000')).toBe('timestamp<1753400000000');
    expect(p('alert:true sampled:0')).toBe('AND(alert=1, sampled=0)');
  });
  it('existence', () => {
    expect(p('has:stack')).toBe('has(stack)');
    expect(p('has:duration_ms -has:attr.region')).toBe('AND(has(duration_ms), NOT(has(attr.region)))');
  });
});

describe('errors point at the column', () => {
  const cases: [string, number, RegExp][] = [
    ['status:', 8, /expected a value/],
    ['status: error', 8, /expected a value/],
    ['foo:bar', 1, /unknown field foo.*attr\.foo/],
    ['timeout TypeError: x', 9, /unknown field TypeError.*quote/],
    ['(a OR b', 1, /missing \)/],
    ['a b)', 4, /unmatched \)/],
    ['a OR', 5, /after OR/],
    ['AND a', 1, /AND needs a term/],
    ['a AND OR b', 7, /after AND/],
    ['x "abc', 3, /unterminated quote/],
    ['()', 1, /empty parentheses/],
    ['status:>3', 9, /status cannot be compared/],
    ['duration_ms:abc', 13, /compares with a number/],
    ['duration_ms:1*', 13, /no wildcards/],
    ['timestamp:>yesterday', 12, /ISO 8601/],
    ['duration_ms:[1 TO]', 18, /bound after TO/],
    ['duration_ms:[1 2]', 16, /expected TO/],
    ['duration_ms:[* TO *]', 13, /at least one bound/],
    ['has:nope', 5, /unknown field nope/],
    ['mesage:x', 1, /unknown field mesage \(did you mean message\?\)/],
    ['has:durationms', 5, /did you mean duration_ms\?/],
    ['Status:error', 1, /did you mean status\?/],
    ['has:timestamp', 5, /always set/],
    ['alert:maybe', 7, /true or false/],
    ['status:(error user_id:x)', 15, /field inside status/],
    ['platform:Notion|', 17, /expected a term after OR/],
    ['a\\', 2, /backslash/],
    ['NOT', 4, /after NOT/],
  ];
  for (const [q, column, message] of cases) {
    it(`${q}  → column ${column}`, () => {
      const e = errorOf(q);
      expect(e.message).toMatch(message);
      expect(e.column).toBe(column);
    });
  }
  it('counts columns in characters, not UTF-16 units', () => {
    expect(errorOf('😀 foo:x').column).toBe(3);
    expect(errorOf('日本 )').column).toBe(4);
  });
  it('bounds length, terms and depth', () => {
    expect(errorOf('a'.repeat(QUERY_LIMITS.maxLength + 1)).message).toMatch(/longer than/);
    expect(errorOf(Array.from({ length: QUERY_LIMITS.maxTerms + 1 }, (_, i) => `w${i}`).join(' ')).message).toMatch(/more than 200 terms/);
    expect(errorOf('('.repeat(40) + 'a' + ')'.repeat(40)).message).toMatch(/nested deeper/);
    expect(errorOf('-'.repeat(40) + 'a').message).toMatch(/nested deeper/);
    // a prototype name is no field
    expect(errorOf('constructor:x').message).toMatch(/unknown field constructor/);
    expect(errorOf('has:toString').message).toMatch(/unknown field toString/);
  });
});

describe('evaluate', () => {
  const row: EventRow = {
    id: 'e1', timestamp: 1_753_452_060_000, received_at: 1_753_452_060_005, project_id: 'pf', event_type: 'execution', engine: 'execution',
    triggered_by: '', flow_id: 'f1', session_id: '', user_id: 'u42', trace_id: '', span_id: '', platform: 'Slack', action: 'send_message',
    status: 'error', severity: 'high', error_type: 'api_timeout', message: 'Token EXPIRED while sending', stack: '', duration_ms: 1500,
    retries: null, fingerprint: '', alert: 0, sampled: 0, attr_keys: ['region', 'code'], attr_values: ['eu', '503'],
  };
  const yes = (q: string) => expect(evaluate(parseQuery(q)!, row), q).toBe(true);
  const no = (q: string) => expect(evaluate(parseQuery(q)!, row), q).toBe(false);
  it('text is case-insensitive and found anywhere in message, error_type, stack', () => {
    yes('expired token');
    yes('"token expired"');
    no('"expired token"');
    yes('api_time*');
    yes('tok*sending');
    no('platform=Slack AND nothing');
    yes('platform=Slack AND timeout');
    yes('Notion|Slack|EXPIRED');
  });
  it('keyword fields are exact and case-sensitive', () => {
    yes('platform:Slack');
    no('platform:slack');
    yes('user_id:u4*');
    no('user_id:u4');
  });
  it('numbers: null never matches, NOT of a comparison matches it', () => {
    yes('duration_ms:>1000');
    no('duration_ms:<1000');
    no('retries:>=0');
    yes('-retries:>=0');
    yes('attr.code:>=500');
    no('attr.region:>1');
    no('attr.missing:>1');
  });
  it('wildcards match in linear time: many stars on a long message do not backtrack', () => {
    const long: EventRow = { ...row, message: 'a'.repeat(60_000), user_id: 'a'.repeat(60_000) };
    const stars = `${'a*'.repeat(30)}b`;
    expect(evaluate(parseQuery(stars)!, long)).toBe(false);
    expect(evaluate(parseQuery(`user_id:${stars}`)!, long)).toBe(false);
    expect(evaluate(parseQuery(`user_id:${'a*'.repeat(30)}a`)!, long)).toBe(true);
    expect(evaluate(parseQuery('user_id:ab*ba')!, { ...row, user_id: 'aba' })).toBe(false); // prefix and suffix may not overlap
    expect(evaluate(parseQuery('user_id:ab*ba')!, { ...row, user_id: 'abba' })).toBe(true);
  });
  it('has:', () => {
    yes('has:duration_ms has:attr.region has:user_id');
    no('has:stack');
    no('has:retries');
    no('has:attr.nope');
  });
});
