// The auth plugin: every /monitoring and /v1 route needs a bearer token; each route names the scope
// it needs in its config ({ scope: 'read' }). The principal is put on the request for the tenant guard.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { HttpError } from '../http/errors.js';
import { hasScope, type Principal, type Scope } from './principal.js';
import type { KeyStore } from './key-store.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    scope?: Scope;
  }
}

export const authPlugin = fp(async (app: FastifyInstance, opts: { keys: KeyStore }) => {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const scope = req.routeOptions.config?.scope;
    if (!scope) return; // public route (health, dashboard assets)
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S{1,512})\s*$/i.exec(header) : null;
    if (!m) {
      throw new HttpError(401, 'unauthorized', 'send Authorization: Bearer <token> (the admin token or a project key)', undefined, { 'WWW-Authenticate': 'Bearer' });
    }
    const principal = await opts.keys.authenticate(m[1]);
    if (!principal) {
      throw new HttpError(401, 'unauthorized', 'the token is unknown, revoked or expired', undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    }
    if (!hasScope(principal, scope)) {
      throw new HttpError(403, 'forbidden', `this key lacks the "${scope}" scope`);
    }
    req.principal = principal;
  });
});
