import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ADMIN_TOKEN, call, removeDir, startEngine, tempDir, type TestEngine } from '../../test/helpers.js';
import { createKey, CliError, formatKeys, withKeyStore } from './keys-cli.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startEngine();
});
afterAll(async () => {
  await t.close();
});

const post = (body: unknown, token = ADMIN_TOKEN) => call(t.url, 'POST', '/monitoring/keys', { body, token });

async function auditOf(action: string, keyId: string) {
  const r = await call(t.url, 'GET', `/monitoring/logs?event_type=audit&action=${action}&attr.target_id=${keyId}`);
  expect(r.status).toBe(200);
  return r.body.logs;
}

describe('POST /monitoring/keys', () => {
  it('creates a key, shows the token once, and the token works for its scopes and project only', async () => {
    const r = await post({ name: 'execution engine', scopes: ['ingest'], project_id: 'pf_keys' });
    expect(r.status).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body.token).toMatch(/^pm_[A-Za-z0-9_-]{43}$/);
    expect(r.body).toMatchObject({ name: 'execution engine', scopes: ['ingest'], project_id: 'pf_keys', revoked_at: null, expires_at: null });
    expect(r.body.hash).toBeUndefined();
    const token = r.body.token;
    const ok = await call(t.url, 'POST', '/monitoring/logs', { token, body: { project_id: 'pf_keys', message: 'hello' } });
    expect(ok.status).toBe(200);
    const other = await call(t.url, 'POST', '/monitoring/logs', { token, body: { project_id: 'pf_other', message: 'hello' } });
    expect(other.status).toBe(400);
    const read = await call(t.url, 'GET', '/monitoring/logs', { token });
    expect(read.status).toBe(403);
    // never shown again
    const list = await call(t.url, 'GET', '/monitoring/keys');
    const listed = list.body.keys.find((k: any) => k.id === r.body.id);
    expect(listed).toBeDefined();
    expect(JSON.stringify(list.body)).not.toContain(token);
    expect(listed.token).toBeUndefined();
    expect(listed.hash).toBeUndefined();
    const one = await call(t.url, 'GET', `/monitoring/keys/${r.body.id}`);
    expect(JSON.stringify(one.body)).not.toContain(token);
    // recorded, with who, never with the token
    const audit = await auditOf('create_key', r.body.id);
    expect(audit).toHaveLength(1);
    expect(audit[0].user_id).toBe('admin-token');
    expect(audit[0].project_id).toBe('pf_keys');
    expect(JSON.stringify(audit)).not.toContain(token);
  });

  it('rejects bad bodies with 400 naming the field', async () => {
    const base = { name: 'x', scopes: ['read'], project_id: 'pf_keys' };
    const cases: [unknown, string][] = [
      [{ ...base, name: '' }, 'name'],
      [{ ...base, name: 'a'.repeat(101) }, 'name'],
      [{ ...base, name: 'line\nbreak' }, 'name'],
      [{ ...base, name: 5 }, 'name'],
      [{ scopes: ['read'], project_id: 'pf_keys' }, 'name'],
      [{ ...base, scopes: [] }, 'scopes'],
      [{ ...base, scopes: ['root'] }, 'scopes'],
      [{ ...base, scopes: 'read' }, 'scopes'],
      [{ ...base, scopes: ['read', 'read'] }, 'scopes'],
      [{ name: 'x', scopes: ['read'] }, 'project_id'],
      [{ ...base, project_id: 'has space' }, 'project_id'],
      [{ ...base, project_id: null }, 'project_id'], // null only with admin
      [{ ...base, expires_at: 'tomorrow' }, 'expires_at'],
      [{ ...base, expires_at: '2001-01-01T00:00:00Z' }, 'expires_at'],
      [{ ...base, expires_at: 1893456000000 }, 'expires_at'],
      [{ ...base, requests_per_minute: -1 }, 'requests_per_minute'],
      [{ ...base, requests_per_minute: '10' }, 'requests_per_minute'],
      [{ ...base, events_per_minute: 1.5 }, 'events_per_minute'],
      [{ ...base, events_per_minute: 1e12 }, 'events_per_minute'],
      [{ ...base, expire_at: '2100-01-01T00:00:00Z' }, 'expire_at'], // a typo is not silently dropped
      [[base], '(body)'],
    ];
    for (const [body, field] of cases) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe('invalid_request');
      expect(r.body.error.details.errors.map((e: any) => e.field), JSON.stringify(body)).toContain(field);
    }
    const proto = await call(t.url, 'POST', '/monitoring/keys', { raw: '{"name":"x","scopes":["read"],"project_id":"pf_keys","__proto__":{"admin":true}}' });
    expect(proto.status).toBe(400);
  });

  it('all-project keys: admin scope only, and only a caller that sees every project may make one', async () => {
    const r = await post({ name: 'ops', scopes: ['admin'], project_id: null });
    expect(r.status).toBe(201);
    expect(r.body.project_id).toBeNull();
    const bound = await post({ name: 'pf admin', scopes: ['admin'], project_id: 'pf_keys' });
    expect(bound.status).toBe(201);
    const esc = await post({ name: 'escalate', scopes: ['admin'], project_id: null }, bound.body.token);
    expect(esc.status).toBe(403);
    const other = await post({ name: 'escalate', scopes: ['read'], project_id: 'pf_victim' }, bound.body.token);
    expect(other.status).toBe(403);
    const own = await post({ name: 'reader', scopes: ['read'], project_id: 'pf_keys' }, bound.body.token);
    expect(own.status).toBe(201);
    // the all-project admin key may itself make all-project keys
    const nested = await post({ name: 'ops 2', scopes: ['admin', 'read'], project_id: null }, r.body.token);
    expect(nested.status).toBe(201);
    const audit = await auditOf('create_key', own.body.id);
    expect(audit[0].user_id).toBe('key:pf admin');
    expect(audit[0].attributes.by_key).toBe(bound.body.id);
  });

  it('only admin keys reach the keys API', async () => {
    const reader = await post({ name: 'r', scopes: ['read', 'ingest'], project_id: 'pf_keys' });
    for (const [m, p] of [['GET', '/monitoring/keys'], ['POST', '/monitoring/keys'], ['PATCH', `/monitoring/keys/${reader.body.id}`], ['DELETE', `/monitoring/keys/${reader.body.id}`]]) {
      const r = await call(t.url, m, p, { token: reader.body.token, body: m === 'POST' || m === 'PATCH' ? { name: 'x' } : undefined });
      expect(r.status, `${m} ${p}`).toBe(403);
    }
  });
});

describe('GET/PATCH/DELETE /monitoring/keys', () => {
  it('a project-bound admin key sees and manages only its project\'s keys', async () => {
    const a = await post({ name: 'a admin', scopes: ['admin'], project_id: 'pf_a' });
    const aKey = await post({ name: 'a ingest', scopes: ['ingest'], project_id: 'pf_a' });
    const bKey = await post({ name: 'b ingest', scopes: ['ingest'], project_id: 'pf_b' });
    const list = await call(t.url, 'GET', '/monitoring/keys', { token: a.body.token });
    expect(list.status).toBe(200);
    expect(list.body.keys.length).toBeGreaterThanOrEqual(2);
    for (const k of list.body.keys) expect(k.project_id).toBe('pf_a');
    expect(list.body.keys.map((k: any) => k.id)).toContain(aKey.body.id);
    // another project's key and all-project keys are not found (not confirmed to exist)
    for (const [m, body] of [['GET', undefined], ['PATCH', { name: 'mine' }], ['DELETE', undefined]] as const) {
      const r = await call(t.url, m, `/monitoring/keys/${bKey.body.id}`, { token: a.body.token, body });
      expect(r.status, m).toBe(404);
    }
    const still = await call(t.url, 'POST', '/monitoring/logs', { token: bKey.body.token, body: { project_id: 'pf_b', message: 'b' } });
    expect(still.status).toBe(200);
    const all = await call(t.url, 'GET', '/monitoring/keys');
    expect(all.body.keys.map((k: any) => k.project_id)).toEqual(expect.arrayContaining(['pf_a', 'pf_b', null]));
    const bad = await call(t.url, 'GET', '/monitoring/keys?project_id=pf_b', { token: a.body.token });
    expect(bad.status).toBe(400);
  });

  it('PATCH changes the name and limits, validates, and records who', async () => {
    const k = await post({ name: 'to patch', scopes: ['ingest'], project_id: 'pf_keys', requests_per_minute: 5 });
    const r = await call(t.url, 'PATCH', `/monitoring/keys/${k.body.id}`, { body: { name: 'patched', requests_per_minute: null, events_per_minute: 100 } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: k.body.id, name: 'patched', requests_per_minute: null, events_per_minute: 100, scopes: ['ingest'] });
    for (const [body, field] of [
      [{ scopes: ['admin'] }, 'scopes'], // scopes cannot be widened after the fact
      [{ project_id: null }, 'project_id'],
      [{ events_per_minute: -3 }, 'events_per_minute'],
      [{ name: '' }, 'name'],
    ] as const) {
      const bad = await call(t.url, 'PATCH', `/monitoring/keys/${k.body.id}`, { body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body.error.details.errors[0].field).toBe(field);
    }
    expect((await call(t.url, 'PATCH', `/monitoring/keys/${k.body.id}`, { body: {} })).status).toBe(400);
    expect((await call(t.url, 'PATCH', '/monitoring/keys/nope', { body: { name: 'x' } })).status).toBe(404);
    expect((await call(t.url, 'PATCH', "/monitoring/keys/1'%20OR%201=1", { body: { name: 'x' } })).status).toBe(400);
    expect(await auditOf('update_key', k.body.id)).toHaveLength(1);
  });

  it('DELETE revokes with immediate effect, even right after the key was used (cached)', async () => {
    const k = await post({ name: 'short lived', scopes: ['ingest', 'read'], project_id: 'pf_keys' });
    const token = k.body.token;
    expect((await call(t.url, 'GET', '/monitoring/logs?project_id=pf_keys', { token })).status).toBe(200);
    const d = await call(t.url, 'DELETE', `/monitoring/keys/${k.body.id}`);
    expect(d.status).toBe(200);
    expect(d.body.revoked_at).not.toBeNull();
    const after = await call(t.url, 'GET', '/monitoring/logs?project_id=pf_keys', { token });
    expect(after.status).toBe(401);
    expect((await call(t.url, 'POST', '/monitoring/logs', { token, body: { project_id: 'pf_keys' } })).status).toBe(401);
    const again = await call(t.url, 'DELETE', `/monitoring/keys/${k.body.id}`);
    expect(again.status).toBe(200);
    expect(again.body.already_revoked).toBe(true);
    expect(await auditOf('revoke_key', k.body.id)).toHaveLength(1);
    expect((await call(t.url, 'DELETE', '/monitoring/keys/00000000-0000-7000-8000-000000000000')).status).toBe(404);
  });

  it('an expired key stops working', async () => {
    const k = await post({ name: 'expiring', scopes: ['read'], project_id: 'pf_keys', expires_at: new Date(Date.now() + 1500).toISOString() });
    expect(k.status).toBe(201);
    expect((await call(t.url, 'GET', '/monitoring/logs', { token: k.body.token })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    expect((await call(t.url, 'GET', '/monitoring/logs', { token: k.body.token })).status).toBe(401);
  });
});

describe('puraify-monitoring keys (CLI)', () => {
  it('creates, lists and revokes keys in a data dir\'s control store', async () => {
    const dir = tempDir('pm-keys-cli-');
    try {
      const { key, token } = await withKeyStore(dir, (k) => createKey(k, { name: 'x', scopes: 'ingest,read', project: 'pf_1' }));
      expect(token).toMatch(/^pm_/);
      expect(key).toMatchObject({ name: 'x', scopes: ['ingest', 'read'], project_id: 'pf_1' });
      for (const bad of [
        { name: 'x', scopes: 'ingest,root', project: 'pf_1' },
        { name: 'x', scopes: 'ingest' },
        { name: 'x', scopes: 'ingest', allProjects: true },
        { name: 'x', scopes: 'admin', project: 'pf 1' },
        { name: 'x', scopes: 'read', project: 'pf_1', expiresAt: '2001-01-01T00:00:00Z' },
        { name: 'x', scopes: 'read', project: 'pf_1', requestsPerMinute: '-1' },
      ]) {
        await expect(withKeyStore(dir, (k) => createKey(k, bad)), JSON.stringify(bad)).rejects.toBeInstanceOf(CliError);
      }
      const list = await withKeyStore(dir, (k) => k.list());
      expect(list).toHaveLength(1);
      expect(formatKeys(list)).toContain('pf_1');
      expect(formatKeys(list)).not.toContain(token);

      // the built CLI, as an operator runs it
      const cli = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');
      const out = execFileSync(process.execPath, [cli, 'keys', 'create', '--data-dir', dir, '--name', 'from cli', '--scopes', 'ingest,read', '--project', 'pf_1', '--expires-at', '2100-01-01T00:00:00Z'], { encoding: 'utf8' });
      const printed = /\n\s+(pm_\S+)/.exec(out)?.[1];
      expect(printed).toMatch(/^pm_/);
      const listed = execFileSync(process.execPath, [cli, 'keys', 'list', '--data-dir', dir, '--json'], { encoding: 'utf8' });
      const keys = JSON.parse(listed);
      expect(keys).toHaveLength(2);
      expect(listed).not.toContain(printed);
      const made = keys.find((k: any) => k.name === 'from cli');
      expect(made.expires_at).toBe('2100-01-01T00:00:00.000Z');
      const rev = execFileSync(process.execPath, [cli, 'keys', 'revoke', made.id, '--data-dir', dir], { encoding: 'utf8' });
      expect(rev).toContain('revoked');
      const afterList = await withKeyStore(dir, (k) => k.list());
      expect(afterList.find((k) => k.id === made.id)?.revoked_at).not.toBeNull();
      // the token the CLI printed authenticates in an engine on that data dir until revoked
      const auth = await withKeyStore(dir, (k) => k.authenticate(printed!));
      expect(auth).toBeNull();
      const first = await withKeyStore(dir, (k) => k.authenticate(token));
      expect(first?.projects).toEqual(new Set(['pf_1']));
      let failed: any;
      try {
        execFileSync(process.execPath, [cli, 'keys', 'create', '--data-dir', dir, '--name', 'bad', '--scopes', 'read'], { encoding: 'utf8', stdio: 'pipe' });
      } catch (e) {
        failed = e;
      }
      expect(failed?.status).toBe(2);
      expect(String(failed?.stderr)).toContain('--project');
    } finally {
      removeDir(dir);
    }
  });
});
