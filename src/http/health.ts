// Liveness and readiness: /health says the process answers, /ready whether the engine can write
// (storage answers, the data dir's disk takes writes); it answers within a second either way.
import type { FastifyInstance } from 'fastify';
import type { Readiness } from './readiness.js';

export async function healthRoutes(app: FastifyInstance, opts: { readiness: Readiness }): Promise<void> {
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    const s = await opts.readiness.check();
    if (s.ready) return { status: 'ready', can_write: true };
    const full = s.reason === 'disk_full';
    return reply.code(503).header('Retry-After', full ? '60' : '5').send({
      status: 'not_ready', can_write: false,
      error: { code: full ? 'insufficient_storage' : 'storage_unavailable', message: s.message ?? 'not ready' },
    });
  });
}
