// Opaque cursors: the keyset position (timestamp, id) and the order it was taken in, base64url JSON.
// A cursor carries no filter: the caller sends the same filters with it, as with Loki or Datadog.
import type { CursorPosition } from '../storage/event-store.js';

export function encodeCursor(pos: CursorPosition, order: 'asc' | 'desc'): string {
  return Buffer.from(JSON.stringify({ t: pos.t, i: pos.i, o: order })).toString('base64url');
}

export function decodeCursor(raw: string, order: 'asc' | 'desc'): CursorPosition | undefined {
  if (raw.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(raw)) return undefined;
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { t?: unknown; i?: unknown; o?: unknown };
    if (typeof v.t !== 'number' || !Number.isSafeInteger(v.t) || typeof v.i !== 'string' || v.i.length > 256) return undefined;
    if (v.o !== order) return undefined;
    return { t: v.t, i: v.i };
  } catch {
    return undefined;
  }
}
