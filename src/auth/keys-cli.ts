// `puraify-monitoring keys create|list|revoke`: works directly on the data dir's control store, so
// the first keys can be made before the engine runs (or while it runs: SQLite WAL, busy timeout).
// The same checks as the HTTP API, minus the caller: whoever can open the data dir is the operator.
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { openControlStore } from '../storage/control-store.js';
import { KeyStore, type ApiKey } from './key-store.js';
import { SCOPES, type Scope } from './principal.js';
import { SETTINGS } from '../config.js';

export class CliError extends Error {}

export interface CreateOptions {
  name: string;
  scopes: string;
  project?: string;
  allProjects?: boolean;
  expiresAt?: string;
  requestsPerMinute?: string;
  eventsPerMinute?: string;
}

const PROJECT = /^[A-Za-z0-9_.:-]{1,128}$/;

function perMinute(raw: string | undefined, flag: string): number | null {
  if (raw === undefined) return null;
  if (!/^\d{1,10}$/.test(raw) || Number(raw) > 1_000_000_000) throw new CliError(`--${flag} must be a whole number from 0 to 1000000000 (0 = unlimited)`);
  return Number(raw);
}

/** Opens the control store (<dataDir>/control.sqlite, or PostgreSQL when databaseUrl is set), runs fn, closes. */
export async function withKeyStore<T>(dataDir: string, fn: (keys: KeyStore) => Promise<T>, databaseUrl = process.env[SETTINGS.databaseUrl.env]): Promise<T> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const db = await openControlStore({ dataDir: dir, databaseUrl: databaseUrl || undefined });
  try {
    // the admin token is not needed to manage keys; a random one keeps it from matching anything
    return await fn(new KeyStore(db, randomBytes(32).toString('hex'), 0));
  } finally {
    await db.close();
  }
}

export async function createKey(keys: KeyStore, o: CreateOptions, now = Date.now()): Promise<{ key: ApiKey; token: string }> {
  const name = (o.name ?? '').trim();
  if (!name || name.length > 100) throw new CliError('--name must be 1..100 characters');
  const scopes = String(o.scopes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (scopes.length === 0) throw new CliError(`--scopes must list one or more of ${SCOPES.join(', ')}`);
  for (const s of scopes) if (!SCOPES.includes(s as Scope)) throw new CliError(`--scopes: "${s}" is not one of ${SCOPES.join(', ')}`);
  if (o.project !== undefined && o.allProjects) throw new CliError('give either --project or --all-projects');
  if (o.project === undefined && !o.allProjects) throw new CliError('--project <id> is required (or --all-projects for an admin key)');
  if (o.project !== undefined && !PROJECT.test(o.project)) throw new CliError('--project must match [A-Za-z0-9_.:-]{1,128}');
  if (o.allProjects && !scopes.includes('admin')) throw new CliError('--all-projects is allowed only for keys with the admin scope');
  let expires: number | null = null;
  if (o.expiresAt !== undefined) {
    const t = /^\d{4}-\d{2}-\d{2}/.test(o.expiresAt) ? Date.parse(o.expiresAt) : NaN;
    if (Number.isNaN(t)) throw new CliError('--expires-at must be an ISO 8601 date, e.g. 2026-01-31T00:00:00Z');
    if (t <= now) throw new CliError('--expires-at must be in the future');
    expires = t;
  }
  return keys.create({
    name, scopes: [...new Set(scopes)] as Scope[], project_id: o.project ?? null, expires_at: expires,
    requests_per_minute: perMinute(o.requestsPerMinute, 'requests-per-minute'),
    events_per_minute: perMinute(o.eventsPerMinute, 'events-per-minute'),
  });
}

export function formatKeys(list: readonly ApiKey[], now = Date.now()): string {
  const rows = list.map((k) => {
    const state = k.revoked_at ? 'revoked' : k.expires_at && Date.parse(k.expires_at) <= now ? 'expired' : 'active';
    return [k.id, k.name, k.prefix + '…', k.scopes.join(','), k.project_id ?? '*', state, k.expires_at ?? '-', k.last_used_at ?? '-'];
  });
  const head = ['ID', 'NAME', 'PREFIX', 'SCOPES', 'PROJECT', 'STATE', 'EXPIRES', 'LAST USED'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

function dataDirOf(opts: { dataDir?: string }): string {
  return opts.dataDir ?? process.env[SETTINGS.dataDir.env] ?? SETTINGS.dataDir.default;
}

function fail(e: unknown): never {
  if (e instanceof CliError) {
    console.error(`puraify-monitoring keys: ${e.message}`);
    process.exit(2);
  }
  throw e;
}

/** Adds `keys create|list|revoke` to the program. */
export function addKeysCommand(program: Command): void {
  const keys = program.command('keys').description('manage API keys in the data dir\'s control store');
  const dataDirOpt = ['--data-dir <dir>', `the engine's data dir [${SETTINGS.dataDir.env}, default ${SETTINGS.dataDir.default}]`] as const;

  keys.command('create').description('create a key and print its token (shown once)')
    .requiredOption('--name <name>', 'what the key is for')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(',')}`)
    .option('--project <id>', 'the project the key is bound to')
    .option('--all-projects', 'bind the key to every project (admin keys only)')
    .option('--expires-at <iso>', 'when the key stops working (ISO 8601)')
    .option('--requests-per-minute <n>', 'request budget (0 = unlimited; default: the engine default)')
    .option('--events-per-minute <n>', 'event budget (0 = unlimited; default: the engine default)')
    .option('--json', 'print the key as JSON')
    .option(...dataDirOpt)
    .action(async (opts) => {
      const { key, token } = await withKeyStore(dataDirOf(opts), (k) => createKey(k, opts)).catch(fail);
      if (opts.json) {
        console.log(JSON.stringify({ ...key, token }));
        return;
      }
      console.log(`created key ${key.id} "${key.name}" (${key.scopes.join(',')}, project ${key.project_id ?? '*'})`);
      console.log(`token (shown once; store it now):\n  ${token}`);
    });

  keys.command('list').description('list keys (never their tokens)')
    .option('--project <id>', 'only this project\'s keys')
    .option('--json', 'print JSON')
    .option(...dataDirOpt)
    .action(async (opts) => {
      if (!existsSync(resolve(dataDirOf(opts)))) fail(new CliError(`no data dir at ${resolve(dataDirOf(opts))}`));
      const list = await withKeyStore(dataDirOf(opts), (k) => k.list(opts.project ? [opts.project] : undefined));
      console.log(opts.json ? JSON.stringify(list) : list.length ? formatKeys(list) : 'no keys');
    });

  keys.command('revoke').description('revoke a key (immediate effect on new connections; within 1 s on running engines, open streams included)')
    .argument('<id>', 'the key id')
    .option(...dataDirOpt)
    .action(async (id: string, opts) => {
      const ok = await withKeyStore(dataDirOf(opts), async (k) => {
        const key = await k.get(id);
        if (!key) throw new CliError(`no key ${id}`);
        return k.revoke(id);
      }).catch(fail);
      console.log(ok ? `revoked key ${id}` : `key ${id} was already revoked`);
    });
}
