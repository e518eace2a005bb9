// GET /monitoring/whoami: what the caller's token may do (its scopes and projects), so a client such
// as the dashboard can check a token and offer only the actions it allows, without probing routes.
import type { FastifyInstance } from 'fastify';
import type {} from '../auth/http.js'; // request.principal
import { hasScope, SCOPES } from '../auth/principal.js';

export async function whoamiRoutes(app: FastifyInstance): Promise<void> {
  app.get('/monitoring/whoami', { config: { scope: 'read' } }, async (req) => {
    const p = req.principal;
    return {
      name: p.name,
      key_id: p.keyId ?? null,
      /** Scopes in effect (admin implies the others). */
      scopes: SCOPES.filter((s) => hasScope(p, s)),
      /** null = every project. */
      projects: p.projects === '*' ? null : [...p.projects].sort(),
    };
  });
}
