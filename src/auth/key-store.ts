// Project keys: stored as SHA-256 hashes (a key is 32 random bytes, so a slow hash adds nothing),
// shown once at creation, revocable with immediate effect, optionally expiring.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SqlDb } from '../storage/sql-db.js';
import { SCOPES, type Principal, type Scope } from './principal.js';
import { newEventId } from '../ids.js';
import type { ControlBus } from '../storage/control-bus.js';

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  project_id: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  requests_per_minute: number | null;
  events_per_minute: number | null;
}

export interface NewKey {
  name: string;
  scopes: Scope[];
  /** null = every project (only for keys with the admin scope). */
  project_id: string | null;
  expires_at?: number | null;
  requests_per_minute?: number | null;
  events_per_minute?: number | null;
}

interface KeyRow {
  id: string; name: string; hash: string; prefix: string; scopes: string; project_id: string | null;
  created_at: number; expires_at: number | null; revoked_at: number | null; last_used_at: number | null;
  requests_per_minute: number | null; events_per_minute: number | null;
}

const iso = (ms: number | null): string | null => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

function toApiKey(r: KeyRow): ApiKey {
  return {
    id: r.id, name: r.name, prefix: r.prefix, scopes: r.scopes.split(',') as Scope[], project_id: r.project_id,
    created_at: iso(r.created_at)!, expires_at: iso(r.expires_at), revoked_at: iso(r.revoked_at),
    last_used_at: iso(r.last_used_at), requests_per_minute: r.requests_per_minute, events_per_minute: r.events_per_minute,
  };
}

/** A DSN public key (see dsnKey); project keys start with pm_ and never look like this. */
const DSN_KEY = /^[0-9a-f]{32}$/;

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

export class KeyStore {
  /** Recently seen tokens → principal, so a hot ingest path does not hit the store per request. */
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();
  private readonly adminHash: Buffer;
  private lastUsedWrites = new Map<string, number>();

  private bus: ControlBus | undefined;

  // short enough that a key revoked by another process (the CLI, another node) is refused within 1 s
  // even without a control bus; with one, a revocation also clears the cache at once
  constructor(private readonly db: SqlDb, adminToken: string, private readonly cacheMs = 400) {
    this.adminHash = Buffer.from(hashToken(adminToken), 'hex');
  }

  /** Key changes made on any node (revocation, limits) empty this node's cache at once. */
  listen(bus: ControlBus): void {
    this.bus = bus;
    bus.on('keys', () => this.cache.clear());
  }

  async create(k: NewKey): Promise<{ key: ApiKey; token: string }> {
    for (const s of k.scopes) if (!SCOPES.includes(s)) throw new Error(`unknown scope ${s}`);
    const token = `pm_${randomBytes(32).toString('base64url')}`;
    const id = newEventId();
    const now = Date.now();
    await this.db.run(
      `INSERT INTO api_keys (id, name, hash, prefix, scopes, project_id, created_at, expires_at, requests_per_minute, events_per_minute)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [id, k.name, hashToken(token), token.slice(0, 10), [...new Set(k.scopes)].join(','), k.project_id, now,
        k.expires_at ?? null, k.requests_per_minute ?? null, k.events_per_minute ?? null],
    );
    const key = await this.get(id);
    return { key: key!, token };
  }

  async get(id: string): Promise<ApiKey | undefined> {
    const rows = await this.db.all<KeyRow>('SELECT * FROM api_keys WHERE id = ?', [id]);
    return rows[0] ? toApiKey(rows[0]) : undefined;
  }

  async list(project?: readonly string[]): Promise<ApiKey[]> {
    const rows = await this.db.all<KeyRow>('SELECT * FROM api_keys ORDER BY created_at');
    return rows.map(toApiKey).filter((k) => !project || (k.project_id !== null && project.includes(k.project_id)));
  }

  async revoke(id: string): Promise<boolean> {
    const r = await this.db.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [Date.now(), id]);
    this.cache.clear(); // immediate effect
    await this.bus?.publish('keys');
    return r.changes > 0;
  }

  async update(id: string, patch: { requests_per_minute?: number | null; events_per_minute?: number | null; name?: string }): Promise<ApiKey | undefined> {
    const k = await this.get(id);
    if (!k) return undefined;
    await this.db.run('UPDATE api_keys SET name = ?, requests_per_minute = ?, events_per_minute = ? WHERE id = ?', [
      patch.name ?? k.name,
      patch.requests_per_minute === undefined ? k.requests_per_minute : patch.requests_per_minute,
      patch.events_per_minute === undefined ? k.events_per_minute : patch.events_per_minute,
      id,
    ]);
    this.cache.clear();
    await this.bus?.publish('keys');
    return this.get(id);
  }

  /**
   * The DSN public key of a key for one project, made on first use: 32 hex characters (a Sentry DSN
   * key must be \w+, and ours contain '-'). It authenticates ingest for that project only, and only
   * while its key is valid.
   */
  async dsnKey(keyId: string, project: string): Promise<string> {
    const find = async () => (await this.db.all<{ public_key: string }>(
      'SELECT public_key FROM dsn_keys WHERE key_id = ? AND project_id = ?', [keyId, project]))[0]?.public_key;
    const existing = await find();
    if (existing) return existing;
    const publicKey = randomBytes(16).toString('hex');
    try {
      await this.db.run('INSERT INTO dsn_keys (public_key, key_id, project_id, created_at) VALUES (?, ?, ?, ?)', [publicKey, keyId, project, Date.now()]);
    } catch (e) {
      const raced = await find(); // another request made it first
      if (raced) return raced;
      throw e;
    }
    return publicKey;
  }

  /** The principal for a bearer token, or null when the token is unknown, revoked or expired. */
  async authenticate(token: string): Promise<Principal | null> {
    const hash = hashToken(token);
    const hb = Buffer.from(hash, 'hex');
    if (timingSafeEqual(hb, this.adminHash)) {
      return { name: 'admin-token', scopes: new Set(SCOPES), projects: '*' };
    }
    if (DSN_KEY.test(token)) return this.authenticateDsn(token);
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.until > now) {
      if (cached.principal?.keyId) this.touch(cached.principal.keyId, now);
      return cached.principal;
    }
    const rows = await this.db.all<KeyRow>('SELECT * FROM api_keys WHERE hash = ?', [hash]);
    const r = rows[0];
    let principal: Principal | null = null;
    if (r && r.revoked_at === null && (r.expires_at === null || Number(r.expires_at) > now)) {
      principal = {
        name: `key:${r.name}`,
        keyId: r.id,
        scopes: new Set(r.scopes.split(',') as Scope[]),
        projects: r.project_id === null ? '*' : new Set([r.project_id]),
        requestsPerMinute: r.requests_per_minute ?? undefined,
        eventsPerMinute: r.events_per_minute ?? undefined,
      };
      this.touch(r.id, now);
    }
    const until = r?.expires_at ? Math.min(now + this.cacheMs, Number(r.expires_at)) : now + this.cacheMs;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { principal, until });
    return principal;
  }

  private async authenticateDsn(publicKey: string): Promise<Principal | null> {
    const now = Date.now();
    const cacheKey = `dsn:${publicKey}`;
    const cached = this.cache.get(cacheKey);
    if (cached && cached.until > now) {
      if (cached.principal?.keyId) this.touch(cached.principal.keyId, now);
      return cached.principal;
    }
    const rows = await this.db.all<KeyRow & { dsn_project: string }>(
      'SELECT k.*, d.project_id AS dsn_project FROM dsn_keys d JOIN api_keys k ON k.id = d.key_id WHERE d.public_key = ?', [publicKey]);
    const r = rows[0];
    let principal: Principal | null = null;
    const scopes = r ? r.scopes.split(',') : [];
    if (r && r.revoked_at === null && (r.expires_at === null || Number(r.expires_at) > now) && (scopes.includes('ingest') || scopes.includes('admin'))) {
      principal = {
        name: `key:${r.name} (dsn)`,
        keyId: r.id,
        scopes: new Set<Scope>(['ingest']),
        projects: new Set([r.dsn_project]),
        requestsPerMinute: r.requests_per_minute ?? undefined,
        eventsPerMinute: r.events_per_minute ?? undefined,
      };
      this.touch(r.id, now);
    }
    const until = r?.expires_at ? Math.min(now + this.cacheMs, Number(r.expires_at)) : now + this.cacheMs;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(cacheKey, { principal, until });
    return principal;
  }

  /** last_used_at, written at most every few seconds per key. */
  private touch(id: string, now: number): void {
    const last = this.lastUsedWrites.get(id) ?? 0;
    if (now - last < 5000) return;
    this.lastUsedWrites.set(id, now);
    void this.db.run('UPDATE api_keys SET last_used_at = ? WHERE id = ?', [now, id]).catch(() => undefined);
  }
}
