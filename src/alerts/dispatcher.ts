// The outbox worker. Notifications and their deliveries are committed to the control store before
// anything is sent (service.ts); this worker claims due deliveries, sends each through the channel
// senders, and records every attempt: delivered; retried later with exponential backoff + jitter
// (network errors, timeouts, 5xx, 429 — Retry-After is a floor); or failed for good (other 4xx,
// invalid config, too many attempts) with the reason. A claim is a lease: a delivery whose worker
// died mid-attempt is taken again when the lease expires, or at once when its node starts again
// (leases name their node: see AlertService.init). At a stop, what was claimed and not yet attempted
// goes back at once.
// Every payload carries the notification's stable id, so a receiver can drop the rare duplicate
// of an attempt that succeeded just before a crash. Other outbox users (forwarding) register a
// handler for their channel_type: the same claims, leases, retries and records apply to them.
import type { AlertStore, Delivery } from './store.js';
import type { DeliveryResult, Senders, SenderChannelType } from './channels/index.js';
import { retryDelayMs } from './evaluate.js';

export interface DispatcherOptions {
  retryBaseMs: number;
  maxAttempts: number;
  sendTimeoutMs: number;
  /** Longest the worker sleeps before looking for due deliveries again (other nodes add rows too). */
  pollMs: number;
  /** Deliveries sent at once. */
  concurrency?: number;
  /** This node's lasting name: the leases it takes carry it. */
  leaseOwner: string;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

/** Sends one outbox row of a registered channel_type; `fail` for a permanent failure before any attempt. */
export type DeliveryHandler = (d: Delivery) => Promise<DeliveryResult | { fail: string }>;

export class Dispatcher {
  private readonly handlers = new Map<string, DeliveryHandler>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = true;
  private readonly inFlight = new Map<string, Promise<void>>();
  readonly stats = { attempts: 0, delivered: 0, retried: 0, failed: 0 };

  constructor(private readonly store: AlertStore, private readonly senders: Senders, private readonly opts: DispatcherOptions) {}

  start(): void {
    this.stopped = false;
    this.kick();
  }

  /** Outbox rows of this channel_type are sent by `handler` instead of the alert senders. */
  handle(channelType: `forward_${string}`, handler: DeliveryHandler): void {
    this.handlers.set(channelType, handler);
  }

  /** Look for due deliveries now (a notification was just queued). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  /**
   * Makes the first attempt of these deliveries now and resolves when each has had one attempt
   * (or is being attempted by the loop, which it then waits for). Each is claimed first, as the loop
   * claims: on a cluster another node's loop may have taken it meanwhile, and then that node sends it.
   */
  async attemptNow(ids: readonly string[]): Promise<void> {
    if (this.stopped) return;
    const mine = new Set(await this.store.claimIds(ids, Date.now(), this.leaseMs(), this.opts.leaseOwner));
    await Promise.all(ids.map((id) => (mine.has(id) ? this.attempt(id) : this.inFlight.get(id))));
  }

  /** A lease outlives its attempt's timeout, so no other worker takes the delivery while it runs. */
  private leaseMs(): number {
    return this.opts.sendTimeoutMs * 2 + 5000;
  }

  async stop(graceMs = 2000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const pending = [...this.inFlight.values()];
    if (pending.length) await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, graceMs).unref())]);
    // claimed and never attempted: free for any node now; one still sending keeps its lease
    await this.store.releaseLeasesOf(this.opts.leaseOwner, [...this.inFlight.keys()])
      .catch((e) => this.opts.log?.('alert dispatcher: leases not released at stop (they expire)', { err: String((e as Error)?.message ?? e) }));
    this.senders.close();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, Math.max(0, ms));
    this.timer.unref?.();
  }

  private async run(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    let next = this.opts.pollMs;
    try {
      const now = Date.now();
      await this.store.releaseExpiredLeases(now);
      const limit = (this.opts.concurrency ?? 8) * 4;
      const due = await this.store.claimDue(now, limit, this.leaseMs(), this.opts.leaseOwner);
      await mapLimit(due, this.opts.concurrency ?? 8, (id) => this.attempt(id));
      if (due.length >= limit) next = 0;
      else {
        const at = await this.store.nextDueAt();
        if (at !== null) next = Math.min(next, Math.max(0, at - Date.now()));
      }
    } catch (e) {
      if (!this.stopped) this.opts.log?.('alert dispatcher pass failed', { err: String((e as Error)?.message ?? e) });
    } finally {
      this.running = false;
    }
    if (this.again) {
      this.again = false;
      next = 0;
    }
    this.schedule(next);
  }

  private attempt(id: string): Promise<void> {
    const existing = this.inFlight.get(id);
    if (existing) return existing;
    const p = this.sendClaimed(id)
      .catch((e) => {
        if (!this.stopped) this.opts.log?.('alert delivery attempt failed', { delivery: id, err: String((e as Error)?.message ?? e) });
      })
      .finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, p);
    return p;
  }

  /** A delivery this worker claimed; left to its lease (taken again when it expires) when stopping. */
  private async sendClaimed(id: string): Promise<void> {
    if (this.stopped) return;
    const d = await this.store.getDelivery(id);
    if (!d) return;
    await this.send(d);
  }

  private async send(d: Delivery): Promise<void> {
    const attempts = d.attempts + 1;
    const fail = async (error: string, status: number | null = null) => {
      this.stats.failed++;
      await this.store.recordAttempt(d.id, { status: 'failed', attempts, next_attempt_at: Date.now(), last_status: status, last_error: error, now: Date.now() });
    };
    let res: DeliveryResult;
    const handler = this.handlers.get(d.channel_type);
    if (handler) {
      this.stats.attempts++;
      const out = await handler(d);
      if ('fail' in out) return fail(out.fail);
      res = out;
    } else {
      const notification = await this.store.getNotification(d.notification_id);
      const channel = await this.store.getChannel(d.channel_id);
      if (!notification) return fail('notification is gone');
      if (!channel) return fail('channel was deleted');
      if (channel.type === 'ui') return fail('ui channels are delivered when the notification is recorded');
      this.stats.attempts++;
      res = await this.senders.send(channel.type as SenderChannelType, channel.config, notification.payload);
    }
    const now = Date.now();
    if (res.ok) {
      this.stats.delivered++;
      await this.store.recordAttempt(d.id, { status: 'delivered', attempts, next_attempt_at: now, last_status: res.status ?? null, last_error: null, now });
      return;
    }
    if (!res.retryable) return fail(res.error, res.status ?? null);
    if (attempts >= this.opts.maxAttempts) return fail(`gave up after ${attempts} attempts: ${res.error}`, res.status ?? null);
    this.stats.retried++;
    const delay = retryDelayMs(attempts, this.opts.retryBaseMs, res.retryAfterMs);
    await this.store.recordAttempt(d.id, {
      status: 'pending', attempts, next_attempt_at: now + delay, last_status: res.status ?? null, last_error: res.error, now,
    });
    this.kick();
  }
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) {
      const item = items[i++];
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
