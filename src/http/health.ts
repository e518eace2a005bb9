// Liveness and readiness: /health says the process answers, /ready that storage does.
import type { FastifyInstance } from 'fastify';
import type { EventStore } from '../storage/event-store.js';

export async function healthRoutes(app: FastifyInstance, opts: { events: EventStore }): Promise<void> {
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    try {
      if (await opts.events.ping()) return { status: 'ready' };
    } catch {
      // fall through
    }
    return reply.code(503).send({ status: 'not_ready', error: { code: 'storage_unavailable', message: 'event storage does not answer' } });
  });
}
