// The keys API (admin scope): POST|GET /monitoring/keys, PATCH|DELETE /monitoring/keys/:id.
// A token is shown once, in the answer to POST; lists never carry a token or its hash. A key bound
// to one project manages that project's keys only; keys of other projects and all-project keys
// are invisible to it (404, not 403: their ids are not confirmed to exist).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import type { EngineDeps } from '../engine-deps.js';
import { hasScope, mayAccessProject, SCOPES, type Principal } from './principal.js';
import type { Config } from '../config.js';
import type { ApiKey } from './key-store.js';
import { buildDsn } from '../collector/sentry.js';

const PROJECT_PATTERN = '^[A-Za-z0-9_.:-]{1,128}$';
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_PER_MINUTE = 1_000_000_000;

const Limit = Type.Union([Type.Integer({ minimum: 0, maximum: MAX_PER_MINUTE }), Type.Null()], {
  description: 'per minute; 0 = unlimited, null = the engine default',
});
const Name = Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });

export const CreateKeyBody = Type.Object({
  name: Name,
  scopes: Type.Array(Type.Union(SCOPES.map((s) => Type.Literal(s))), { minItems: 1, maxItems: SCOPES.length, uniqueItems: true }),
  project_id: Type.Union([Type.String({ pattern: PROJECT_PATTERN }), Type.Null()], {
    description: 'the project the key is bound to; null = every project (admin keys only)',
  }),
  expires_at: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()], { description: 'ISO 8601, in the future' })),
  requests_per_minute: Type.Optional(Limit),
  events_per_minute: Type.Optional(Limit),
}, { additionalProperties: false });
export type CreateKeyBody = Static<typeof CreateKeyBody>;

export const PatchKeyBody = Type.Object({
  name: Type.Optional(Name),
  requests_per_minute: Type.Optional(Limit),
  events_per_minute: Type.Optional(Limit),
}, { additionalProperties: false, minProperties: 1 });
export type PatchKeyBody = Static<typeof PatchKeyBody>;

/**
 * Strict validation (no coercion, no silently dropped fields: a misspelt `expire_at` must not
 * quietly make a key that never expires), with every error naming its field.
 */
function validator<T extends TSchema>(schema: T) {
  const c = TypeCompiler.Compile(schema);
  return (body: unknown): Static<T> => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw badRequest([{ field: '(body)', message: 'must be a JSON object' }]);
    }
    if (c.Check(body)) return body as Static<T>;
    const errors: FieldError[] = [];
    const seen = new Set<string>();
    for (const e of c.Errors(body)) {
      let field = e.path.replace(/^\//, '').replace(/\//g, '.') || '(body)';
      let message = e.message.toLowerCase();
      if (field === '(body)' && e.schema.additionalProperties === false) {
        const extra = Object.keys(body).find((k) => !(k in (schema as unknown as { properties: object }).properties));
        if (extra !== undefined) {
          field = extra.slice(0, 64);
          message = 'is not a known field';
        }
      }
      if (field === '(body)' && e.schema.required) {
        const missing = (e.schema.required as string[]).find((k) => !(k in (body as object)));
        if (missing) {
          field = missing;
          message = 'is required';
        }
      }
      if (field.startsWith('scopes')) {
        field = 'scopes';
        message = `must be a non-empty list of distinct scopes from ${SCOPES.join(', ')}`;
      }
      if (seen.has(field)) continue;
      seen.add(field);
      errors.push({ field, message });
      if (errors.length >= 10) break;
    }
    throw badRequest(errors.length ? errors : [{ field: '(body)', message: 'is invalid' }]);
  };
}

const checkCreate = validator(CreateKeyBody);
const checkPatch = validator(PatchKeyBody);

function keyId(req: FastifyRequest): string {
  const { id } = req.params as { id: string };
  if (!KEY_ID.test(id)) throw badRequest([{ field: 'id', message: 'is not a key id' }]);
  return id;
}

/** May this principal see and manage this key? */
export function mayManageKey(p: Principal, k: Pick<ApiKey, 'project_id'>): boolean {
  if (k.project_id === null) return p.projects === '*';
  return mayAccessProject(p, k.project_id);
}

/** A per-minute limit as it applies: the key's own, else the engine default; 0 = unlimited. */
function applied(own: number | null | undefined, engineDefault: number): number {
  const v = own ?? engineDefault;
  return v === 0 ? Infinity : v;
}

/**
 * A key may grant only what it holds: scopes it has, and limits no looser than its own (a limit of
 * 0, unlimited, is looser than any finite one). The admin token holds everything.
 */
export function grantProblems(
  p: Principal,
  want: { scopes?: readonly string[]; requests_per_minute?: number | null; events_per_minute?: number | null },
  config: Pick<Config, 'rateLimitRequestsPerMinute' | 'rateLimitEventsPerMinute'>,
): FieldError[] {
  if (!p.keyId) return [];
  const errors: FieldError[] = [];
  for (const s of want.scopes ?? []) {
    if (!hasScope(p, s as (typeof SCOPES)[number])) errors.push({ field: 'scopes', message: `this key does not hold the "${s}" scope, so it cannot grant it` });
  }
  const limits = [
    ['requests_per_minute', want.requests_per_minute, p.requestsPerMinute, config.rateLimitRequestsPerMinute],
    ['events_per_minute', want.events_per_minute, p.eventsPerMinute, config.rateLimitEventsPerMinute],
  ] as const;
  for (const [field, wanted, own, engineDefault] of limits) {
    if (wanted === undefined) continue;
    const mine = applied(own, engineDefault);
    if (applied(wanted, engineDefault) > mine) {
      errors.push({ field, message: `may not be looser than this key's own limit (${mine === Infinity ? 'unlimited' : mine}); 0 and null (the engine default${engineDefault === 0 ? ', unlimited' : ` ${engineDefault}`}) count as their effect` });
    }
  }
  return errors;
}

function refuseGrant(errors: FieldError[]): void {
  if (errors.length) throw new HttpError(403, 'forbidden', `${errors[0].field}: ${errors[0].message}`, { errors });
}

function parseExpiry(raw: string | null | undefined, now: number): number | null {
  if (raw === undefined || raw === null) return null;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/.test(raw)) {
    throw badRequest([{ field: 'expires_at', message: 'must be an ISO 8601 date and time with a zone, e.g. 2026-01-31T00:00:00Z' }]);
  }
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw badRequest([{ field: 'expires_at', message: 'is not a valid date' }]);
  if (t <= now) throw badRequest([{ field: 'expires_at', message: 'must be in the future' }]);
  return t;
}

export async function keysRoutes(app: FastifyInstance, deps: EngineDeps): Promise<void> {
  const { keys } = deps;

  app.post('/monitoring/keys', { config: { scope: 'admin', docs: { body: CreateKeyBody } } }, async (req, reply) => {
    const body = checkCreate(req.body);
    const p = req.principal;
    if (body.project_id === null) {
      if (!body.scopes.includes('admin')) {
        throw badRequest([{ field: 'project_id', message: 'null (every project) is allowed only for keys with the admin scope; name a project' }]);
      }
      if (p.projects !== '*') throw new HttpError(403, 'forbidden', 'only a caller with access to every project may create an all-project key');
    } else if (!mayAccessProject(p, body.project_id)) {
      throw new HttpError(403, 'forbidden', `this key may not manage project ${body.project_id}`);
    }
    refuseGrant(grantProblems(p, { ...body, requests_per_minute: body.requests_per_minute ?? null, events_per_minute: body.events_per_minute ?? null }, deps.config));
    const expires = parseExpiry(body.expires_at, Date.now());
    const { key, token } = await keys.create({
      name: body.name,
      scopes: body.scopes,
      project_id: body.project_id,
      expires_at: expires,
      requests_per_minute: body.requests_per_minute ?? null,
      events_per_minute: body.events_per_minute ?? null,
    });
    await deps.recordAdminAction(p, 'create_key', { project_id: key.project_id, kind: 'api_key', id: key.id }, {
      name: key.name, scopes: key.scopes, key_project: key.project_id ?? '*', expires_at: key.expires_at,
      requests_per_minute: key.requests_per_minute, events_per_minute: key.events_per_minute, by_key: p.keyId ?? p.name,
    });
    const dsn = key.project_id !== null && (key.scopes.includes('ingest') || key.scopes.includes('admin'))
      ? buildDsn(baseUrl(req), await keys.dsnKey(key.id, key.project_id), key.project_id) : undefined;
    return reply.code(201).header('cache-control', 'no-store').send({ ...key, token, ...(dsn ? { dsn } : {}) });
  });

  /** Where SDKs reach this engine: the configured public URL, else the address this request came to. */
  const baseUrl = (req: FastifyRequest): string => deps.config.publicUrl || `${req.protocol}://${req.host}`;

  // A Sentry DSN for a key: its DSN-safe public key (ingest only), this engine's address, the
  // project as a number. A key for every project names the project with ?project_id=.
  app.get('/monitoring/keys/:id/dsn', { config: { scope: 'admin' } }, async (req) => {
    const k = await visibleKey(req);
    const q = (req.query ?? {}) as Record<string, unknown>;
    const unknown = Object.keys(q).find((x) => x !== 'project_id');
    if (unknown !== undefined) throw badRequest([{ field: unknown.slice(0, 64), message: 'is not a known parameter' }]);
    if (k.revoked_at !== null) throw new HttpError(409, 'revoked', `key ${k.id} is revoked`);
    if (!k.scopes.includes('ingest') && !k.scopes.includes('admin')) throw new HttpError(409, 'no_ingest_scope', `key ${k.id} has no ingest scope; a DSN sends events`);
    let project = k.project_id;
    if (project === null) {
      if (typeof q.project_id !== 'string' || !new RegExp(PROJECT_PATTERN).test(q.project_id)) {
        throw badRequest([{ field: 'project_id', message: 'is required for a key of every project: a DSN writes to one project' }]);
      }
      project = q.project_id;
    } else if (q.project_id !== undefined && q.project_id !== project) {
      throw badRequest([{ field: 'project_id', message: `this key is bound to project ${project}` }]);
    }
    const publicKey = await keys.dsnKey(k.id, project);
    return { key_id: k.id, project_id: project, public_key: publicKey, dsn: buildDsn(baseUrl(req), publicKey, project) };
  });

  app.get('/monitoring/keys', { config: { scope: 'admin' } }, async (req) => {
    const p = req.principal;
    const q = (req.query ?? {}) as Record<string, unknown>;
    const unknown = Object.keys(q)[0];
    if (unknown !== undefined) throw badRequest([{ field: unknown.slice(0, 64), message: 'is not a known parameter' }]);
    const list = await keys.list(p.projects === '*' ? undefined : [...p.projects]);
    return { keys: list.filter((k) => mayManageKey(p, k)) };
  });

  /** The key if the caller may manage it; 404 otherwise (existence is not confirmed). */
  async function visibleKey(req: FastifyRequest): Promise<ApiKey> {
    const id = keyId(req);
    const k = await keys.get(id);
    if (!k || !mayManageKey(req.principal, k)) throw new HttpError(404, 'not_found', `no key ${id}`);
    return k;
  }

  app.get('/monitoring/keys/:id', { config: { scope: 'admin' } }, async (req) => visibleKey(req));

  app.patch('/monitoring/keys/:id', { config: { scope: 'admin', docs: { body: PatchKeyBody } } }, async (req) => {
    const k = await visibleKey(req);
    const body = checkPatch(req.body);
    // also when a key PATCHes itself: it cannot lift its own limits
    refuseGrant(grantProblems(req.principal, body, deps.config));
    const updated = await keys.update(k.id, body);
    if (!updated) throw new HttpError(404, 'not_found', `no key ${k.id}`);
    await deps.recordAdminAction(req.principal, 'update_key', { project_id: k.project_id, kind: 'api_key', id: k.id }, {
      changes: body, by_key: req.principal.keyId ?? req.principal.name,
    });
    return updated;
  });

  app.delete('/monitoring/keys/:id', { config: { scope: 'admin' } }, async (req) => {
    const k = await visibleKey(req);
    const revoked = await keys.revoke(k.id);
    if (revoked) {
      await deps.recordAdminAction(req.principal, 'revoke_key', { project_id: k.project_id, kind: 'api_key', id: k.id }, {
        name: k.name, by_key: req.principal.keyId ?? req.principal.name,
      });
    }
    const now = await keys.get(k.id);
    return { ...now, revoked: true, already_revoked: !revoked };
  });
}
