// The aggregator's ingest step: every error-like event gets its fingerprint before it is stored,
// so groups are a GROUP BY away and the fingerprint can be filtered on like any field.
import { isErrorLike, type EventRow } from '../event.js';
import { fingerprintOf } from './fingerprint.js';

export function fingerprintRow(row: EventRow): void {
  if (row.fingerprint || isErrorLike(row)) row.fingerprint = fingerprintOf(row);
}
