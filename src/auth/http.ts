// The auth plugin: every /monitoring and /v1 route needs a bearer token; each route names the scope
// it needs in its config ({ scope: 'read' }). The principal is put on the request for the tenant guard.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { HttpError } from '../http/errors.js';
import { hasScope, type Principal, type Scope } from './principal.js';
import type { KeyStore } from './key-store.js';
import type { Budgets } from './shared-rate-limit.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    scope?: Scope;
    /** Also accept the Sentry SDKs' credentials (X-Sentry-Auth, ?sentry_key=): the Sentry routes only. */
    sentryAuth?: boolean;
  }
  interface FastifyInstance {
    /** Every route the app serves with the scope it needs (collected as routes are added). */
    routeTable: RouteEntry[];
  }
}

export interface RouteEntry {
  method: string;
  url: string;
  /** undefined = public (health, readiness, dashboard assets). */
  scope: Scope | undefined;
  /** An API route that named no scope and was given `admin` (a bug in that route; fail closed meanwhile). */
  defaulted?: true;
}

/** Paths that are API, never public: a route here that names no scope gets `admin` (fail closed). */
const API_PATH = /^\/(?:monitoring|v1|metrics|api|loki|_bulk|es)(?:\/|$)/;

export interface AuthOptions {
  keys: KeyStore;
  /** Per-key request budget: the bucket store and the requests/minute that apply to a principal (0 = unlimited). */
  requests?: { limiter: Budgets; perMinute: (p: Principal) => number };
}

/** The bucket a principal's budgets are kept in: the key's id, or the admin token's name. */
export const budgetKey = (p: Principal): string => p.keyId ?? p.name;

const TOKEN = /^\S{1,512}$/;

/**
 * The token a request carries, in the forms log shippers can be configured to send:
 * `Bearer <token>`; `Basic base64(user:token)` (Promtail, Fluent Bit, Vector, Filebeat basic auth: the
 * password, or the user name when the password is empty); `ApiKey base64(id:token)` (Elasticsearch
 * clients); and, where allowed, the Sentry SDKs' `X-Sentry-Auth: Sentry sentry_key=<token>, …` or
 * `?sentry_key=<token>`.
 */
export function credential(req: Pick<FastifyRequest, 'headers' | 'query'>, sentry: boolean): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const m = /^(Bearer|Basic|ApiKey)\s+(\S{1,1024})\s*$/i.exec(header);
    if (!m) return undefined;
    const scheme = m[1].toLowerCase();
    if (scheme === 'bearer') return TOKEN.test(m[2]) ? m[2] : undefined;
    const decoded = Buffer.from(m[2], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const value = colon < 0 ? (scheme === 'apikey' ? decoded : '') : decoded.slice(colon + 1) || (scheme === 'basic' ? decoded.slice(0, colon) : '');
    return TOKEN.test(value) ? value : undefined;
  }
  if (!sentry) return undefined;
  const auth = req.headers['x-sentry-auth'];
  if (typeof auth === 'string') {
    const k = /(?:^|[\s,])sentry_key\s*=\s*([^\s,]{1,512})/.exec(auth);
    if (k) return k[1];
  }
  const q = (req.query ?? {}) as Record<string, unknown>;
  return typeof q.sentry_key === 'string' && TOKEN.test(q.sentry_key) ? q.sentry_key : undefined;
}

/** How often a long-lived response (an SSE stream) checks that its key still holds. */
export const KEY_WATCH_MS = 250;

/**
 * For responses that outlive the auth hook (SSE streams): calls `onLost` once the request's token
 * stops authenticating (revoked, also by another process on the same store, or expired). Returns
 * a function that stops watching.
 */
export function watchKey(keys: KeyStore, req: FastifyRequest, onLost: () => void, everyMs = KEY_WATCH_MS): () => void {
  const token = credential(req, req.routeOptions.config?.sentryAuth === true);
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    keys.authenticate(token ?? '').then((p) => {
      if (!p) {
        clearInterval(timer);
        onLost();
      }
    }, () => undefined).finally(() => (checking = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

export const authPlugin = fp(async (app: FastifyInstance, opts: AuthOptions) => {
  app.decorateRequest('principal', null as unknown as Principal);
  const routes: RouteEntry[] = [];
  app.decorate('routeTable', routes);
  app.addHook('onRoute', (r) => {
    let scope = r.config?.scope;
    const defaulted = !scope && API_PATH.test(r.url);
    if (defaulted) {
      scope = 'admin';
      r.config = { ...(r.config ?? {}), scope } as typeof r.config;
      app.log.warn({ method: r.method, url: r.url }, 'API route names no scope; it needs the admin scope');
    }
    for (const method of [r.method].flat()) routes.push({ method: String(method), url: r.url, scope, ...(defaulted ? { defaulted: true as const } : {}) });
  });
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const scope = req.routeOptions.config?.scope;
    if (!scope) return; // public route (health, dashboard assets)
    const token = credential(req, req.routeOptions.config?.sentryAuth === true);
    if (!token) {
      throw new HttpError(401, 'unauthorized', 'send Authorization: Bearer <token> (the admin token or a project key; Basic with the token as password also works)', undefined, { 'WWW-Authenticate': 'Bearer' });
    }
    const principal = await opts.keys.authenticate(token);
    if (!principal) {
      throw new HttpError(401, 'unauthorized', 'the token is unknown, revoked or expired', undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    }
    if (!hasScope(principal, scope)) {
      throw new HttpError(403, 'forbidden', `this key lacks the "${scope}" scope`);
    }
    if (opts.requests) {
      const limit = opts.requests.perMinute(principal);
      const r = await opts.requests.limiter.take(`req:${budgetKey(principal)}`, limit, 1);
      if (r.retryAfterS > 0) {
        throw new HttpError(429, 'rate_limited', `this key may make ${limit} requests a minute; retry in ${r.retryAfterS} s`,
          { limit_per_minute: limit, retry_after_s: r.retryAfterS }, { 'Retry-After': String(r.retryAfterS) });
      }
    }
    req.principal = principal;
  });
});
