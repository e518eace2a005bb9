// Control changes made on one engine node (a key revoked, a rule edited, a silence, a group's state,
// project settings) take effect on every node within a second: the node that wrote the change
// publishes its topic, every node (itself included) drops or reloads what it keeps in memory.
// Embedded (SQLite, one process): an in-process emitter. PostgreSQL: NOTIFY on one channel, LISTEN
// on a connection of its own that reconnects by itself (a PostgreSQL restart); after a reconnect
// every topic fires once, since notifications sent while it was away are lost.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';

export const CONTROL_TOPICS = ['keys', 'rules', 'silences', 'groups', 'settings'] as const;
export type ControlTopic = (typeof CONTROL_TOPICS)[number];

export interface ControlBus {
  /** Tells every node (this one included) that `topic` changed; resolves once it is sent. */
  publish(topic: ControlTopic): Promise<void>;
  /** `fn(fromHere)`: fromHere is true when this node published it (and has applied it already). */
  on(topic: ControlTopic, fn: (fromHere: boolean) => void): void;
  close(): Promise<void>;
}

const CHANNEL = 'puraify_control';

/** One process: listeners run at once. */
export class LocalBus implements ControlBus {
  protected readonly emitter = new EventEmitter();
  constructor() {
    this.emitter.setMaxListeners(0);
  }
  async publish(topic: ControlTopic): Promise<void> {
    this.emit(topic, true);
  }
  on(topic: ControlTopic, fn: (fromHere: boolean) => void): void {
    this.emitter.on(topic, fn);
  }
  protected emit(topic: string, fromHere: boolean): void {
    for (const fn of this.emitter.listeners(topic)) {
      try {
        (fn as (fromHere: boolean) => void)(fromHere);
      } catch {
        // a listener's failure is its own
      }
    }
  }
  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

/** PostgreSQL LISTEN/NOTIFY. */
export class PgBus extends LocalBus {
  private client: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly publisher: pg.Pool;
  /** Sent with every notification, so this node knows its own. */
  private readonly origin = randomUUID();
  /** Connected and listening (for /ready and tests). */
  listening = false;

  private constructor(private readonly url: string, private readonly log: (msg: string, e?: unknown) => void) {
    super();
    this.publisher = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 });
    this.publisher.on('error', () => undefined);
  }

  static async start(url: string, log: (msg: string, e?: unknown) => void = () => undefined): Promise<PgBus> {
    const bus = new PgBus(url, log);
    await bus.connect();
    return bus;
  }

  override async publish(topic: ControlTopic): Promise<void> {
    await this.publisher.query('SELECT pg_notify($1, $2)', [CHANNEL, `${topic} ${this.origin}`]);
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000, keepAlive: true });
    c.on('notification', (m) => {
      if (m.channel !== CHANNEL || !m.payload) return;
      const [topic, origin] = m.payload.split(' ');
      this.emit(topic, origin === this.origin);
    });
    c.on('error', (e) => this.lost(c, e));
    c.on('end', () => this.lost(c));
    await c.connect();
    await c.query(`LISTEN ${CHANNEL}`);
    this.client = c;
    this.listening = true;
  }

  private lost(c: pg.Client, e?: unknown): void {
    if (this.client !== c) return;
    this.client = undefined;
    this.listening = false;
    c.end().catch(() => undefined);
    if (this.closed) return;
    this.log('control bus: lost the PostgreSQL connection; reconnecting', e);
    this.schedule(100);
  }

  private schedule(ms: number): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.connect().then(
        // what changed while away is unknown: every cache reloads
        () => {
          this.log('control bus: listening again');
          for (const t of CONTROL_TOPICS) this.emit(t, false);
        },
        () => this.schedule(Math.min(ms * 2, 2000)),
      );
    }, ms);
    this.retry.unref();
  }

  override async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
    await this.publisher.end().catch(() => undefined);
    await super.close();
  }
}
