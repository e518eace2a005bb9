// Live tail: GET /monitoring/stream, Server-Sent Events with the same filters as /monitoring/logs.
// Events are pushed once they are durable. A client too slow to read is told how many it missed
// rather than letting its buffer grow without bound.
import type { FastifyInstance } from 'fastify';
import { toStoredEvent, type EventRow, type FieldError } from '../event.js';
import { badRequest } from '../http/errors.js';
import type { GroupCommitWriter } from '../collector/writer.js';
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

export async function streamRoutes(app: FastifyInstance, opts: { writer: GroupCommitWriter; heartbeatMs?: number }): Promise<void> {
  const subscribers = new Set<Subscriber>();
  opts.writer.onWritten((rows) => {
    if (subscribers.size === 0) return;
    for (const s of subscribers) {
      const matched = rows.filter((r) => matchesFilter(s.filter, r));
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
    if (subscribers.size >= MAX_SUBSCRIBERS) throw badRequest([{ field: '(stream)', message: 'too many live tails are open' }]);
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
    const close = () => {
      clearInterval(heartbeat);
      subscribers.delete(sub);
    };
    raw.on('close', close);
  });
}
