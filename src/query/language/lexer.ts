// The query language's tokens. Context matters in one place only: right after `field:` comes a
// value, where `[a TO b]` is a range and `>`/`<` a comparison, and where `:` and `=` are ordinary
// characters (`url:http://x`). `|` glued between two terms (`Notion|Stripe`) makes one term of
// alternatives; with a space on either side it is OR.
import { closestField, isKnownFieldName } from './ast.js';
import { QuerySyntaxError } from './errors.js';

export type Token =
  | { t: 'lparen' | 'rparen' | 'or' | 'and' | 'not' | 'eof'; pos: number }
  /** `name:`, `name=` or `name!=` (negate). `name` is as typed: `attr.key` included. */
  | { t: 'field'; name: string; negate: boolean; pos: number }
  | { t: 'cmp'; op: '>' | '>=' | '<' | '<='; pos: number }
  /** An unquoted word: literal segments split at unescaped `*`. */
  | { t: 'word'; segments: string[]; raw: string; pos: number }
  | { t: 'phrase'; value: string; pos: number }
  | { t: 'range'; lo: Bound | null; hi: Bound | null; loInclusive: boolean; hiInclusive: boolean; pos: number }
  /** `|` between two values of one field: `platform:Notion|Stripe`. */
  | { t: 'pipe'; pos: number };

export interface Bound {
  text: string;
  pos: number;
}

const SPACE = /\s/;
// a field name: a plain identifier, or attr.<key> with the key bare or quoted
const FIELD = /^(attr\.(?:"(?:[^"\\]|\\.)*"|[^\s:=!()"|\\]+)|[A-Za-z_][A-Za-z0-9_]*)(:|!=|=)/;
const KEYWORDS: Record<string, 'and' | 'or' | 'not'> = { AND: 'and', OR: 'or', NOT: 'not', '&&': 'and', '||': 'or' };

function endsTerm(c: string | undefined): boolean {
  return c === undefined || SPACE.test(c) || c === '(' || c === ')' || c === '"';
}

export function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = src.length;
  let valueNext = false;
  let afterCmp = false;

  const phrase = (): Token => {
    const start = i;
    i++;
    let v = '';
    while (i < n && src[i] !== '"') {
      if (src[i] === '\\') {
        if (i + 1 >= n) break;
        i++;
      }
      v += src[i];
      i++;
    }
    if (i >= n) throw new QuerySyntaxError('unterminated quote: add the closing "', src, start);
    i++;
    return { t: 'phrase', value: v, pos: start };
  };

  /** A word up to whitespace, a parenthesis or a quote (and `|`, which is OR or an alternative). */
  const word = (): Token => {
    const start = i;
    const segments: string[] = [''];
    while (i < n) {
      const c = src[i];
      if (SPACE.test(c) || c === '(' || c === ')' || c === '"' || c === '|') break;
      if (c === '\\') {
        if (i + 1 >= n) throw new QuerySyntaxError('a backslash at the end escapes nothing', src, i);
        segments[segments.length - 1] += src[i + 1];
        i += 2;
        continue;
      }
      if (c === '*') segments.push('');
      else segments[segments.length - 1] += c;
      i++;
    }
    return { t: 'word', segments, raw: src.slice(start, i), pos: start };
  };

  const range = (): Token => {
    const start = i;
    const loInclusive = src[i] === '[';
    i++;
    const bound = (): Bound | null => {
      while (i < n && SPACE.test(src[i])) i++;
      const b = i;
      while (i < n && !SPACE.test(src[i]) && src[i] !== ']' && src[i] !== '}') i++;
      if (i === b) throw new QuerySyntaxError('expected a range bound: [low TO high], * for none', src, b);
      const text = src.slice(b, i);
      return text === '*' ? null : { text, pos: b };
    };
    const lo = bound();
    while (i < n && SPACE.test(src[i])) i++;
    if (src.slice(i, i + 2) !== 'TO') throw new QuerySyntaxError('expected TO in the range: [low TO high]', src, i);
    i += 2;
    if (!(i < n && SPACE.test(src[i]))) throw new QuerySyntaxError('expected a bound after TO: [low TO high], * for none', src, i);
    const hi = bound();
    while (i < n && SPACE.test(src[i])) i++;
    if (src[i] !== ']' && src[i] !== '}') throw new QuerySyntaxError('expected ] or } to close the range', src, i);
    const hiInclusive = src[i] === ']';
    i++;
    return { t: 'range', lo, hi, loInclusive, hiInclusive, pos: start };
  };

  /** `|` glued to a term on both sides (`Notion|Stripe`): alternatives of one term, not a loose OR. */
  const pipeAt = (at: number): boolean => src[at] === '|' && at + 1 < n && src[at + 1] !== '|' && !SPACE.test(src[at + 1]) && src[at + 1] !== ')';

  while (i < n) {
    const c = src[i];
    if (valueNext) {
      valueNext = false;
      if (c === undefined || SPACE.test(c) || c === ')') {
        throw new QuerySyntaxError('expected a value right after the field (use "" for an empty value)', src, i);
      }
      if ((c === '>' || c === '<') && !afterCmp) {
        const op = src[i + 1] === '=' ? (`${c}=` as '>=' | '<=') : c;
        out.push({ t: 'cmp', op, pos: i });
        i += op.length;
        valueNext = true;
        afterCmp = true;
        continue;
      }
      afterCmp = false;
      if (c === '(') {
        out.push({ t: 'lparen', pos: i++ });
        continue;
      }
      if (c === '[' || c === '{') {
        out.push(range());
      } else {
        out.push(c === '"' ? phrase() : word());
      }
      // `a|b` right after a value: another value of the same field
      if (pipeAt(i)) {
        out.push({ t: 'pipe', pos: i++ });
        valueNext = true;
      }
      continue;
    }
    if (SPACE.test(c)) {
      i++;
      continue;
    }
    if (c === '(') {
      out.push({ t: 'lparen', pos: i++ });
      continue;
    }
    if (c === ')') {
      out.push({ t: 'rparen', pos: i++ });
      continue;
    }
    if (c === '|') {
      out.push({ t: 'or', pos: i });
      i += src[i + 1] === '|' ? 2 : 1;
      continue;
    }
    if (c === '"') {
      out.push(phrase());
      if (pipeAt(i)) out.push({ t: 'pipe', pos: i++ });
      continue;
    }
    if ((c === '-' || c === '!') && i + 1 < n && !SPACE.test(src[i + 1]) && src[i + 1] !== ')' && src[i + 1] !== '|') {
      out.push({ t: 'not', pos: i++ });
      continue;
    }
    const kw = /^(AND|OR|NOT|&&|\|\|)/.exec(src.slice(i, i + 3));
    if (kw && endsTerm(src[i + kw[1].length])) {
      out.push({ t: KEYWORDS[kw[1]], pos: i });
      i += kw[1].length;
      continue;
    }
    const f = FIELD.exec(src.slice(i, i + 300));
    if (f) {
      if (!isKnownFieldName(f[1])) {
        const near = closestField(f[1]);
        throw new QuerySyntaxError(`unknown field ${f[1]}${near ? ` (did you mean ${near}?)` : ''}: use attr.${f[1]} for an attribute, or quote text that contains "${f[2]}"`, src, i);
      }
      out.push({ t: 'field', name: f[1], negate: f[2] === '!=', pos: i });
      i += f[0].length;
      valueNext = true;
      if (i >= n) throw new QuerySyntaxError('expected a value right after the field (use "" for an empty value)', src, i);
      continue;
    }
    out.push(word());
    if (pipeAt(i)) out.push({ t: 'pipe', pos: i++ });
  }
  if (valueNext) throw new QuerySyntaxError('expected a value right after the field (use "" for an empty value)', src, i);
  out.push({ t: 'eof', pos: n });
  return out;
}
