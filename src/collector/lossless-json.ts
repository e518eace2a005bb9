// Numbers as they were sent. JSON.parse turns `1e-400` into 0, a 100,000-digit number into Infinity
// and `1.50` into 1.5; attribute values must keep the text they were sent as. A body is parsed with
// JSON.parse as always; only when a scan finds a number token whose text a JS number cannot give
// back is it parsed again here, with such numbers kept as LosslessNumber (text + value).
import { randomBytes } from 'node:crypto';

/** A JSON number whose source text differs from what String(Number(text)) gives back. */
export class LosslessNumber {
  readonly value: number;
  constructor(readonly text: string) {
    this.value = Number(text);
  }

  valueOf(): number {
    return this.value;
  }

  toString(): string {
    return this.text;
  }

  /** Inside JSON.stringify: a marker that rawNumbersIn() turns back into the source text. */
  toJSON(): string {
    return MARK + this.text;
  }
}

// A per-process random marker: no client can send a string that is mistaken for it.
const MARK = `\u0000${randomBytes(8).toString('hex')}:`;
const MARK_JSON = JSON.stringify(MARK).slice(1, -1);
const MARKED_RE = new RegExp(`"${MARK_JSON.replace(/\\/g, '\\\\')}([-+.0-9eE]+)"`, 'g');

/** JSON.stringify output with LosslessNumber markers replaced by the numbers' source text. */
export function rawNumbersIn(json: string): string {
  return json.includes(MARK_JSON) ? json.replace(MARKED_RE, '$1') : json;
}

/** Whether String(Number(token)) differs from the token (the text would be lost by JSON.parse). */
function lossy(text: string, start: number, end: number): boolean {
  const len = end - start;
  let plainInt = len <= 15;
  for (let i = start; i < end && plainInt; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 || c === 101 || c === 69) plainInt = false; // . e E
  }
  if (plainInt && !(len === 2 && text.charCodeAt(start) === 45 && text.charCodeAt(start + 1) === 48)) return false; // not -0
  const tok = text.slice(start, end);
  return String(Number(tok)) !== tok;
}

/**
 * Does this (valid) JSON text hold a number JSON.parse would not keep exactly? One pass that jumps
 * over strings with indexOf, so the common body (text in strings, small integers) costs little.
 */
export function hasLossyNumber(text: string): boolean {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // a string: find its closing quote (one not escaped by an odd run of backslashes)
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        if (j === -1) return false;
        let k = j - 1;
        while (text.charCodeAt(k) === 92) k--;
        if ((j - 1 - k) % 2 === 0) break;
        j++;
      }
      i = j + 1;
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) j++;
        else break;
      }
      if (lossy(text, i, j)) return true;
      i = j;
    } else i++;
  }
  return false;
}

/**
 * Parses JSON text that JSON.parse has already accepted, keeping lossy numbers as LosslessNumber.
 * Objects are built like JSON.parse builds them (`__proto__` is an own property, not the prototype).
 */
export function parseLossless(text: string): unknown {
  let i = 0;
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else return;
    }
  };
  const str = (): string => {
    const start = i;
    let j = i + 1;
    for (;;) {
      j = text.indexOf('"', j);
      let k = j - 1;
      while (text.charCodeAt(k) === 92) k--;
      if ((j - 1 - k) % 2 === 0) break;
      j++;
    }
    i = j + 1;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): unknown => {
    ws();
    const c = text.charCodeAt(i);
    if (c === 34) return str();
    if (c === 123) {
      i++;
      const o: Record<string, unknown> = {};
      ws();
      if (text.charCodeAt(i) === 125) {
        i++;
        return o;
      }
      for (;;) {
        ws();
        const k = str();
        ws();
        i++; // :
        Object.defineProperty(o, k, { value: value(), writable: true, enumerable: true, configurable: true });
        ws();
        if (text.charCodeAt(i++) === 125) return o; // } (else ,)
      }
    }
    if (c === 91) {
      i++;
      const a: unknown[] = [];
      ws();
      if (text.charCodeAt(i) === 93) {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        if (text.charCodeAt(i++) === 93) return a; // ] (else ,)
      }
    }
    if (c === 116) {
      i += 4;
      return true;
    }
    if (c === 102) {
      i += 5;
      return false;
    }
    if (c === 110) {
      i += 4;
      return null;
    }
    const start = i;
    i++;
    while (i < text.length) {
      const d = text.charCodeAt(i);
      if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) i++;
      else break;
    }
    return lossy(text, start, i) ? new LosslessNumber(text.slice(start, i)) : Number(text.slice(start, i));
  };
  return value();
}

/**
 * JSON.parse, with lossy numbers kept as LosslessNumber when there are any. Throws JSON.parse's
 * SyntaxError for invalid text. Nesting too deep for the recursive parser keeps JSON.parse's value.
 */
export function parseJsonKeepingNumbers(text: string): unknown {
  const value = JSON.parse(text) as unknown;
  if (!hasLossyNumber(text)) return value;
  try {
    return parseLossless(text);
  } catch {
    return value; // stack overflow on pathological nesting: the numbers lose their text, nothing else
  }
}
