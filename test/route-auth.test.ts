// Walks EVERY route the app serves (collected by the auth plugin's onRoute hook, so routes added
// later are covered without touching this file) and checks: no key → 401; a wrong key → 401; a
// revoked key → 401; a key without the route's scope → 403; a key for project A asking about
// project B → 4xx, or B's data absent. Public routes are listed here by name and nothing else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startEngine, type TestEngine } from './helpers.js';
import type { RouteEntry } from '../src/auth/http.js';
import type { Scope } from '../src/auth/principal.js';

const A = 'pf_route_a';
const B = 'pf_route_b';
const B_SECRET = 'B-ONLY-SECRET-93kd7';
const B_SESSION = 'sess_b_93kd7';

/** Routes that need no key: liveness, readiness and the dashboard's static files. */
const isPublic = (r: RouteEntry) => r.url === '/health' || r.url === '/ready' || !/^\/(monitoring|v1|metrics)(\/|$)/.test(r.url);

let t: TestEngine;
let routes: RouteEntry[];
const tokens: Record<string, string> = {};
const bIds: Record<string, string> = {};

async function probe(method: string, path: string, token: string | null, body?: unknown): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 1000); // streams (SSE, exports) are read for a moment only
  try {
    const res = await fetch(t.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: ctl.signal });
    let text = '';
    try {
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
        if (text.length > 2_000_000) break;
      }
      await reader.cancel().catch(() => undefined);
    } catch {
      // aborted stream: what arrived so far is what we check
    }
    return { status: res.status, text };
  } finally {
    clearTimeout(timer);
  }
}

async function seed(): Promise<void> {
  const post = (body: unknown) => fetch(`${t.url}/monitoring/logs`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json());
  const b = await post([
    { project_id: B, message: `b message ${B_SECRET}`, session_id: B_SESSION, user_id: 'u_b', flow_id: 'flow_b', engine: 'execution', platform: 'Slack', action: 'send', duration_ms: 10 },
    { project_id: B, status: 'error', error_type: 'BError', message: `b failed ${B_SECRET}`, session_id: B_SESSION, duration_ms: 20 },
    { project_id: B, event_type: 'deploy', message: `deploy ${B_SECRET}`, attributes: { version: B_SECRET } },
    { project_id: B, event_type: 'audit', action: 'login', user_id: 'u_b', message: `audit ${B_SECRET}` },
  ]);
  bIds.event = b.ids[0];
  await post({ project_id: A, message: 'a message', session_id: 'sess_a', status: 'error', error_type: 'AError', duration_ms: 5 });
  const errs = await fetch(`${t.url}/monitoring/logs?project_id=${B}&status=error`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json());
  bIds.fingerprint = errs.logs[0].fingerprint;
  expect(bIds.fingerprint).toBeTruthy();
  const k = await t.engine.keys.create({ name: 'b key', scopes: ['ingest'], project_id: B });
  bIds.key = k.key.id;
}

/** Keys bound to project A: one per scope, plus one with all of them. */
async function makeKeys(): Promise<void> {
  const make = async (scopes: Scope[], project: string | null = A) =>
    (await t.engine.keys.create({ name: scopes.join('+'), scopes, project_id: project, requests_per_minute: 0, events_per_minute: 0 })).token;
  tokens.ingest = await make(['ingest']);
  tokens.read = await make(['read']);
  tokens.admin = await make(['admin']);
  tokens.readIngest = await make(['read', 'ingest']);
  const revoked = await t.engine.keys.create({ name: 'revoked', scopes: ['admin'], project_id: A });
  await t.engine.keys.revoke(revoked.key.id);
  tokens.revoked = revoked.token;
}

/** A key that authenticates but lacks `scope` (admin implies every scope, so it never lacks one). */
const withoutScope = (scope: Scope): string => (scope === 'ingest' ? tokens.read : scope === 'read' ? tokens.ingest : tokens.readIngest);

/** Concrete paths for a route pattern: each parameter filled with values that name B's things. */
function pathsFor(url: string): string[] {
  const params = [...url.matchAll(/:(\w+)/g)].map((m) => m[1]);
  const candidates = (name: string): string[] => {
    if (/project/.test(name)) return [B];
    if (/fingerprint|^fp$/.test(name)) return [bIds.fingerprint];
    if (/session/.test(name)) return [B_SESSION];
    return [B_SESSION, bIds.key, bIds.event, bIds.fingerprint, 'u_b'];
  };
  let out = [url.replace(/\*$/, 'x')];
  for (const p of params) {
    const next: string[] = [];
    for (const o of out) for (const v of candidates(p)) next.push(o.replace(`:${p}`, encodeURIComponent(v)));
    out = next;
  }
  return [...new Set(out)];
}

/**
 * The Elasticsearch handshake's template/policy PUTs are acknowledged and dropped (src/collector/es-api.ts):
 * a 200 there changes nothing in any project.
 */
const DISCARDED = /^\/es\/_(?:index_template|template|component_template|ilm\/policy|ingest\/pipeline|data_stream)\/:name$/;

const withQuery = (path: string, q: string) => path + (path.includes('?') ? '&' : '?') + q;

beforeAll(async () => {
  t = await startEngine();
  await seed();
  await makeKeys();
  routes = t.engine.app.routeTable.filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS');
});
afterAll(async () => {
  await t.close();
});

describe('every route', () => {
  it('is collected, and every API route names a scope', () => {
    const names = routes.map((r) => `${r.method} ${r.url}`);
    for (const r of ['POST /monitoring/logs', 'GET /monitoring/logs', 'GET /monitoring/errors', 'GET /monitoring/errors/:fingerprint',
      'GET /monitoring/performance', 'GET /monitoring/keys', 'POST /monitoring/keys', 'DELETE /monitoring/keys/:id', 'GET /metrics']) {
      expect(names).toContain(r);
    }
    const open = routes.filter((r) => !r.scope && !isPublic(r));
    expect(open.map((r) => `${r.method} ${r.url}`)).toEqual([]);
    // an API route that forgot its scope is served as admin-only (fail closed), and flagged here
    expect(routes.filter((r) => r.defaulted).map((r) => `${r.method} ${r.url}`)).toEqual([]);
    expect(routes.filter((r) => r.scope).length).toBeGreaterThanOrEqual(15);
  });

  it('answers 401 without a key, with a wrong key and with a revoked key', async () => {
    const failures: string[] = [];
    for (const r of routes.filter((x) => x.scope)) {
      const path = pathsFor(r.url)[0];
      for (const [label, token] of [['no key', null], ['wrong key', 'pm_' + 'x'.repeat(43)], ['malformed header', 'a b c'], ['revoked key', tokens.revoked]] as const) {
        const res = await probe(r.method, path, token, ['POST', 'PUT', 'PATCH'].includes(r.method) ? { project_id: A } : undefined);
        if (res.status !== 401) failures.push(`${r.method} ${r.url} (${label}): ${res.status} ${res.text.slice(0, 120)}`);
        // (OTLP routes answer a google.rpc.Status, whose ErrorInfo carries the engine's code as its reason)
        else if (!/"code":"unauthorized"|"reason":"unauthorized"/.test(res.text)) failures.push(`${r.method} ${r.url} (${label}): 401 without the error shape`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('answers 403 to a valid key that lacks the route\'s scope', async () => {
    const failures: string[] = [];
    for (const r of routes.filter((x) => x.scope)) {
      const path = pathsFor(r.url)[0];
      const res = await probe(r.method, path, withoutScope(r.scope!), ['POST', 'PUT', 'PATCH'].includes(r.method) ? { project_id: A } : undefined);
      if (res.status !== 403) failures.push(`${r.method} ${r.url} (scope ${r.scope}): ${res.status} ${res.text.slice(0, 120)}`);
    }
    expect(failures).toEqual([]);
  });

  it('never gives a project-A key project B\'s data, and never lets it change B', async () => {
    const failures: string[] = [];
    const mutating = (m: string) => m !== 'GET';
    for (const r of routes.filter((x) => x.scope)) {
      // the key has the route's scope (admin includes all) and is bound to A
      const token = r.scope === 'admin' ? tokens.admin : r.scope === 'read' ? tokens.read : tokens.ingest;
      for (const base of pathsFor(r.url)) {
        const attempts: { path: string; body?: unknown }[] = mutating(r.method)
          ? [
            { path: base, body: { project_id: B, name: 'probe', message: 'probe', scopes: ['read'], state: 'resolved' } },
            { path: withQuery(base, `project_id=${B}`), body: { project_id: B } },
          ]
          : [{ path: base }, { path: withQuery(base, `project_id=${B}`) }, { path: withQuery(base, `session_id=${B_SESSION}`) }];
        for (const a of attempts) {
          const res = await probe(r.method, a.path, token, a.body);
          const where = `${r.method} ${a.path}`;
          if (res.status >= 500) failures.push(`${where}: ${res.status} ${res.text.slice(0, 120)}`);
          if (res.text.includes(B_SECRET) || res.text.includes(`"project_id":"${B}"`)) failures.push(`${where}: B's data in the answer`);
          if (mutating(r.method) && res.status < 400 && !DISCARDED.test(r.url)) failures.push(`${where}: ${res.status} — a change reached project B`);
        }
      }
    }
    expect(failures).toEqual([]);
    // and B is as it was: its key works, its events are all there, its settings untouched
    const bLogs = await probe('GET', `/monitoring/logs?project_id=${B}&limit=100`, ADMIN_TOKEN);
    expect(JSON.parse(bLogs.text).logs.filter((l: any) => l.event_type !== 'audit' || l.action === 'login')).toHaveLength(4);
    const bKey = await t.engine.keys.get(bIds.key);
    expect(bKey?.revoked_at).toBeNull();
    expect(bKey?.name).toBe('b key');
  });

  it('lets the right key through (sanity: the walk is not all 4xx because every path is wrong)', async () => {
    const ok: string[] = [];
    for (const r of routes.filter((x) => x.scope && x.method === 'GET' && !x.url.includes(':'))) {
      const res = await probe('GET', r.url, ADMIN_TOKEN);
      if (res.status === 200) ok.push(r.url);
      expect(res.status, `${r.url}: ${res.text.slice(0, 200)}`).toBeLessThan(500);
    }
    expect(ok).toEqual(expect.arrayContaining(['/monitoring/logs', '/monitoring/errors', '/monitoring/keys', '/metrics']));
  });
});
