// Forwarding, wired: as events become durable (fed from the write-ahead log), a project's error events become
// Sentry envelopes and its logs that match the Datadog filter become intake requests. Each payload is
// committed to the control store with its outbox row in one transaction, and the alert dispatcher
// sends it like any delivery: claimed under a lease, retried with backoff on 429/5xx/network errors
// (Retry-After a floor), failed for good on other 4xx, every attempt recorded.
import { createHash, randomUUID } from 'node:crypto';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { EventRow } from '../event.js';
import type { ObserveContext } from '../wal/observe.js';
import { isErrorLike } from '../event.js';
import type { EngineDeps } from '../engine-deps.js';
import type { Dispatcher } from '../alerts/dispatcher.js';
import type { AlertStore, Delivery } from '../alerts/store.js';
import type { MatchFilter } from '../alerts/rules.js';
import { matchesFilter } from '../query/match.js';
import { checkOutboundUrl, postBody, type DeliveryResult } from '../alerts/channels/index.js';
import { datadogFilter, parseDsn, type ForwardingConfig, type ParsedDsn } from './config.js';
import { sentryAuthHeader, sentryEnvelope } from './sentry.js';
import { datadogBodies } from './datadog.js';
import { targetEndpoint } from './targets.js';
import { channelTypeOf, ForwardingStore, type ForwardTarget, type Payload } from './store.js';

const gzipAsync = promisify(gzip);
/** Delivered payloads are kept this long (for the status counts), then purged. */
const KEEP_DELIVERED_MS = 3600_000;
/** Other engine nodes change configs too: the cache is re-read this often. */
const RELOAD_MS = 5000;

/**
 * Payload ids are derived from the events they carry, never random: after a crash the log's
 * observer feeds the same rows again (ObserveContext.replay), and the same id finds the payload
 * already in the outbox instead of enqueueing a second copy (Sentry's event_id is derived from our
 * event id too, see sentryEventId, so even a resend after a lost acknowledgement is deduplicated there).
 */
export function payloadId(target: ForwardTarget, project: string, eventIds: readonly string[]): string {
  const h = createHash('sha256').update(`${target}\0${project}`);
  for (const id of eventIds) h.update(`\0${id}`);
  return `fwd-${target}-${h.digest('hex').slice(0, 40)}`;
}

interface Compiled {
  config: ForwardingConfig;
  sentry?: ParsedDsn;
  datadogFilter?: MatchFilter;
}

export type ForwardingDeps = Pick<EngineDeps, 'config' | 'meta'> & { dispatcher: Dispatcher; alertStore: AlertStore };

export class ForwardingService {
  readonly store: ForwardingStore;
  private configs = new Map<string, Compiled>();
  private loadedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Enqueues run one after another, so the outbox sees payloads in write order. */
  private queue: Promise<unknown> = Promise.resolve();
  private log: (msg: string, extra?: Record<string, unknown>) => void = () => undefined;

  constructor(private readonly deps: ForwardingDeps) {
    this.store = new ForwardingStore(deps.meta);
    // registered at once, before the dispatcher starts: a forward_* delivery it claims without a
    // handler would be failed for good ("notification is gone") — every one pending at a restart
    this.deps.dispatcher.handle(channelTypeOf('sentry'), (d) => this.send(d));
    this.deps.dispatcher.handle(channelTypeOf('datadog'), (d) => this.send(d));
  }

  async init(log?: (msg: string, extra?: Record<string, unknown>) => void): Promise<void> {
    if (log) this.log = log;
    await this.reload();
    this.timer = setInterval(() => {
      void this.store.purgeDelivered(Date.now() - KEEP_DELIVERED_MS).catch(() => undefined);
    }, 60_000);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.queue.catch(() => undefined);
  }

  /**
   * Durable rows, fed from the write-ahead log in order; resolves once their payloads are in the
   * outbox, so the log's observer moves on only then.
   */
  observeRows(rows: readonly EventRow[], ctx: ObserveContext = { replay: false }): Promise<unknown> {
    this.queue = this.queue.then(() => this.onRows(rows, ctx.replay)).catch((err) => this.log('forwarding enqueue failed', { err: String(err) }));
    return this.queue;
  }

  /** Waits until everything written so far is in the outbox (tests, shutdown). */
  settled(): Promise<unknown> {
    return this.queue;
  }

  async reload(): Promise<void> {
    const next = new Map<string, Compiled>();
    for (const f of await this.store.all()) next.set(f.project_id, compile(f.config));
    this.configs = next;
    this.loadedAt = Date.now();
  }

  private async onRows(rows: readonly EventRow[], replay: boolean): Promise<void> {
    if (Date.now() - this.loadedAt > RELOAD_MS) await this.reload();
    if (this.configs.size === 0) return;
    const byProject = new Map<string, EventRow[]>();
    for (const r of rows) {
      if (!this.configs.has(r.project_id) || Number(r.sampled) === 1) continue; // flood-slimmed rows are counted, not forwarded
      let list = byProject.get(r.project_id);
      if (!list) byProject.set(r.project_id, (list = []));
      list.push(r);
    }
    const payloads: Payload[] = [];
    const now = Date.now();
    for (const [project, list] of byProject) {
      const c = this.configs.get(project)!;
      const { sentry, datadog } = c.config;
      if (sentry && sentry.enabled !== false && c.sentry) {
        for (const r of list) {
          if (!isErrorLike(r) || r.event_type === 'audit') continue;
          payloads.push({ id: payloadId('sentry', project, [r.id]), project_id: project, target: 'sentry', body: sentryEnvelope(r, sentry, sentry.dsn), events: 1, created_at: now });
        }
      }
      if (datadog && datadog.enabled !== false && c.datadogFilter) {
        const f = c.datadogFilter;
        let matching = list.filter((r) => r.event_type !== 'audit' && matchesFilter(f, r));
        if (replay && matching.length > 0) {
          // a replay may batch the rows differently than the first pass did: drop the events already
          // in a Datadog payload (one made after the earliest of these rows arrived)
          const since = Math.min(...matching.map((r) => Number(r.received_at)));
          const sent = await this.store.datadogEventIds(project, since);
          matching = matching.filter((r) => !sent.has(r.id));
        }
        for (const { body, entries, ids } of datadogBodies(matching, datadog)) {
          payloads.push({ id: payloadId('datadog', project, ids), project_id: project, target: 'datadog', body, events: entries, created_at: now });
        }
      }
    }
    if (payloads.length === 0) return;
    await this.deps.meta.tx(async (db) => {
      for (const p of payloads) {
        // already there: this payload was enqueued before a crash; its delivery is in the outbox
        if (await this.store.insertPayload(db, p)) await this.deps.alertStore.insertDelivery(db, outboxRow(p, now));
      }
    });
    this.deps.dispatcher.kick();
  }

  /** The dispatcher's handler for forward_* rows: one attempt. */
  private async send(d: Delivery): Promise<DeliveryResult | { fail: string }> {
    const p = await this.store.getPayload(d.notification_id);
    if (!p) return { fail: 'payload is gone' };
    const stored = await this.store.get(p.project_id);
    const cfg = stored?.config;
    const target = targetEndpoint(cfg, p.target);
    if (!target) return { fail: `forwarding to ${p.target === 'sentry' ? 'Sentry' : 'Datadog'} is no longer configured for this project` };
    // checked again (a name may resolve elsewhere now, or the target predates the save-time check),
    // and the connection goes to the address checked here, not to a second resolution
    const g = await checkOutboundUrl(target.url, this.allowPrivateTargets);
    if (!g.ok) return { ok: false, retryable: g.transient === true, error: `target refused: ${g.reason}` };
    const timeoutMs = this.deps.config.alertSendTimeoutMs;
    if (p.target === 'sentry') {
      return postBody(target.url, p.body, 'application/x-sentry-envelope', { timeoutMs, pinned: g.pinned, headers: sentryAuthHeader(target.dsn!) });
    }
    const headers = { 'dd-api-key': cfg!.datadog!.api_key, 'content-encoding': 'gzip' };
    return postBody(target.url, await gzipAsync(p.body), 'application/json', { timeoutMs, pinned: g.pinned, headers });
  }

  /** The alert channels' opt-in (MONITORING_ALLOW_PRIVATE_WEBHOOKS) covers forwarding targets too. */
  get allowPrivateTargets(): boolean {
    return this.deps.config.allowPrivateWebhooks;
  }
}

function compile(config: ForwardingConfig): Compiled {
  return {
    config,
    sentry: config.sentry ? parseDsn(config.sentry.dsn) : undefined,
    datadogFilter: config.datadog ? datadogFilter(config.datadog) : undefined,
  };
}

function outboxRow(p: Payload, now: number): Delivery {
  const target: ForwardTarget = p.target;
  return {
    id: randomUUID(), notification_id: p.id, channel_id: `forward:${p.project_id}:${target}`, channel_name: `forward to ${target}`,
    channel_type: channelTypeOf(target), status: 'pending', attempts: 0, next_attempt_at: now, lease_until: null,
    last_status: null, last_error: null, created_at: now, updated_at: now, delivered_at: null,
  };
}
