// Redaction, proven where it matters: in storage. Events carrying secrets are posted through HTTP;
// then every table of the event store (events, the error rollup, anything added later
// that has a project_id) and the control store's files are searched for each secret, while the
// events stay findable by their other words.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpControlStore } from './control-db.js';
import { call, startEngine, type TestEngine } from './helpers.js';

const P = 'pf_redact';
const P_OTHER = 'pf_redact_plain';

interface Sample {
  name: string;
  /** Every one of these must be absent from storage. */
  secrets: string[];
  event: Record<string, unknown>;
  /** A search that must still find the event (q = text in message/error_type/stack). */
  q: string;
  /** The marker expected in the stored event. */
  marker?: string;
}

const SLACK = 'xoxb-263594206564-2343594206574-FGqddMF8t08v8N7Oq4i57vs1';
const SAMPLES: Sample[] = [
  { name: 'Vault: Slack bot token in the message', secrets: [SLACK, 'FGqddMF8t08v8N7Oq4i57vs1'], q: 'access failed for token',
    event: { engine: 'vault', event_type: 'access', status: 'error', error_type: 'AccessDenied', message: `access failed for token ${SLACK}` }, marker: '[REDACTED:slack_token]' },
  { name: 'Vault: a second Slack token (same group)', secrets: ['xoxp-1111111111-2222222222-3333333333-abcdefabcdefabcdefabcdefabcdef12'], q: 'access failed for token',
    event: { engine: 'vault', event_type: 'access', status: 'error', error_type: 'AccessDenied', message: 'access failed for token xoxp-1111111111-2222222222-3333333333-abcdefabcdefabcdefabcdefabcdef12' } },
  { name: 'Bearer token in a header dump', secrets: ['k9Fz2LqW8xT4vB7nM3pR6sY1'], q: 'upstream 401',
    event: { message: 'upstream 401, Authorization: Bearer k9Fz2LqW8xT4vB7nM3pR6sY1', platform: 'Notion' }, marker: '[REDACTED:bearer_token]' },
  { name: 'JWT', secrets: ['eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1XzQyIiwiaWF0IjoxNzAwMDAwMDAwfQ.Q2hhbmdlTWVTaWduYXR1cmVWYWx1ZTEyMw'], q: 'session refresh rejected',
    event: { message: 'session refresh rejected jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1XzQyIiwiaWF0IjoxNzAwMDAwMDAwfQ.Q2hhbmdlTWVTaWduYXR1cmVWYWx1ZTEyMw' } },
  { name: 'GitHub token', secrets: ['ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s'], q: 'clone failed',
    event: { message: 'clone failed with ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s', platform: 'GitHub' } },
  { name: 'AWS access key id', secrets: ['AKIAIOSFODNN7EXAMPL3'], q: 's3 upload denied',
    event: { message: 's3 upload denied for AKIAIOSFODNN7EXAMPL3' } },
  { name: 'AWS secret in an attribute named like one', secrets: ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY'], q: 'credentials loaded',
    event: { message: 'credentials loaded', attributes: { aws_secret_access_key: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY' } } },
  { name: 'Stripe live key', secrets: ['sk_live_4eC39HqLyjWDarjtT1zdp7dc9Z'], q: 'charge failed',
    event: { message: 'charge failed using sk_live_4eC39HqLyjWDarjtT1zdp7dc9Z', platform: 'Stripe' } },
  { name: 'Google API key', secrets: ['AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY'], q: 'maps quota',
    event: { message: 'maps quota exceeded key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY' } },
  { name: 'OpenAI key', secrets: ['sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56'], q: 'completion call failed',
    event: { message: 'completion call failed: invalid sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56' } },
  { name: 'npm token', secrets: ['npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'], q: 'publish step',
    event: { message: 'publish step used npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8' } },
  { name: 'SendGrid key', secrets: ['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'], q: 'mail relay',
    event: { message: 'mail relay auth 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' } },
  { name: 'Notion integration secret', secrets: ['secret_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa9876'], q: 'notion sync',
    event: { message: 'notion sync with secret_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa9876 failed', platform: 'Notion' } },
  { name: 'Twilio API key', secrets: ['SK2b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e'], q: 'sms gateway',
    event: { message: 'sms gateway key SK2b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e rejected' } },
  { name: 'Slack webhook URL in an attribute', secrets: ['T0AAA1111/B0BBB2222/XyZ123abcDEF456ghiJKL789'], q: 'webhook post',
    event: { message: 'webhook post failed', attributes: { url: 'https://hooks.slack.com/services/T0AAA1111/B0BBB2222/XyZ123abcDEF456ghiJKL789' } } },
  { name: 'database URL password', secrets: ['Pg5ecr3tPa55w0rd'], q: 'connection to postgres',
    event: { message: 'connection to postgres://app:Pg5ecr3tPa55w0rd@db.internal:5432/app refused' } },
  { name: 'password=… in text', secrets: ['Tr0ub4dor-and-3'], q: 'login attempt',
    event: { message: 'login attempt user=ana password=Tr0ub4dor-and-3 rejected' } },
  { name: 'JSON body in the message', secrets: ['hunter2-correct-horse'], q: 'request body',
    event: { message: 'request body {"user":"ana","password":"hunter2-correct-horse"}' } },
  { name: 'escaped JSON in the stack', secrets: ['escaped-s3cret-value-77'], q: 'parse failure',
    event: { status: 'error', error_type: 'ParseError', message: 'parse failure', stack: 'ParseError: bad payload "{\\"client_secret\\":\\"escaped-s3cret-value-77\\"}"\n    at parse (/app/p.js:3:9)' } },
  { name: 'private key block in an attribute', secrets: ['MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7'], q: 'tls setup',
    event: { message: 'tls setup failed', attributes: { pem: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----' } } },
  { name: 'credit card number', secrets: ['4111 1111 1111 1111', '4111111111111111'], q: 'payment declined',
    event: { message: 'payment declined for card 4111 1111 1111 1111', action: 'charge' } },
  { name: 'Basic auth header', secrets: ['YWxpY2U6czNjcjN0LXBhc3N3b3Jk'], q: 'proxy auth',
    event: { message: 'proxy auth sent Authorization: Basic YWxpY2U6czNjcjN0LXBhc3N3b3Jk' } },
  { name: 'attribute named api_key', secrets: ['plainApiKeyValue123456'], q: 'client configured',
    event: { message: 'client configured', attributes: { api_key: 'plainApiKeyValue123456' } } },
  { name: 'camelCase slackToken attribute', secrets: ['some-opaque-value-0042'], q: 'slack client ready',
    event: { message: 'slack client ready', attributes: { slackToken: 'some-opaque-value-0042' } } },
  { name: 'top-level unknown field client_secret (kept as an attribute)', secrets: ['csec-9a8b7c6d5e4f'], q: 'oauth exchange',
    event: { message: 'oauth exchange', client_secret: 'csec-9a8b7c6d5e4f' } },
  { name: 'nested object attribute holding a password', secrets: ['nested-db-pass-314'], q: 'pool created',
    event: { message: 'pool created', attributes: { config: { db: { host: 'db', password: 'nested-db-pass-314' } } } } },
  { name: 'Cookie header', secrets: ['sessid=ab12cd34ef56gh78'], q: 'dashboard request',
    event: { message: 'dashboard request with Cookie: sessid=ab12cd34ef56gh78; theme=dark' } },
  { name: 'token in an error_type', secrets: ['xoxa-2-98765432109-abcdef12345'], q: 'TokenRejected',
    event: { status: 'error', error_type: 'TokenRejected xoxa-2-98765432109-abcdef12345', message: 'rejected' } },
  { name: 'secret in the stack trace', secrets: ['ghs_16C7e42F292c6912E7710c838347Ae178B4a'], q: 'installation token',
    event: { status: 'error', error_type: 'HttpError', message: 'installation token failed', stack: 'HttpError: 401 for ghs_16C7e42F292c6912E7710c838347Ae178B4a\n    at request (/app/gh.js:10:5)' } },
  // per-project rules (PUT /monitoring/projects/:id/settings)
  { name: 'project pattern: employee ids', secrets: ['EMP-480151'], q: 'badge lookup',
    event: { message: 'badge lookup for EMP-480151 failed' }, marker: '[REDACTED:employee_id]' },
  { name: 'project secret key in an attribute', secrets: ['pin-7391'], q: 'kiosk unlock',
    event: { message: 'kiosk unlock', attributes: { customer_pin: 'pin-7391' } } },
  { name: 'project secret key in text', secrets: ['5527-aa'], q: 'verify step',
    event: { message: 'verify step customer_pin=5527-aa mismatch' } },
];

let t: TestEngine;
let ids: string[] = [];

/** Every row of every event-store table that has a project_id column, for project p, as text. */
async function everythingStoredFor(p: string): Promise<{ table: string; text: string }[]> {
  const tables = await t.engine.events.query<{ name: string }>(
    "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View%'",
  );
  const out: { table: string; text: string }[] = [];
  for (const { name } of tables) {
    const cols = await t.engine.events.query<{ name: string }>('SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String}', { t: name });
    if (!cols.some((c) => c.name === 'project_id')) continue;
    expect(name).toMatch(/^\w+$/);
    const rows = await t.engine.events.query(`SELECT * FROM ${name} WHERE project_id = {p:String}`, { p });
    out.push({ table: name, text: rows.map((r) => JSON.stringify(r)).join('\n') });
  }
  return out;
}

beforeAll(async () => {
  t = await startEngine();
  const put = await call(t.url, 'PUT', `/monitoring/projects/${P}/settings`, { body: {
    flood_ceiling_per_minute: null,
    flood_sample_every: 100,
    redaction: { patterns: [{ name: 'employee_id', regex: 'EMP-[0-9]{6}' }], secret_keys: ['customer_pin'] },
  } });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  // posted the way engines post: some one by one, the rest as one NDJSON batch
  for (const s of SAMPLES.slice(0, 5)) {
    const r = await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: P, ...s.event } });
    expect(r.status, s.name).toBe(200);
    ids.push(r.body.ids[0]);
  }
  const nd = SAMPLES.slice(5).map((s) => JSON.stringify({ project_id: P, ...s.event })).join('\n');
  const r = await call(t.url, 'POST', '/monitoring/logs', { raw: nd, contentType: 'application/x-ndjson' });
  expect(r.status).toBe(200);
  expect(r.body.accepted, JSON.stringify(r.body.rejected)).toBe(SAMPLES.length - 5);
  ids = [...ids, ...r.body.ids];
  // the same project-specific text in a project without those rules stays as it is
  await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: P_OTHER, message: 'badge lookup for EMP-480152 failed', attributes: { customer_pin: 'pin-0000' } } });
  // the tables are read directly below: wait until the write-ahead log is loaded into them
  expect(await t.engine.writePath.visible(10_000)).toBe(true);
});
afterAll(async () => {
  await t.close();
});

describe('redaction at the storage level', () => {
  it(`covers at least 25 samples (${SAMPLES.length})`, () => {
    expect(SAMPLES.length).toBeGreaterThanOrEqual(25);
    expect(ids).toHaveLength(SAMPLES.length);
  });

  it('leaves no secret in any column of any table of the event store', async () => {
    const stored = await everythingStoredFor(P);
    const tables = stored.map((s) => s.table);
    expect(tables).toEqual(expect.arrayContaining(['events', 'error_rollup']));
    const events = stored.find((s) => s.table === 'events')!;
    // the samples, plus the audit record of the settings change
    expect(events.text.split('\n')).toHaveLength(SAMPLES.length + 1);
    const leaks: string[] = [];
    for (const s of SAMPLES) {
      for (const secret of s.secrets) {
        for (const { table, text } of stored) if (text.includes(secret)) leaks.push(`${s.name}: "${secret}" in ${table}`);
      }
    }
    expect(leaks).toEqual([]);
  });

  it('leaves no secret in the write-ahead log either (redaction runs before the event is logged)', () => {
    const wal = join(t.dataDir, 'wal');
    const bytes = readdirSync(wal).map((f) => readFileSync(join(wal, f)).toString('latin1')).join('');
    expect(bytes).toContain(P);
    const leaks = SAMPLES.flatMap((s) => s.secrets.filter((x) => bytes.includes(x)).map((x) => `${s.name}: ${x}`));
    expect(leaks).toEqual([]);
  });

  it('leaves no secret in the control store either', async () => {
    const bytes = await dumpControlStore(t.dataDir);
    const leaks = SAMPLES.flatMap((s) => s.secrets.filter((x) => bytes.includes(x)).map((x) => `${s.name}: ${x}`));
    expect(leaks).toEqual([]);
  });

  it('keeps every event findable by its other words, with a marker where the secret was', async () => {
    const missing: string[] = [];
    for (let i = 0; i < SAMPLES.length; i++) {
      const s = SAMPLES[i];
      const r = await call(t.url, 'GET', `/monitoring/logs?project_id=${P}&q=${encodeURIComponent(s.q)}&limit=100`);
      expect(r.status).toBe(200);
      const e = r.body.logs.find((l: any) => l.id === ids[i]);
      if (!e) {
        missing.push(s.name);
        continue;
      }
      const text = JSON.stringify(e);
      expect(text, s.name).toContain('[REDACTED:');
      if (s.marker) expect(text, s.name).toContain(s.marker);
      for (const secret of s.secrets) expect(text, s.name).not.toContain(secret);
    }
    expect(missing).toEqual([]);
  });

  it('finds the Vault event by "access failed", and groups both tokens\' failures as one error', async () => {
    const r = await call(t.url, 'GET', `/monitoring/logs?project_id=${P}&q=access%20failed&engine=vault`);
    expect(r.body.logs).toHaveLength(2);
    for (const l of r.body.logs) expect(l.message).toBe('access failed for token [REDACTED:slack_token]');
    expect(r.body.logs[0].fingerprint).toBeTruthy();
    expect(r.body.logs[0].fingerprint).toBe(r.body.logs[1].fingerprint);
    const g = await call(t.url, 'GET', `/monitoring/errors/${r.body.logs[0].fingerprint}?project_id=${P}`);
    expect(g.status).toBe(200);
    expect(g.body.count).toBe(2);
    expect(JSON.stringify(g.body)).not.toContain('xox');
  });

  it('never finds an event by its secret', async () => {
    for (const s of SAMPLES.slice(0, 10)) {
      const r = await call(t.url, 'GET', `/monitoring/logs?project_id=${P}&q=${encodeURIComponent(s.secrets[0])}`);
      expect(r.body.logs, s.name).toEqual([]);
    }
  });

  it('applies a project\'s own rules to that project only', async () => {
    const r = await call(t.url, 'GET', `/monitoring/logs?project_id=${P_OTHER}`);
    expect(r.body.logs).toHaveLength(1);
    expect(r.body.logs[0].message).toBe('badge lookup for EMP-480152 failed');
    expect(r.body.logs[0].attributes.customer_pin).toBe('pin-0000');
    // and the storage search above does see text that is stored (a control for the leak check)
    const stored = (await everythingStoredFor(P_OTHER)).map((x) => x.text).join('\n');
    expect(stored).toContain('pin-0000');
    expect(stored).toContain('EMP-480152');
  });
});
