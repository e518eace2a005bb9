// Control changes made on one engine node (a key revoked, a rule edited, a silence, a group's state,
// project settings) take effect on every node within a second: the node that wrote the change
// publishes its topic, every node (itself included) drops or reloads what it keeps in memory.
// Embedded (SQLite, one process): an in-process emitter. PostgreSQL: NOTIFY on one channel, LISTEN
// on a connection of its own that reconnects by itself (a PostgreSQL restart); after a reconnect
// every topic fires once, since notifications sent while it was away are lost.
// Besides the change topics, short messages (an in-app notification's id) go to every node the same
// way; one lost while a node's listener was away stays lost (what it names is stored all the same).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';

export const CONTROL_TOPICS = ['keys', 'rules', 'silences', 'groups', 'settings'] as const;
export type ControlTopic = (typeof CONTROL_TOPICS)[number];
/** `ui_notification`: the id of an in-app notification just stored (open notification streams show it). */
export const MESSAGE_TOPICS = ['ui_notification'] as const;
export type MessageTopic = (typeof MESSAGE_TOPICS)[number];
/** PostgreSQL's NOTIFY payload limit is 8000 bytes; messages are ids, far below. */
const MAX_MESSAGE_BYTES = 4000;

export interface ControlBus {
  /** Tells every node (this one included) that `topic` changed; resolves once it is sent. */
  publish(topic: ControlTopic): Promise<void>;
  /** `fn(fromHere)`: fromHere is true when this node published it (and has applied it already). */
  on(topic: ControlTopic, fn: (fromHere: boolean) => void): void;
  /** Sends `data` (short text, no line breaks) to every node, this one included. */
  send(topic: MessageTopic, data: string): Promise<void>;
  onMessage(topic: MessageTopic, fn: (data: string, fromHere: boolean) => void): void;
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
  async send(topic: MessageTopic, data: string): Promise<void> {
    checkMessage(data);
    this.emitMessage(topic, data, true);
  }
  onMessage(topic: MessageTopic, fn: (data: string, fromHere: boolean) => void): void {
    this.emitter.on(`message:${topic}`, fn);
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
  protected emitMessage(topic: string, data: string, fromHere: boolean): void {
    for (const fn of this.emitter.listeners(`message:${topic}`)) {
      try {
        (fn as (data: string, fromHere: boolean) => void)(data, fromHere);
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

  override async send(topic: MessageTopic, data: string): Promise<void> {
    checkMessage(data);
    await this.publisher.query('SELECT pg_notify($1, $2)', [CHANNEL, `${topic} ${this.origin} ${data}`]);
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000, keepAlive: true });
    c.on('notification', (m) => {
      if (m.channel !== CHANNEL || !m.payload) return;
      // "topic origin" for a change, "topic origin data" for a message
      const p = m.payload;
      const i = p.indexOf(' ');
      const j = p.indexOf(' ', i + 1);
      const topic = p.slice(0, i);
      if (j < 0) this.emit(topic, p.slice(i + 1) === this.origin);
      else this.emitMessage(topic, p.slice(j + 1), p.slice(i + 1, j) === this.origin);
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

function checkMessage(data: string): void {
  if (/[\r\n]/.test(data) || Buffer.byteLength(data) > MAX_MESSAGE_BYTES) throw new Error('a control bus message is one short line');
}
