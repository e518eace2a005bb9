// The SDK's lifecycle in a real process: a script that logs and ends with `await close()` while the
// engine is unreachable must neither exit early (rc 13, events lost) nor hang; whatever it could not
// send is reported through onDropped. The script loads the built SDK by package name.
import { spawn } from 'node:child_process';
import { createServer, connect, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startEngine, type TestEngine } from '../test/helpers.js';
import { EVENTS_TABLE } from '../src/storage/schema.js';

const SCRIPT = join(import.meta.dirname, 'fixtures', 'send-and-close.mjs');

interface ScriptResult { code: number | null; ms: number; out: { ids: string[]; dropped: string[]; reasons: string[]; stats: Record<string, number> } }

function runScript(args: string[]): Promise<ScriptResult> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`script exited with ${code}: ${stderr}`));
      resolve({ code, ms: Date.now() - t0, out: JSON.parse(stdout) });
    });
  });
}

/** A loopback port nothing listens on (connections are refused until we listen on it). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Starts forwarding `port` to the engine: from then on the engine is reachable there. */
async function forward(port: number, target: string): Promise<Server> {
  const t = new URL(target);
  const server = createServer((sock) => {
    const up = connect(Number(t.port), t.hostname);
    sock.pipe(up).pipe(sock);
    sock.on('error', () => up.destroy());
    up.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return server;
}

let eng: TestEngine;
beforeAll(async () => { eng = await startEngine(); });
afterAll(async () => { await eng?.close(); if (eng) removeDir(eng.dataDir); });

async function storedCounts(project: string): Promise<{ rows: number; ids: Set<string> }> {
  // acknowledged means in the write-ahead log; read storage once the loader has moved it there
  expect(await eng.engine.writePath.visible(10_000)).toBe(true);
  const rows = await eng.engine.events.query<{ id: string }>(`SELECT id FROM ${EVENTS_TABLE} WHERE project_id = {p:String}`, { p: project });
  return { rows: rows.length, ids: new Set(rows.map((r) => r.id)) };
}

describe('SDK lifecycle in a child process', () => {
  it('10,000 events, engine unreachable for the first 5 s, `await close()` → all stored exactly once, exit 0', async () => {
    const port = await freePort();
    const run = runScript([`http://127.0.0.1:${port}`, eng.token, 'life_outage', '10000']);
    await new Promise((r) => setTimeout(r, 5000));
    const proxy = await forward(port, eng.url);
    try {
      const { out, ms } = await run;
      expect(ms).toBeGreaterThanOrEqual(5000); // close() held the process through the outage
      expect(out.ids).toHaveLength(10_000);
      const { rows, ids } = await storedCounts('life_outage');
      // every event stored exactly once, or reported dropped (none are, with the default retries)
      expect(out.dropped).toEqual([]);
      expect(rows).toBe(10_000);
      expect(ids).toEqual(new Set(out.ids));
      expect(out.stats).toMatchObject({ queued: 0, sent: 10_000, dropped: 0 });
      expect(out.stats.retries).toBeGreaterThan(0);
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  }, 60_000);

  it('close({ timeoutMs }) against an engine that never comes: exits on time, every event reported dropped', async () => {
    const port = await freePort();
    const { out, ms } = await runScript([`http://127.0.0.1:${port}`, eng.token, 'life_never', '2000', '1500']);
    expect(ms).toBeGreaterThanOrEqual(1500);
    expect(ms).toBeLessThan(10_000);
    expect(new Set(out.dropped)).toEqual(new Set(out.ids));
    expect(out.dropped).toHaveLength(2000);
    expect(out.reasons.every((r) => r.startsWith('close() timed out after 1500 ms'))).toBe(true);
    expect(out.stats).toMatchObject({ queued: 0, sent: 0, dropped: 2000 });
  }, 30_000);

  it('a script that ends without close(): the queued events are sent before the process exits', async () => {
    const { out } = await runScript([eng.url, eng.token, 'life_noclose', '700', 'no-close']);
    expect(out.stats.sent).toBe(0); // printed before anything was sent: the flush ran at beforeExit
    const { rows, ids } = await storedCounts('life_noclose');
    expect(rows).toBe(700);
    expect(ids).toEqual(new Set(out.ids));
  }, 30_000);

  it('several URLs: the first refuses connections, the client moves to the second; nothing lost', async () => {
    const dead = await freePort();
    const { out } = await runScript([`http://127.0.0.1:${dead},${eng.url}`, eng.token, 'life_failover', '1200']);
    expect(out.dropped).toEqual([]);
    const { rows, ids } = await storedCounts('life_failover');
    expect(rows).toBe(1200);
    expect(ids).toEqual(new Set(out.ids));
    expect(out.stats.retries).toBe(1); // one failed attempt, then the second node for good
  }, 30_000);
});
