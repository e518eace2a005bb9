// Live tail: GET /monitoring/stream, Server-Sent Events with the same filters as /monitoring/logs.
// Events are pushed once they are durable. A client too slow to read is told how many it missed
// rather than letting its buffer grow without bound.
import type {} from '../auth/http.js'; // request.principal
import type { FastifyInstance } from 'fastify';
import { toStoredEvent, type EventRow, type FieldError } from '../event.js';
import { badRequest } from '../http/errors.js';
import type { GroupCommitWriter } from '../collector/writer.js';
import { readFilter } from './http.js';
import { matchesFilter } from './match.js';
import { filterQueryDocs, type EventFilter } from './filters.js';
import { RemoteTail } from './remote-tail.js';
import type { ControlBus } from '../storage/control-bus.js';
import type { KeyStore } from '../auth/key-store.js';

const MAX_BUFFERED_BYTES = 1 << 20;
const HEARTBEAT_MS = 15_000;
export const MAX_SUBSCRIBERS = 1000;

interface Subscriber {
  filter: EventFilter;
  /** The API key the tail was opened with (none for the admin token): its revocation ends the tail. */
  keyId?: string;
  send(rows: EventRow[]): void;
  end(): void;
}

export interface StreamOptions {
  writer: GroupCommitWriter;
  heartbeatMs?: number;
  /** Several engine nodes share the event store: tails here also show what the others stored. */
  shared?: { receivedSince(since: number, limit: number): Promise<EventRow[]> };
  /** Key revocations on any node (bus) end the tails opened with that key (keys says which). */
  keys?: KeyStore;
  bus?: ControlBus;
}

export async function streamRoutes(app: FastifyInstance, opts: StreamOptions): Promise<void> {
  const subscribers = new Set<Subscriber>();
  const deliver = (rows: readonly EventRow[]) => {
    if (subscribers.size === 0) return;
    for (const s of subscribers) {
      const matched = rows.filter((r) => matchesFilter(s.filter, r));
      if (matched.length) s.send(matched);
    }
  };
  const remote = opts.shared
    ? new RemoteTail({ receivedSince: (since, limit) => opts.shared!.receivedSince(since, limit), log: (msg, err) => app.log.warn({ err }, msg) }, deliver)
    : undefined;
  opts.writer.onWritten((rows) => {
    remote?.local(rows);
    deliver(rows);
  });
  if (opts.bus && opts.keys) {
    const keys = opts.keys;
    opts.bus.on('keys', () => void (async () => {
      const ids = new Set([...subscribers].map((s) => s.keyId).filter((k): k is string => k !== undefined));
      for (const id of ids) {
        const k = await keys.get(id);
        if (k && !k.revoked_at) continue;
        for (const s of subscribers) if (s.keyId === id) s.end();
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
      end: () => {
        if (!raw.writableEnded) raw.end();
      },
    };
    subscribers.add(sub);
    remote?.tailOpen(true);
    const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), opts.heartbeatMs ?? HEARTBEAT_MS);
    const close = () => {
      clearInterval(heartbeat);
      if (subscribers.delete(sub)) remote?.tailOpen(false);
    };
    raw.on('close', close);
  });
}
