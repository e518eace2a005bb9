// Live tail: GET /monitoring/stream, Server-Sent Events with the same filters as /monitoring/logs.
// Events are pushed once they are durable in the write-ahead log (before they reach storage); with
// several nodes, what the others stored is polled from the shared store (remote-tail.ts). A client
// too slow to read is told how many it missed rather than letting its buffer grow without bound.
import type { FastifyInstance } from 'fastify';
import { toStoredEvent, type EventRow, type FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import type { WritePath } from '../wal/write-path.js';
import type { KeyStore } from '../auth/key-store.js';
import { watchKey } from '../auth/http.js';
import { readFilter } from './http.js';
import { matchesFilter } from './match.js';
import { filterQueryDocs, type EventFilter } from './filters.js';
import { RemoteTail } from './remote-tail.js';
import type { ControlBus } from '../storage/control-bus.js';

const MAX_BUFFERED_BYTES = 1 << 20;
const HEARTBEAT_MS = 15_000;
export const MAX_SUBSCRIBERS = 1000;

interface Subscriber {
  filter: EventFilter;
  /** The API key the tail was opened with (none for the admin token): its revocation ends the tail. */
  keyId?: string;
  send(rows: EventRow[]): void;
  /** Ends the tail with a last event saying its key was revoked or expired. */
  keyLost(): void;
  end(): void;
}

export interface StreamOptions {
  /** Local events reach the tails from the write-ahead log, once durable. */
  writePath: Pick<WritePath, 'onAppended'>;
  /** Tails of a revoked or expired key end (checked every KEY_WATCH_MS, and at once on a bus notice). */
  keys: KeyStore;
  heartbeatMs?: number;
  /** Several engine nodes share the event store: tails here also show what the others stored. */
  shared?: { receivedSince(since: number, limit: number): Promise<EventRow[]> };
  /** Key changes announced by any node: the tails of a key revoked there end here without waiting. */
  bus?: ControlBus;
}

export async function streamRoutes(app: FastifyInstance, opts: StreamOptions): Promise<void> {
  const subscribers = new Set<Subscriber>();
  const deliver = (rows: readonly EventRow[]) => {
    for (const s of subscribers) {
      const matched = rows.filter((r) => matchesFilter(s.filter, r));
      if (matched.length) s.send(matched);
    }
  };
  const remote = opts.shared
    ? new RemoteTail({ receivedSince: (since, limit) => opts.shared!.receivedSince(since, limit), log: (msg, err) => app.log.warn({ err }, msg) }, deliver)
    : undefined;
  opts.writePath.onAppended((records) => {
    if (subscribers.size === 0) return;
    const rows: EventRow[] = [];
    for (const rec of records) for (const r of rec.rows) rows.push(r);
    remote?.local(rows);
    deliver(rows);
  });
  if (opts.bus) {
    const keys = opts.keys;
    opts.bus.on('keys', () => void (async () => {
      const ids = new Set([...subscribers].map((s) => s.keyId).filter((k): k is string => k !== undefined));
      for (const id of ids) {
        const k = await keys.get(id);
        if (k && !k.revoked_at) continue;
        for (const s of subscribers) if (s.keyId === id) s.keyLost();
      }
    })().catch((err) => app.log.warn({ err }, 'live tail: checking revoked keys failed')));
  }
  // open tails would keep the server from closing
  app.addHook('preClose', async () => {
    remote?.stop();
    for (const s of subscribers) s.end();
  });

  app.get('/monitoring/stream', { config: { scope: 'read', docs: { querystring: filterQueryDocs() } } }, async (req, reply) => {
    const errors: FieldError[] = [];
    const filter = readFilter(req, [], errors);
    if (errors.length) throw badRequest(errors);
    if (subscribers.size >= MAX_SUBSCRIBERS) {
      // the engine's capacity, not the request, is the problem: retry once a tail closes
      throw new HttpError(503, 'too_many_tails', `all ${MAX_SUBSCRIBERS} live tails are in use; retry shortly`, undefined, { 'Retry-After': '5' });
    }
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    raw.write(': live tail open\n\n');
    let missed = 0;
    const sub: Subscriber = {
      filter,
      keyId: req.principal.keyId,
      send(rows) {
        if (raw.writableLength > MAX_BUFFERED_BYTES) {
          missed += rows.length;
          return;
        }
        let out = '';
        if (missed > 0) {
          out += `event: missed\ndata: ${JSON.stringify({ count: missed })}\n\n`;
          missed = 0;
        }
        for (const r of rows) out += `id: ${r.id}\nevent: log\ndata: ${JSON.stringify(toStoredEvent(r))}\n\n`;
        raw.write(out);
      },
      keyLost: () => {
        if (!raw.writableEnded) raw.end('event: key_revoked\ndata: {}\n\n');
      },
      end: () => {
        if (!raw.writableEnded) raw.end();
      },
    };
    subscribers.add(sub);
    remote?.tailOpen(true);
    const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), opts.heartbeatMs ?? HEARTBEAT_MS);
    // a revoked or expired key's tail ends, with a last event saying why
    const unwatch = watchKey(opts.keys, req, () => sub.keyLost());
    const close = () => {
      clearInterval(heartbeat);
      unwatch();
      if (subscribers.delete(sub)) remote?.tailOpen(false);
    };
    raw.on('close', close);
  });
}
