// Keys that stop holding stop working everywhere within 1 s: open SSE streams (live tail and the
// notification stream) end when their key is revoked (through the API or by another process with
// the CLI, on the same control store) or expires, and new requests are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { call, startEngine, type TestEngine } from './helpers.js';
import { controlEnv } from './control-db.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startEngine();
});
afterAll(async () => {
  await t.close();
});

async function key(expiresInMs?: number) {
  const expiresAt = expiresInMs === undefined ? null : Date.now() + expiresInMs;
  const { key, token } = await t.engine.keys.create({
    name: 'watched', scopes: ['read', 'ingest'], project_id: 'pf_rev', expires_at: expiresAt,
  });
  return { id: key.id, token, expiresAt };
}

/** Opens an SSE stream; resolves `ended` with the time the server closed it. */
async function open(path: string, token: string) {
  const ac = new AbortController();
  const res = await fetch(t.url + path, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let text = '';
  const ended = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return Date.now();
      text += new TextDecoder().decode(value);
    }
  })();
  const guard = setTimeout(() => ac.abort(), 8000);
  return { ended: ended.finally(() => clearTimeout(guard)), text: () => text };
}

const STREAMS = ['/monitoring/stream', '/monitoring/notifications/stream'];

describe('revocation reaches open streams and new requests within 1 s', () => {
  it.each(STREAMS)('%s ends within 1 s of a revocation through the API', async (path) => {
    const k = await key();
    const s = await open(path, k.token);
    await new Promise((r) => setTimeout(r, 300));
    const at = Date.now();
    expect((await call(t.url, 'DELETE', `/monitoring/keys/${k.id}`)).status).toBe(200);
    const ended = await s.ended;
    expect(ended - at).toBeLessThan(1000);
    expect(s.text()).toContain('event: key_revoked');
  });

  it.each(STREAMS)('%s ends within 1 s of the key expiring', async (path) => {
    const k = await key(1200);
    // the expiry the key was given, not one taken after it was stored (a PostgreSQL round trip later)
    const expiry = k.expiresAt!;
    const s = await open(path, k.token);
    const ended = await s.ended;
    expect(ended - expiry).toBeLessThan(1000);
    expect(ended).toBeGreaterThanOrEqual(expiry - 50);
  });

  it('a key revoked by the CLI (another process, same control store) is refused within 1 s, its stream ended', async () => {
    const k = await key();
    // used and cached before the revocation
    expect((await call(t.url, 'GET', '/monitoring/logs?project_id=pf_rev', { token: k.token })).status).toBe(200);
    const s = await open('/monitoring/stream', k.token);
    const cli = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');
    // the CLI finds the engine's control store as the engine does: the data dir, or MONITORING_DATABASE_URL
    await promisify(execFile)(process.execPath, [cli, 'keys', 'revoke', k.id, '--data-dir', t.dataDir], { env: { ...process.env, ...(await controlEnv(t.dataDir)) } });
    const at = Date.now();
    let refusedAt = 0;
    while (Date.now() - at < 3000) {
      if ((await call(t.url, 'GET', '/monitoring/logs?project_id=pf_rev', { token: k.token })).status === 401) {
        refusedAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(refusedAt).toBeGreaterThan(0);
    expect(refusedAt - at).toBeLessThan(1000);
    expect((await s.ended) - at).toBeLessThan(1000);
  });
});
