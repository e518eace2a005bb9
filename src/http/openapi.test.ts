// /openapi.json is generated from the routes: every route the engine registers is in it (walked with
// an onRoute hook installed before any route), with its method, path parameters and TypeBox schemas.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { createEngine, type Engine } from '../engine.js';
import { ADMIN_TOKEN, call, removeDir, tempDir } from '../../test/helpers.js';
import { openapiPath } from './openapi.js';

let engine: Engine;
let url: string;
let dir: string;
const registered: { method: string; url: string }[] = [];

beforeAll(async () => {
  dir = tempDir();
  const config = loadConfig({}, { MONITORING_DATA_DIR: dir, MONITORING_PORT: '0', MONITORING_ADMIN_TOKEN: ADMIN_TOKEN, MONITORING_LOG_LEVEL: 'silent' });
  engine = await createEngine(config);
  // routeTable (the auth plugin's onRoute record) holds every route as registered, HEAD included
  for (const r of engine.app.routeTable) registered.push({ method: r.method, url: r.url });
  url = await engine.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  engine?.app.server.closeAllConnections();
  await engine?.close();
  if (dir) removeDir(dir);
});

describe('GET /openapi.json', () => {
  it('is public, OpenAPI 3.1, and lists every registered route', async () => {
    const res = await call(url, 'GET', '/openapi.json', { token: null });
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toMatch(/Monitoring/);
    expect(registered.length).toBeGreaterThan(40);
    const routes = new Set(registered.map((r) => `${r.method} ${r.url}`));
    const missing = registered
      // fastify adds a HEAD beside each GET; the document lists the GET
      .filter((r) => !(r.method === 'HEAD' && routes.has(`GET ${r.url}`)))
      .filter((r) => !doc.paths[openapiPath(r.url)]?.[r.method.toLowerCase()])
      .map((r) => `${r.method} ${r.url}`);
    expect(missing).toEqual([]);
  });

  it('carries the TypeBox schemas, path parameters and the bearer requirement of scoped routes', async () => {
    const doc = (await call(url, 'GET', '/openapi.json', { token: null })).body;
    const settings = doc.paths['/monitoring/projects/{project_id}/settings'].put;
    expect(settings.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'project_id', in: 'path', required: true })]));
    expect(settings.requestBody.content['application/json'].schema.properties).toHaveProperty('redaction');
    expect(settings.security).toEqual([{ bearer: [] }]);
    expect(settings.description).toMatch(/admin/);
    expect(doc.paths['/health'].get.security).toBeUndefined();
    // routes that validate by hand name their TypeBox schema under config.docs
    expect(doc.paths['/monitoring/keys'].post.requestBody.content['application/json'].schema.properties).toHaveProperty('scopes');
    expect(doc.paths['/monitoring/alert-rules'].post.requestBody.content['application/json'].schema.properties).toHaveProperty('kind');
    expect(doc.paths['/monitoring/projects/{project_id}/forwarding'].put.requestBody.content['application/json'].schema.properties).toHaveProperty('datadog');
    const search = doc.paths['/monitoring/logs'].get.parameters.filter((p: any) => p.in === 'query').map((p: any) => p.name);
    expect(search).toEqual(expect.arrayContaining(['project_id', 'severity', 'from', 'to', 'q', 'query', 'limit', 'cursor']));
    const patch = doc.paths['/monitoring/errors/{fingerprint}'].patch;
    expect(patch.requestBody.content['application/json'].schema.properties.state.anyOf.map((s: any) => s.const ?? s.enum?.[0])).toContain('resolved');
  });
});

describe('openapiPath', () => {
  it('writes fastify paths the way the document does', () => {
    expect(openapiPath('/monitoring/keys/:id')).toBe('/monitoring/keys/{id}');
    expect(openapiPath('/monitoring/projects/:project_id/settings')).toBe('/monitoring/projects/{project_id}/settings');
    expect(openapiPath('/*')).toBe('/{*}');
  });
});
