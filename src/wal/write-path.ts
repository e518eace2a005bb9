// The write path, assembled: ingest → log (answered once durable) → loader → storage, and
// log → observers → alerts. Owns the checkpoint, the read-your-writes barrier for queries, the ids
// known at answer time and the bounded shutdown.
import { mkdirSync } from 'node:fs';
import type { EventRow } from '../event.js';
import { Loader, type WriterStore } from './loader.js';
import { claimantOf, nodeIdentity } from './claimant.js';
import { WriteAheadLog, type AppendedListener } from './log.js';
import { RecentKeys } from './recent-keys.js';
import { ObserverRunner, type AlertRouter, type Observer } from './observe.js';
import { StoredIds, type IdSource } from './stored-ids.js';
import { comparePos, type Pos } from './record.js';
import type { AcceptOptions } from '../collector/ingest.js';

export interface WritePathOptions {
  dir: string;
  maxBytes: number;
  maxWaitingBytes: number;
  blockRows: number;
  intervalMs: number;
  insertTimeoutMs: number;
  segmentBytes?: number;
  memoryBytes?: number;
  log: (level: 'warn' | 'error' | 'info', obj: object, msg: string) => void;
  /** On a cluster: the shared id registry (src/storage/id-claims.ts). Absent on one node. */
  idRegistry?: IdRegistry;
  /**
   * Storage only this engine writes to (embedded chDB): the loader keeps an in-memory filter of the
   * stored ids, filled from this at start, and looks in storage only for ids it may hold
   * (stored-ids.ts). Ignored with `idRegistry` (other nodes insert into the same tables).
   */
  idSource?: IdSource;
}

type ClaimList = { row: { project_id: string; id: string }; claimant: string }[];
export interface IdRegistry {
  /** The loader's claims, one block at a time. */
  claim(claims: ClaimList): Promise<Set<string>>;
  /** The answers' claims, batched across concurrent requests. */
  claimBatched(claims: ClaimList): Promise<Set<string>>;
}

export interface Accepted {
  /** Events of this request whose id was already acknowledged (known at answer time; see README). */
  duplicates: number;
}

/** Client-supplied ids recently made durable, so an immediate resend is answered as a duplicate. */
const RECENT_IDS = 100_000;
const CHECKPOINT_EVERY_MS = 100;
/**
 * The answer's claim is best effort (the loader's is the one that decides): a registry slower than
 * this, or one that failed within the last REGISTRY_PAUSE_MS, is not waited for.
 */
const ANSWER_CLAIM_MS = 1000;
const REGISTRY_PAUSE_MS = 5000;
/**
 * How often the log is looked at for a consumed last segment to let go of: when nothing was appended
 * since the last look, or the segment holds ROLL_BYTES already, it is replaced by an empty one (a
 * segment is otherwise deleted only once full, up to 64 MB of loaded records kept for nothing).
 */
const ROLL_CHECK_MS = 1000;
const ROLL_BYTES = 4 << 20;

export class WritePath {
  private readonly recent = new RecentKeys(RECENT_IDS);
  private checkpointTimer: NodeJS.Timeout | undefined;
  private rollTimer: NodeJS.Timeout | undefined;
  private lastEnd = '';
  private checkpointFailures = 0;
  private registryDownUntil = 0;
  private filling: Promise<void> | undefined;
  /**
   * Read-your-writes per writer: the log end of each writer's last acknowledged record not yet
   * known to be loaded. A writer's query waits for its own writes only, so steady ingest by others
   * does not make every read wait for the loader's next block.
   */
  private readonly unloadedEnd = new Map<string, Pos>();
  readonly stats = { answerDuplicates: 0, answerClaimFailures: 0, rolls: 0, releasedAtStop: 0 };

  private constructor(
    readonly log: WriteAheadLog,
    readonly loader: Loader,
    readonly observers: ObserverRunner,
    private readonly opts: WritePathOptions,
    /** This node's lasting name (claimant.ts): its claims in a cluster's id registry, its outbox leases. */
    readonly node: string,
    /** The loader's filter of stored ids, when storage is this engine's alone. */
    readonly storedIds?: StoredIds,
  ) {}

  static async open(store: WriterStore, opts: WritePathOptions): Promise<WritePath> {
    mkdirSync(opts.dir, { recursive: true });
    const log = await WriteAheadLog.open({ dir: opts.dir, maxBytes: opts.maxBytes, maxWaitingBytes: opts.maxWaitingBytes, segmentBytes: opts.segmentBytes, memoryBytes: opts.memoryBytes });
    for (const r of log.repairs) {
      opts.log('warn', { segment: r.segment, valid_bytes: r.validBytes, cut_bytes: r.cutBytes, reason: r.reason }, 'write-ahead log: a torn or corrupted tail was cut at the last valid record');
    }
    for (const p of log.problems) opts.log('warn', {}, `write-ahead log: ${p}`);
    let wp: WritePath | undefined;
    const node = nodeIdentity(opts.dir);
    const registry = opts.idRegistry;
    const storedIds = opts.idSource && !registry ? await StoredIds.open(opts.idSource, opts.log) : undefined;
    const loader = new Loader(log.loader, store, {
      blockRows: opts.blockRows, intervalMs: opts.intervalMs, insertTimeoutMs: opts.insertTimeoutMs,
      quarantineDir: opts.dir, uncertainBefore: log.openedAt, log: opts.log,
      onLoaded: () => void wp?.checkpointNow(),
      claims: registry ? { node, claim: (c) => registry.claim(c) } : undefined,
      storedIds,
    });
    const observers = new ObserverRunner(log.observer, {
      openedAt: log.openedAt, log: opts.log, onObserved: () => wp?.checkpointSoon(),
    });
    wp = new WritePath(log, loader, observers, opts, node, storedIds);
    return wp;
  }

  /** Stages fed from the log (alert rules, error groups), in order, before the observer moves on. */
  observe(o: Observer): void {
    this.observers.add(o);
  }

  routeAlertsWith(r: AlertRouter): void {
    this.observers.routeAlertsWith(r);
  }

  /** Live consumers (the tail): every durable group as it is written. */
  onAppended(l: AppendedListener): void {
    this.log.onAppended(l);
  }

  /** Starts the loader and the observers (which first replay what the last run left). */
  start(): void {
    // the filter is filled beside the loader: until it is complete, every id is looked for in storage
    if (this.storedIds && !this.filling) this.filling = this.storedIds.fill();
    this.loader.start();
    this.observers.start();
    this.rollTimer ??= setInterval(() => {
      this.forgetLoadedWriters();
      void this.rollIfIdle();
    }, ROLL_CHECK_MS);
    this.rollTimer.unref();
  }

  private async rollIfIdle(): Promise<void> {
    const end = this.log.end;
    const key = `${end.seg}:${end.off}`;
    const idle = key === this.lastEnd;
    this.lastEnd = key;
    if (!idle && end.off < ROLL_BYTES) return;
    if (await this.log.rollIfConsumed()) this.stats.rolls++;
  }

  /**
   * Appends a request's rows; resolves once they are durable. Rows repeating an id of this request,
   * or an id acknowledged shortly before, are left out and counted as duplicates.
   */
  async accept(rows: EventRow[], opts: AcceptOptions): Promise<Accepted> {
    let keep = rows;
    let duplicates = 0;
    // each kept row's key, made once: looked up here, remembered once durable
    const keys: string[] = [];
    if (opts.clientIds) {
      const seen = new Set<string>();
      keep = rows.filter((r) => {
        const key = `${r.project_id}\u0000${r.id}`;
        if (seen.has(key) || this.recent.has(key)) return false;
        seen.add(key);
        keys.push(key);
        return true;
      });
      duplicates = rows.length - keep.length;
      this.stats.answerDuplicates += duplicates;
    }
    if (keep.length === 0) return { duplicates };
    const rec = await this.log.append(keep, opts);
    if (opts.writer !== undefined) this.noteWritten(opts.writer, rec.end);
    if (opts.clientIds) {
      for (const key of keys) this.recent.add(key);
      if (this.opts.idRegistry) {
        const elsewhere = await this.claimForAnswer(keep, claimantOf(this.node, rec.pos));
        duplicates += elsewhere;
        this.stats.answerDuplicates += elsewhere;
      }
    }
    return { duplicates };
  }

  /**
   * On a cluster: claims the request's ids with the same claimant the loader will use, so the answer
   * counts ids another node (or an earlier request here) holds; those rows stay in this log and the
   * loader leaves them out. Returns how many; 0 when the registry does not answer in time.
   */
  private async claimForAnswer(rows: readonly EventRow[], claimant: string): Promise<number> {
    if (Date.now() < this.registryDownUntil) return 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const lost = await Promise.race([
        this.opts.idRegistry!.claimBatched(rows.map((row) => ({ row, claimant }))),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ANSWER_CLAIM_MS))),
      ]);
      if (lost === undefined) throw new Error(`no answer within ${ANSWER_CLAIM_MS} ms`);
      return lost.size;
    } catch (e) {
      this.stats.answerClaimFailures++;
      if (Date.now() >= this.registryDownUntil) this.opts.log('warn', { err: String(e) }, 'id registry: the answer is not checked against other nodes for a while (the loader still checks every id)');
      this.registryDownUntil = Date.now() + REGISTRY_PAUSE_MS;
      return 0;
    } finally {
      clearTimeout(timer);
    }
  }

  private noteWritten(writer: string, end: Pos): void {
    const had = this.unloadedEnd.get(writer);
    if (!had || comparePos(end, had) > 0) this.unloadedEnd.set(writer, end);
  }

  /**
   * Read-your-writes: waits (at most ms) until what was acknowledged before this call is in storage —
   * everything, or with `reader` only what that writer wrote.
   */
  async visible(ms: number, reader?: string): Promise<boolean> {
    if (ms <= 0) return true;
    let end: Pos;
    if (reader === undefined) {
      end = this.log.end;
    } else {
      const own = this.unloadedEnd.get(reader);
      if (!own) return true;
      end = own;
    }
    // compared with segment ends made equal to the next segment's start: after an idle roll the end
    // is {next, 0} while the loader's place is the old segment's end
    if (this.log.loader.passed(end)) {
      if (reader !== undefined && this.unloadedEnd.get(reader) === end) this.unloadedEnd.delete(reader);
      return true;
    }
    return this.loader.loadedUpTo(end, ms);
  }

  /**
   * Waits (at most ms) until the observers have passed what was acknowledged before this call: an
   * error group seen in storage then has its state recorded (the loader may be ahead of them).
   */
  async observed(ms: number): Promise<boolean> {
    const end = this.log.end;
    const deadline = Date.now() + ms;
    while (!this.log.observer.passed(end)) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  /** Lets go of writers whose writes are all loaded (the map holds only writers with a wait ahead). */
  private forgetLoadedWriters(): void {
    for (const [writer, end] of this.unloadedEnd) if (this.log.loader.passed(end)) this.unloadedEnd.delete(writer);
  }

  checkpointNow(): Promise<void> {
    if (this.checkpointTimer) {
      clearTimeout(this.checkpointTimer);
      this.checkpointTimer = undefined;
    }
    return this.log.checkpoint().catch((e) => {
      // the positions stay in memory; the next checkpoint writes them
      if (this.checkpointFailures++ % 100 === 0) this.opts.log('error', { err: String(e) }, 'write-ahead log checkpoint could not be written');
    });
  }

  private checkpointSoon(): void {
    this.checkpointTimer ??= setTimeout(() => void this.checkpointNow(), CHECKPOINT_EVERY_MS);
  }

  /**
   * Refuses new requests, then loads and observes what it can within deadlineMs; what is left stays
   * in the log for the next start (it is durable already).
   */
  async close(deadlineMs: number): Promise<void> {
    if (this.rollTimer) clearInterval(this.rollTimer);
    this.storedIds?.stop();
    await this.log.stopAppends();
    const half = Math.max(100, Math.floor(deadlineMs / 2));
    await Promise.all([this.loader.stop(half), this.observers.stop(half), this.filling && Promise.race([this.filling, delay(half)])]);
    await this.checkpointNow();
    // everything loaded and observed: no segment is kept for the next start to skip over
    this.stats.releasedAtStop = this.log.releaseConsumed();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
