// Live tail: GET /monitoring/stream, Server-Sent Events with the same filters as /monitoring/logs.
// Events are pushed once they are durable in the write-ahead log (before they reach storage). A client too slow to read is told how many it missed
// rather than letting its buffer grow without bound.
import type { FastifyInstance } from 'fastify';
import { toStoredEvent, type EventRow, type FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import type { WritePath } from '../wal/write-path.js';
import type { KeyStore } from '../auth/key-store.js';
import { watchKey } from '../auth/http.js';
import { readFilter } from './http.js';
import { matchesFilter } from './match.js';
import { filterQueryDocs, type EventFilter } from './filters.js';

const MAX_BUFFERED_BYTES = 1 << 20;
const HEARTBEAT_MS = 15_000;
export const MAX_SUBSCRIBERS = 1000;

interface Subscriber {
  filter: EventFilter;
  send(rows: EventRow[]): void;
  end(): void;
}

export async function streamRoutes(app: FastifyInstance, opts: { writePath: Pick<WritePath, 'onAppended'>; keys: KeyStore; heartbeatMs?: number }): Promise<void> {
  const subscribers = new Set<Subscriber>();
  opts.writePath.onAppended((records) => {
    if (subscribers.size === 0) return;
    for (const s of subscribers) {
      const matched: EventRow[] = [];
      for (const rec of records) for (const r of rec.rows) if (matchesFilter(s.filter, r)) matched.push(r);
      if (matched.length) s.send(matched);
    }
  });
  // open tails would keep the server from closing
  app.addHook('preClose', async () => {
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
      end: () => raw.end(),
    };
    subscribers.add(sub);
    const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), opts.heartbeatMs ?? HEARTBEAT_MS);
    // a revoked or expired key's tail ends, with a last event saying why
    const unwatch = watchKey(opts.keys, req, () => raw.end('event: key_revoked\ndata: {}\n\n'));
    const close = () => {
      clearInterval(heartbeat);
      unwatch();
      subscribers.delete(sub);
    };
    raw.on('close', close);
  });
}
