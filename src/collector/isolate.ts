// Poison isolation: one insert carries the rows of many requests (and many tenants), so a row that
// storage refuses for a data reason must not fail the others. When a batch fails with a data error it
// is split in halves and each half retried, down to the single rows that fail; everything else is
// stored. Errors that are not about the data (storage down, disk full, timeouts) fail the whole batch
// unchanged: retrying halves would only multiply the load on a sick store.

export interface Isolated<R> {
  /** Rows that storage refused on their own, with its error. */
  failed: { row: R; error: unknown }[];
  /** Inserts made, counting the first attempt (1 when nothing failed). */
  attempts: number;
}

/**
 * Inserts `rows` through `insert`; on a data error, isolates the failing rows by bisection.
 * Throws the first non-data error it meets (the caller retries the whole batch later).
 * Rows that were stored before such an error are not re-sent by this function: callers that retry
 * must be idempotent (ids), as every writer of events is.
 */
export async function insertIsolating<R>(
  rows: readonly R[],
  insert: (rows: readonly R[]) => Promise<void>,
  isDataError: (e: unknown) => boolean,
): Promise<Isolated<R>> {
  const out: Isolated<R> = { failed: [], attempts: 0 };
  if (rows.length === 0) return out;
  // explicit stack, halves in order: the failing rows come out in input order
  const stack: (readonly R[])[] = [rows];
  while (stack.length > 0) {
    const part = stack.pop()!;
    out.attempts++;
    try {
      await insert(part);
    } catch (e) {
      if (!isDataError(e)) throw e;
      if (part.length === 1) {
        out.failed.push({ row: part[0], error: e });
        continue;
      }
      const mid = part.length >>> 1;
      stack.push(part.slice(mid), part.slice(0, mid));
    }
  }
  return out;
}

/**
 * ClickHouse error codes that mean "this input is wrong", not "the server is unwell": parse and
 * conversion failures of the input formats. Everything else is treated as a storage failure.
 */
const DATA_ERROR_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE (chDB 26: a lone surrogate in JSON input)
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  33, // CANNOT_READ_ALL_DATA
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  377, // CANNOT_PARSE_UUID
  623, // CANNOT_PARSE_ESCAPE_SEQUENCE (newer servers)
]);

const DATA_ERROR_TEXT = /Cannot parse|escape sequence|surrogate pair|Code: (6|25|26|27|38|41|53|69|70|72|117|131|321|349|377)\b/i;

export function isClickHouseDataError(e: unknown): boolean {
  const err = e as { clickhouseCode?: number; code?: string | number; message?: string } | undefined;
  if (!err) return false;
  if (typeof err.clickhouseCode === 'number') return DATA_ERROR_CODES.has(err.clickhouseCode);
  const code = typeof err.code === 'string' ? Number(err.code) : err.code;
  if (typeof code === 'number' && Number.isFinite(code)) return DATA_ERROR_CODES.has(code);
  return DATA_ERROR_TEXT.test(String(err.message ?? e));
}
