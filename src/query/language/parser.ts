// Tokens → AST by recursive descent. Precedence, loosest first: OR, AND (also implicit between
// terms), NOT / `-` / `!`. Inside `field:( … )` every bare value is a value of that field.
import { parseTime } from '../../event.js';
import {
  closestField, FIELD_ALIASES, FIELD_KINDS, fieldLabel, isWildcard, literal,
  type CompareOp, type FieldRef, type Pattern, type QueryNode,
} from './ast.js';
import { columnOf, QuerySyntaxError } from './errors.js';
import { lex, type Bound, type Token } from './lexer.js';

export const QUERY_LIMITS = {
  /** Characters in a query. */
  maxLength: 4096,
  /** Terms (field terms, words, phrases) in a query. */
  maxTerms: 200,
  /** Nesting of parentheses and NOTs. */
  maxDepth: 32,
  /** Characters in an attribute key (as at ingest). */
  maxAttrKey: 128,
} as const;

/** Parses a query; undefined for an empty one (matches everything). Throws QuerySyntaxError. */
export function parseQuery(src: string): QueryNode | undefined {
  if (src.length > QUERY_LIMITS.maxLength) {
    throw new QuerySyntaxError(`the query is longer than ${QUERY_LIMITS.maxLength} characters`, src, QUERY_LIMITS.maxLength);
  }
  if (src.includes('\u0000')) throw new QuerySyntaxError('the query must not contain NUL', src, src.indexOf('\u0000'));
  return new Parser(src, lex(src)).parse();
}

type Ctx = { field?: FieldRef; depth: number };

class Parser {
  private i = 0;
  private terms = 0;

  constructor(private readonly src: string, private readonly toks: Token[]) {}

  parse(): QueryNode | undefined {
    if (this.peek().t === 'eof') return undefined;
    const node = this.or({ depth: 0 });
    const t = this.peek();
    if (t.t === 'rparen') this.fail('unmatched ): no ( before it', t.pos);
    if (t.t !== 'eof') this.fail('unexpected text', t.pos);
    return node;
  }

  private peek(): Token {
    return this.toks[this.i];
  }

  private next(): Token {
    return this.toks[this.i++];
  }

  private fail(message: string, pos: number): never {
    throw new QuerySyntaxError(message, this.src, pos);
  }

  private col(pos: number): number {
    return columnOf(this.src, pos);
  }

  private or(ctx: Ctx): QueryNode {
    const first = this.peek();
    const items = [this.and(ctx)];
    while (this.peek().t === 'or') {
      this.next();
      if (!this.startsTerm(this.peek())) this.fail('expected a term after OR', this.peek().pos);
      items.push(this.and(ctx));
    }
    return items.length === 1 ? items[0] : { kind: 'or', items, column: this.col(first.pos) };
  }

  private and(ctx: Ctx): QueryNode {
    const first = this.peek();
    const items = [this.unary(ctx)];
    for (;;) {
      const t = this.peek();
      if (t.t === 'and') {
        this.next();
        if (!this.startsTerm(this.peek())) this.fail('expected a term after AND', this.peek().pos);
        items.push(this.unary(ctx));
      } else if (this.startsTerm(t)) {
        items.push(this.unary(ctx));
      } else break;
    }
    return items.length === 1 ? items[0] : { kind: 'and', items, column: this.col(first.pos) };
  }

  private startsTerm(t: Token): boolean {
    return t.t === 'lparen' || t.t === 'not' || t.t === 'field' || t.t === 'word' || t.t === 'phrase';
  }

  private deeper(ctx: Ctx, pos: number): Ctx {
    if (ctx.depth + 1 > QUERY_LIMITS.maxDepth) this.fail(`nested deeper than ${QUERY_LIMITS.maxDepth} levels`, pos);
    return { ...ctx, depth: ctx.depth + 1 };
  }

  private unary(ctx: Ctx): QueryNode {
    const t = this.peek();
    if (t.t === 'not') {
      this.next();
      const inner = this.deeper(ctx, t.pos);
      if (!this.startsTerm(this.peek())) this.fail('expected a term after NOT', this.peek().pos);
      return { kind: 'not', item: this.unary(inner), column: this.col(t.pos) };
    }
    return this.primary(ctx);
  }

  private primary(ctx: Ctx): QueryNode {
    const t = this.next();
    switch (t.t) {
      case 'lparen':
        return this.group(ctx, t.pos);
      case 'word':
      case 'phrase':
        return this.alternatives(t, (w) => (ctx.field ? this.value(ctx.field, w) : { kind: 'text', pattern: patternOf(w), column: this.col(w.pos) }));
      case 'field':
        if (ctx.field) this.fail(`a field inside ${fieldLabel(ctx.field)}:( … ): only values go there`, t.pos);
        return this.fieldTerm(t, ctx);
      case 'rparen':
        return this.fail('unmatched ): no ( before it', t.pos);
      case 'or':
      case 'and':
        return this.fail(`${this.src.slice(t.pos, t.pos + (this.src[t.pos] === '|' ? 1 : 3)).trim()} needs a term on each side`, t.pos);
      case 'eof':
        return this.fail('the query ends where a term was expected', t.pos);
      default:
        return this.fail('unexpected text', t.pos);
    }
  }

  private group(ctx: Ctx, pos: number): QueryNode {
    const inner = this.deeper(ctx, pos);
    if (this.peek().t === 'rparen') this.fail('empty parentheses', pos);
    const node = this.or(inner);
    const close = this.next();
    if (close.t !== 'rparen') this.fail('missing ) for the ( here', pos);
    return node;
  }

  private count(pos: number): void {
    if (++this.terms > QUERY_LIMITS.maxTerms) this.fail(`more than ${QUERY_LIMITS.maxTerms} terms`, pos);
  }

  private fieldTerm(t: Extract<Token, { t: 'field' }>, ctx: Ctx): QueryNode {
    this.count(t.pos);
    const column = this.col(t.pos);
    if (t.name === 'has') {
      const v = this.next();
      if (v.t !== 'word' || isWildcard(v.segments)) this.fail('has: takes a field name, e.g. has:stack or has:attr.region', v.pos);
      const name = literal(v.segments);
      if (!(name.startsWith('attr.') || Object.hasOwn(FIELD_KINDS, name) || Object.hasOwn(FIELD_ALIASES, name))) {
        const near = closestField(name);
        this.fail(`unknown field ${name}${near ? ` (did you mean ${near}?)` : ''}`, v.pos);
      }
      const field = this.resolve(name, v.pos);
      if (field.kind === 'column' && (field.type === 'time' || field.type === 'flag')) {
        this.fail(`has: does not apply to ${field.name} (${field.type === 'time' ? 'it is always set' : 'use ' + field.name + ':true'})`, v.pos);
      }
      const node: QueryNode = { kind: 'has', field, column };
      return t.negate ? { kind: 'not', item: node, column } : node;
    }
    const field = this.resolve(t.name, t.pos);
    let node: QueryNode;
    const v = this.next();
    if (v.t === 'lparen') {
      node = this.group({ ...ctx, field }, v.pos);
    } else if (v.t === 'cmp') {
      const w = this.next();
      if (w.t !== 'word' && w.t !== 'phrase') return this.fail('expected a value after the comparison', w.pos);
      node = this.compare(field, v.op, w.t === 'word' ? w.raw : w.value, w.pos, column);
    } else if (v.t === 'range') {
      node = this.range(field, v, column);
    } else if (v.t === 'word' || v.t === 'phrase') {
      this.terms--; // the field term counted already
      node = this.alternatives(v, (w) => this.value(field, w));
    } else {
      return this.fail('expected a value after the field', v.pos);
    }
    return t.negate ? { kind: 'not', item: node, column } : node;
  }

  /** A word or phrase and any `|`-glued alternatives after it (`a|b|c`): one term. */
  private alternatives(first: Extract<Token, { t: 'word' | 'phrase' }>, make: (t: Extract<Token, { t: 'word' | 'phrase' }>) => QueryNode): QueryNode {
    this.count(first.pos);
    const items = [make(first)];
    while (this.peek().t === 'pipe') {
      this.next();
      const w = this.next();
      if (w.t !== 'word' && w.t !== 'phrase') return this.fail('expected another value after |', w.pos);
      this.count(w.pos);
      items.push(make(w));
    }
    return items.length === 1 ? items[0] : { kind: 'or', items, column: this.col(first.pos) };
  }

  private resolve(typed: string, pos: number): FieldRef {
    if (typed.startsWith('attr.')) {
      let key = typed.slice(5);
      if (key.startsWith('"')) key = key.slice(1, -1).replace(/\\(.)/g, '$1');
      if (key.length === 0 || key.length > QUERY_LIMITS.maxAttrKey) this.fail(`an attribute name must be 1..${QUERY_LIMITS.maxAttrKey} characters`, pos);
      return { kind: 'attr', key };
    }
    const name = Object.hasOwn(FIELD_ALIASES, typed) ? FIELD_ALIASES[typed] : typed;
    if (!Object.hasOwn(FIELD_KINDS, name)) this.fail(`unknown field ${typed}`, pos);
    return { kind: 'column', name: name as Extract<FieldRef, { kind: 'column' }>['name'], type: FIELD_KINDS[name] };
  }

  /** One value of a field: a match, or for numbers, times and flags an equality. */
  private value(field: FieldRef, t: Extract<Token, { t: 'word' | 'phrase' }>): QueryNode {
    const column = this.col(t.pos);
    const pattern = patternOf(t);
    if (field.kind === 'attr' || field.type === 'keyword' || field.type === 'text') {
      return { kind: 'match', field, pattern, column };
    }
    if (isWildcard(pattern)) this.fail(`${field.name} takes no wildcards`, t.pos);
    if (field.type === 'flag') {
      const v = literal(pattern).toLowerCase();
      if (v !== 'true' && v !== 'false' && v !== '1' && v !== '0') this.fail(`${field.name} is true or false`, t.pos);
      return { kind: 'compare', field, op: '=', value: v === 'true' || v === '1' ? 1 : 0, column };
    }
    return this.compare(field, '=', literal(pattern), t.pos, column);
  }

  private compare(field: FieldRef, op: CompareOp, text: string, pos: number, column: number): QueryNode {
    if (field.kind === 'column' && (field.type === 'keyword' || field.type === 'text' || field.type === 'flag')) {
      this.fail(`${field.name} cannot be compared with ${op}: comparisons work on duration_ms, retries, timestamp, received_at and attributes`, pos);
    }
    let value: number | undefined;
    if (field.kind === 'column' && field.type === 'time') {
      value = parseTime(text);
      if (value === undefined) this.fail(`${field.name} takes ISO 8601 or epoch milliseconds, not "${text}"`, pos);
    } else if (/^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
      value = Number(text);
    }
    if (value === undefined || !Number.isFinite(value)) this.fail(`${fieldLabel(field)} compares with a number, not "${text}"`, pos);
    return { kind: 'compare', field, op, value, column };
  }

  private range(field: FieldRef, r: Extract<Token, { t: 'range' }>, column: number): QueryNode {
    if (!r.lo && !r.hi) this.fail('a range needs at least one bound (use has: for "any value")', r.pos);
    const parts: QueryNode[] = [];
    const bound = (b: Bound, op: CompareOp) => parts.push(this.compare(field, op, b.text, b.pos, column));
    if (r.lo) bound(r.lo, r.loInclusive ? '>=' : '>');
    if (r.hi) bound(r.hi, r.hiInclusive ? '<=' : '<');
    return parts.length === 1 ? parts[0] : { kind: 'and', items: parts, column };
  }
}

function patternOf(t: Extract<Token, { t: 'word' | 'phrase' }>): Pattern {
  return t.t === 'phrase' ? [t.value] : t.segments;
}
