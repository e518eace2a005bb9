// A query the parser cannot read: the message says what was expected, `column` where (1-based,
// counted in characters as the user sees them, not UTF-16 units).
export class QuerySyntaxError extends Error {
  readonly column: number;
  constructor(message: string, src: string, pos: number) {
    super(message);
    this.name = 'QuerySyntaxError';
    this.column = columnOf(src, pos);
  }
}

export function columnOf(src: string, pos: number): number {
  let col = 1;
  for (let i = 0; i < pos && i < src.length; i++) {
    const c = src.charCodeAt(i);
    // the high half of a surrogate pair counts, the low half does not
    if (c < 0xdc00 || c > 0xdfff) col++;
  }
  return col + Math.max(0, pos - src.length);
}
