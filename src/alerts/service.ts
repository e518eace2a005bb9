// The Alerts Dispatcher, wired: rules meet events here and become notifications.
//
//   the write-ahead log ─▶ instant `event` rules ┐
//   signals (new_group, regression) ───────────┼─▶ alert groups (rule + project + group_by values)
//   periodic evaluator (GROUP BY over events) ─┤     inactive → firing → resolved
//   POST /monitoring/alert (route()) ──────────┘            │ one notification per state change / repeat
//                                                           ▼
//                                  outbox (notification + deliveries in one transaction) ─▶ dispatcher
//
// Every group mutation runs through one serial queue, so a flood of rows, a tick and an engine-
// raised alert never race on a group. A flood touches a group once per written batch: the first
// matching row fires it, the rest only add to its count until repeat_interval_s has passed.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { EngineDeps } from '../engine-deps.js';
import type { AlertRouting } from '../collector/http.js';
import type { EventRow } from '../event.js';
import type { GroupSignal } from '../aggregator/signals.js';
import { EVENTS_TABLE } from '../storage/schema.js';
import { ParamBag, whereClause } from '../query/filters.js';
import { createSenders, type Notification } from './channels/index.js';
import type { ControlBus } from '../storage/control-bus.js';
import { EVALUATOR_LEASE, evaluatorLeaseMs } from './evaluator-lease.js';
import {
  compileRule, contextOf, INSTANT_KINDS, labelsOf, ruleMatchesRow, SEVERITIES, toEventFilter, WINDOWED_KINDS,
  type CompiledRule, type Rule, type RuleKind,
} from './rules.js';
import { evaluateWindow, groupId, notificationId, repeatDue, type WindowStats } from './evaluate.js';
import { findSilence, type Silence } from './silences.js';
import { AlertStore, type AlertGroup, type Channel, type Delivery, type Fence, type NotificationKind, type NotificationRecord, type UiNotification } from './store.js';
import { Dispatcher } from './dispatcher.js';
import { AckStore, covers } from './acks.js';
import { errorGroupPath, alertGroupPath } from './links.js';

/**
 * The built-in route for engine-raised alerts (POST /monitoring/alert) that match no `event` rule:
 * they go to the project's channels marked `default: true` (and global default channels), grouped
 * by fingerprint, repeated hourly, resolved quietly after 5 minutes without a repeat of the alert.
 */
export const DEFAULT_ROUTE: CompiledRule = {
  id: 'default-route',
  name: 'Engine-raised alert',
  project_id: null,
  kind: 'event',
  filter: { alert: true },
  query: null,
  match: { eq: {}, attrs: [], alert: true },
  threshold: null,
  window_s: 300,
  min_count: null,
  baseline_window_s: null,
  group_by: ['fingerprint'],
  channels: [],
  severity: 'high',
  repeat_interval_s: 3600,
  send_resolved: false,
  enabled: true,
  user_message: null,
  created_at: 0,
  updated_at: 0,
  created_by: null,
};

/** How long POST /monitoring/alert waits for the first delivery attempt before it answers. */
export const ROUTE_WAIT_MS = 2000;
/** Thrown inside a transaction to roll it back when another writer changed the group first. */
const CONFLICT = new Error('alert group changed concurrently');
// Mirrors isErrorLike() in event.ts (constants, not user input).
export const ERROR_EXPR = "(lower(status) IN ('error', 'failure', 'failed', 'timeout', 'fatal') OR lower(severity) IN ('error', 'high', 'critical', 'fatal', 'emergency', 'alert') OR event_type IN ('error', 'action_error'))";

interface Hit {
  rule: CompiledRule;
  project_id: string;
  labels: Record<string, string>;
  count: number;
  first: number;
  last: number;
  row: EventRow;
}

export interface Queued {
  notification_id: string;
  /** Deliveries the dispatcher will send (not the in-app ones, which are stored at once). */
  delivery_ids: string[];
  channels: string[];
}

export type AlertDeps = Pick<EngineDeps, 'config' | 'events' | 'meta' | 'signals' | 'recordAdminAction' | 'limiter' | 'node'>;

type Logger = { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

export class AlertService implements AlertRouting {
  readonly store: AlertStore;
  readonly acks: AckStore;
  readonly dispatcher: Dispatcher;
  /** In-app notifications as they are stored (the SSE stream listens). */
  readonly uiEvents = new EventEmitter<{ notification: [UiNotification] }>();
  private rules = new Map<string, CompiledRule>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly routing = new Map<string, Promise<{ notified: boolean; channels: string[]; delivery_ids: string[] }>>();
  private ticker: NodeJS.Timeout | undefined;
  private ticking = false;
  private closed = false;
  // the pid says which process holds the evaluator lease (operators, tests)
  private readonly nodeId = `node-${process.pid}-${randomUUID()}`;
  private server: { address(): AddressInfo | string | null } | undefined;
  private log: Logger | undefined;

  constructor(readonly deps: AlertDeps) {
    this.store = new AlertStore(deps.meta);
    this.acks = new AckStore(deps.meta);
    const c = deps.config;
    this.dispatcher = new Dispatcher(this.store, createSenders({ allowPrivate: c.allowPrivateWebhooks, timeoutMs: c.alertSendTimeoutMs }), {
      retryBaseMs: c.alertRetryBaseMs,
      maxAttempts: c.alertMaxAttempts,
      sendTimeoutMs: c.alertSendTimeoutMs,
      pollMs: Math.min(1000, c.alertEvalIntervalMs),
      leaseOwner: deps.node,
      log: (msg, extra) => this.log?.warn(extra ?? {}, msg),
    });
    this.uiEvents.setMaxListeners(0);
  }

  async init(): Promise<void> {
    // a delivery still marked "sending" by this node was cut off by a crash: on the embedded store
    // every one (one process owns it), on PostgreSQL the ones this node (its data dir) held
    if (this.deps.meta.dialect === 'sqlite') await this.store.releaseAllLeases();
    else await this.store.releaseLeasesOf(this.deps.node);
    await this.loadRules();
    this.deps.signals.on('new_group', (s) => this.onSignal('new_group', s));
    this.deps.signals.on('regression', (s) => this.onSignal('regression', s));
    this.dispatcher.start();
    this.ticker = setInterval(() => void this.tick(), this.deps.config.alertEvalIntervalMs);
    this.ticker.unref();
  }

  /** The HTTP server (for dashboard links) and the logger, set when the routes are registered. */
  attach(server: { address(): AddressInfo | string | null }, log: Logger): void {
    this.server = server;
    this.log = log;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    await Promise.race([this.queue.catch(() => undefined), sleep(3000)]);
    await this.dispatcher.stop();
    await this.store.releaseLease(EVALUATOR_LEASE, this.nodeId).catch(() => undefined);
  }

  // ---- rules cache --------------------------------------------------------------------------

  async loadRules(): Promise<void> {
    const rules = await this.store.listRules();
    this.rules = new Map(rules.map((r) => [r.id, compileRule(r)]));
  }

  /** Rules changed on any node are reloaded here at once (instant rules are decided by each node). */
  listen(bus: ControlBus): void {
    this.bus = bus;
    // this node applied its own change already (ruleChanged)
    bus.on('rules', (fromHere) => {
      if (!fromHere) void this.loadRules().catch((e) => this.fail('alert rules could not be reloaded', e));
    });
    // another node stored an in-app notification: this node's open streams show it (read by id,
    // only when a stream is open); this node's own were shown when stored (announceUi)
    bus.onMessage('ui_notification', (id, fromHere) => {
      if (fromHere || this.uiEvents.listenerCount('notification') === 0) return;
      void this.store.getUi(id).then(
        (u) => u && this.uiEvents.emit('notification', u),
        (e) => this.fail('an in-app notification of another node could not be read', e),
      );
    });
  }

  /** A stored in-app notification: shown on this node's open streams at once, then on every other node's. */
  announceUi(u: UiNotification): void {
    this.uiEvents.emit('notification', u);
    this.bus?.send('ui_notification', u.id).catch((e) => this.fail('an in-app notification could not be announced to the other nodes', e));
  }

  private bus: ControlBus | undefined;

  /** Called by the routes after a rule changed; groups of a deleted or disabled rule end quietly. */
  async ruleChanged(id: string, rule: Rule | undefined): Promise<void> {
    await this.bus?.publish('rules');
    if (rule) this.rules.set(id, compileRule(rule));
    else this.rules.delete(id);
    if (!rule) await this.serial(() => this.store.deleteGroupsOfRule(id));
    else if (!rule.enabled) await this.serial(() => this.endGroupsQuietly(id, Date.now()));
  }

  private ruleById(id: string): CompiledRule | undefined {
    return id === DEFAULT_ROUTE.id ? DEFAULT_ROUTE : this.rules.get(id);
  }

  private enabledRules(kind: RuleKind): CompiledRule[] {
    const out: CompiledRule[] = [];
    for (const r of this.rules.values()) if (r.enabled && r.kind === kind) out.push(r);
    return out;
  }

  // ---- inputs -------------------------------------------------------------------------------

  /**
   * Durable rows, fed from the write-ahead log: instant `event` rules. Engine-raised alerts are left
   * to route(). Resolves once the notifications are in the outbox. Feeding the same rows twice (a
   * replay after a crash) notifies nothing twice: their groups are firing already.
   */
  observeRows(rows: readonly EventRow[]): Promise<unknown> | undefined {
    if (this.closed) return;
    const rules = this.enabledRules('event');
    if (rules.length === 0) return;
    const hits = new Map<string, Hit>();
    for (const row of rows) {
      if (Number(row.alert) === 1) continue;
      for (const rule of rules) {
        if (!ruleMatchesRow(rule, row)) continue;
        addHit(hits, rule, row);
      }
    }
    if (hits.size === 0) return;
    return this.serial(() => this.applyHits([...hits.values()], Date.now()));
  }

  private onSignal(kind: 'new_group' | 'regression', s: GroupSignal): void {
    if (this.closed) return;
    const hits = new Map<string, Hit>();
    for (const rule of this.enabledRules(kind)) if (ruleMatchesRow(rule, s.row)) addHit(hits, rule, s.row);
    if (hits.size === 0) return;
    // the aggregator waits for this before it records the group (see ErrorGroups.observe)
    this.deps.signals.track(this.serial(() => this.applyHits([...hits.values()], Date.now())).catch((e) => this.fail(`${kind} alert rules failed`, e)));
  }

  /**
   * POST /monitoring/alert: the durable alert goes through the `event` rules; when none matches, the
   * default route. Once per (project, id): a resent alert is answered with the first routing's
   * result. Answers once the first delivery attempt is made (or after ROUTE_WAIT_MS).
   */
  async route(row: EventRow): Promise<{ notified: boolean; channels: string[] }> {
    const r = await this.routeOnce(row);
    if (r.delivery_ids.length) await Promise.race([this.dispatcher.attemptNow(r.delivery_ids).catch(() => undefined), sleep(ROUTE_WAIT_MS)]);
    return { notified: r.notified, channels: r.channels };
  }

  /**
   * Routes an alert unless it was routed before (the write-ahead log's observers call this for every
   * alert record, so one cut off by a crash before its answer is routed after the restart). Calls for
   * the same alert at the same time share one routing.
   */
  routeOnce(row: EventRow): Promise<{ notified: boolean; channels: string[]; delivery_ids: string[] }> {
    const key = `${row.project_id}\u0000${row.id}`;
    let p = this.routing.get(key);
    if (!p) {
      p = this.routeFirst(row).finally(() => this.routing.delete(key));
      this.routing.set(key, p);
    }
    return p;
  }

  private async routeFirst(row: EventRow): Promise<{ notified: boolean; channels: string[]; delivery_ids: string[] }> {
    const prior = await this.store.routedAlert(row.project_id, row.id);
    if (prior) return { ...prior, delivery_ids: [] };
    if (this.closed) return { notified: false, channels: [], delivery_ids: [] };
    const hits = new Map<string, Hit>();
    for (const rule of this.enabledRules('event')) if (ruleMatchesRow(rule, row)) addHit(hits, rule, row);
    if (hits.size === 0 && (await this.store.defaultChannels(row.project_id)).length > 0) addHit(hits, DEFAULT_ROUTE, row);
    const queued = hits.size ? await this.serial(() => this.applyHits([...hits.values()], Date.now())) : [];
    const channels = [...new Set(queued.flatMap((q) => q.channels))];
    const result = { notified: channels.length > 0, channels };
    await this.store.recordRoutedAlert(row.project_id, row.id, result, Date.now());
    return { ...result, delivery_ids: queued.flatMap((q) => q.delivery_ids) };
  }

  // ---- the periodic pass --------------------------------------------------------------------

  /** Evaluates windowed rules and ages instant groups; runs on the node holding the lease. */
  async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      const now = Date.now();
      const lease = evaluatorLeaseMs(this.deps.config.alertEvalIntervalMs);
      // every state change of this pass is fenced: a node that lost the lease meanwhile writes nothing
      const fence = await this.store.acquireFencedLease(EVALUATOR_LEASE, this.nodeId, now, lease);
      if (!fence) return;
      await this.loadRules();
      for (const rule of this.rules.values()) {
        if (!rule.enabled || !WINDOWED_KINDS.has(rule.kind) || this.closed) continue;
        const at = Date.now();
        let stats: WindowStats[];
        try {
          stats = await this.queryWindow(rule, at);
        } catch (e) {
          this.fail(`alert rule ${rule.id} could not be evaluated`, e);
          continue;
        }
        await this.serial(() => this.applyWindow(rule, stats, at, fence));
      }
      await this.serial(() => this.sweep(Date.now(), fence));
    } catch (e) {
      if (!this.closed) this.fail('alert evaluation failed', e);
    } finally {
      this.ticking = false;
    }
  }

  /** One GROUP BY over the events of the rule's window (and, for spike, its baseline period). */
  async queryWindow(rule: CompiledRule, now: number): Promise<WindowStats[]> {
    const from = now - rule.window_s * 1000;
    const baselineFrom = rule.kind === 'spike' ? from - (rule.baseline_window_s ?? rule.window_s) * 1000 : from;
    // a little room for clocks ahead of ours
    const to = now + 60_000;
    const bag = new ParamBag('a');
    const where = whereClause(toEventFilter(rule, baselineFrom, to), bag);
    const f = bag.add(from, 'Int64');
    const groups = rule.group_by.map((g) => (g.startsWith('attr.') ? `attr_values[indexOf(attr_keys, ${bag.add(g.slice(5), 'String')})]` : g));
    const inWindow = `timestamp >= ${f}`;
    const sql = `SELECT project_id AS g_project${groups.map((g, i) => `, ${g} AS g_${i}`).join('')},
        countIf(${inWindow}) AS c,
        countIf(${inWindow} AND ${ERROR_EXPR}) AS errs,
        quantileIf(0.95)(duration_ms, ${inWindow}) AS p95,
        countIf(timestamp < ${f}) AS base,
        minIf(timestamp, ${inWindow}) AS first_ts,
        maxIf(timestamp, ${inWindow}) AS last_ts,
        argMaxIf(message, timestamp, ${inWindow}) AS last_message
      FROM ${EVENTS_TABLE} WHERE ${where}
      GROUP BY g_project${groups.map((_, i) => `, g_${i}`).join('')}
      LIMIT 10000`;
    const rows = await this.deps.events.query<Record<string, unknown>>(sql, bag.params);
    return rows.map((r) => {
      const labels: Record<string, string> = {};
      rule.group_by.forEach((g, i) => (labels[g] = String(r[`g_${i}`] ?? '')));
      const p95 = r.p95 === null || r.p95 === undefined ? null : Number(r.p95);
      return {
        project_id: String(r.g_project), labels, count: Number(r.c), errors: Number(r.errs),
        p95: p95 !== null && Number.isFinite(p95) ? p95 : null, baseline: Number(r.base),
        first: Number(r.first_ts), last: Number(r.last_ts), last_message: String(r.last_message ?? ''),
      };
    });
  }

  // ---- group state machine (always inside serial()) -----------------------------------------

  private async applyHits(hits: Hit[], now: number): Promise<Queued[]> {
    const out: Queued[] = [];
    const silencesByProject = new Map<string, Silence[]>();
    for (const h of hits) {
      if (this.closed) break;
      let silences = silencesByProject.get(h.project_id);
      if (!silences) silencesByProject.set(h.project_id, (silences = await this.store.activeSilences(h.project_id, now)));
      const id = groupId(h.rule.id, h.project_id, h.labels);
      const g = await this.store.getGroup(id);
      const headline = headlineOf(h.row);
      if (!g || g.state === 'resolved') {
        const ctx = contextOf(h.rule, h.project_id, h.labels, h.row);
        if (h.rule.id === DEFAULT_ROUTE.id) ctx.severity = (SEVERITIES as readonly string[]).includes(h.row.severity) ? h.row.severity : 'high';
        const fresh = newGroup(id, h.rule.id, h.project_id, h.labels, ctx, now, h.first, h.last, h.count, null, headline);
        out.push(await this.notify(fresh, h.rule, 'firing', now, silences));
        continue;
      }
      g.count += h.count;
      g.last_seen = Math.max(g.last_seen, h.last);
      g.detail = headline || g.detail;
      g.updated_at = now;
      const silenced = findSilence(silences, g.context, now) !== undefined;
      if (await this.repeatWanted(g, h.rule, silenced, now)) out.push(await this.notify(g, h.rule, 'repeat', now, silences));
      else await this.store.updateGroupStats(g);
    }
    return out.filter((q) => q.notification_id);
  }

  private async applyWindow(rule: CompiledRule, stats: WindowStats[], now: number, fence: Fence): Promise<void> {
    if (this.closed || !this.rules.has(rule.id)) return;
    const firing = await this.store.firingGroups(rule.id);
    const firingById = new Map(firing.map((g) => [g.id, g]));
    const stillFiring = new Set<string>();
    const silencesByProject = new Map<string, Silence[]>();
    const silencesOf = async (p: string) => {
      let s = silencesByProject.get(p);
      if (!s) silencesByProject.set(p, (s = await this.store.activeSilences(p, now)));
      return s;
    };
    for (const s of stats) {
      const verdict = evaluateWindow(rule, s);
      if (!verdict.firing) continue;
      const id = groupId(rule.id, s.project_id, s.labels);
      stillFiring.add(id);
      const silences = await silencesOf(s.project_id);
      const g = firingById.get(id);
      const detail = `${verdict.short}\n${verdict.text}${s.last_message ? `\nLast: ${s.last_message.replace(/\s+/g, ' ').slice(0, 300)}` : ''}`;
      if (!g) {
        const ctx = contextOf(rule, s.project_id, s.labels);
        const fresh = newGroup(id, rule.id, s.project_id, s.labels, ctx, now, s.first || now, s.last || now, s.count, verdict.value, detail);
        await this.notify(fresh, rule, 'firing', now, silences, fence);
        continue;
      }
      g.count = s.count;
      g.value = verdict.value;
      g.last_seen = Math.max(g.last_seen, s.last || now);
      g.detail = detail;
      g.updated_at = now;
      const silenced = findSilence(silences, g.context, now) !== undefined;
      if (await this.repeatWanted(g, rule, silenced, now)) await this.notify(g, rule, 'repeat', now, silences, fence);
      else await this.store.updateGroupStats(g);
    }
    for (const g of firing) {
      if (stillFiring.has(g.id)) continue;
      await this.resolve(g, rule, now, await silencesOf(g.project_id), fence);
    }
  }

  /** Instant groups: resolve after window_s without a match, repeat while firing. */
  private async sweep(now: number, fence: Fence): Promise<void> {
    await this.store.pruneRoutedAlerts(now - 7 * 86_400_000);
    const groups = await this.store.firingGroups();
    const silencesByProject = new Map<string, Silence[]>();
    for (const g of groups) {
      if (this.closed) return;
      const rule = this.ruleById(g.rule_id);
      if (!rule || !rule.enabled) {
        await this.endQuietly(g, now, fence);
        continue;
      }
      if (!INSTANT_KINDS.has(rule.kind)) continue;
      let silences = silencesByProject.get(g.project_id);
      if (!silences) silencesByProject.set(g.project_id, (silences = await this.store.activeSilences(g.project_id, now)));
      if (now - g.last_seen >= rule.window_s * 1000) {
        await this.resolve(g, rule, now, silences, fence);
      } else if (await this.repeatWanted(g, rule, findSilence(silences, g.context, now) !== undefined, now)) {
        g.updated_at = now;
        await this.notify(g, rule, 'repeat', now, silences, fence);
      }
    }
  }

  /** A repeat is due (repeatDue) and nobody acknowledged this firing episode. */
  private async repeatWanted(g: AlertGroup, rule: CompiledRule, silenced: boolean, now: number): Promise<boolean> {
    if (!repeatDue(g, rule.repeat_interval_s, silenced, now)) return false;
    return !covers(await this.acks.get(g.id), g);
  }

  private async resolve(g: AlertGroup, rule: CompiledRule, now: number, silences: Silence[], fence?: Fence): Promise<void> {
    if (rule.send_resolved && g.episode_sent) {
      await this.notify(g, rule, 'resolved', now, silences, fence);
      return;
    }
    await this.endQuietly(g, now, fence);
  }

  /** Resolves a group without a notification (rule deleted or disabled, or no resolved message wanted). */
  private async endQuietly(g: AlertGroup, now: number, fence?: Fence): Promise<void> {
    const seq = g.seq;
    g.state = 'resolved';
    g.resolved_at = now;
    g.updated_at = now;
    if (!fence) {
      await this.store.saveGroupIfSeq(g, seq);
      return;
    }
    await this.deps.meta.tx(async (db) => {
      if (await this.store.holdsFence(db, fence)) await this.store.saveGroupIfSeq(g, seq, db);
    });
  }

  private async endGroupsQuietly(ruleId: string, now: number): Promise<void> {
    for (const g of await this.store.firingGroups(ruleId)) await this.endQuietly(g, now);
  }

  /**
   * Records one notification of a group (firing, repeat or resolved) with its outbox rows, in one
   * transaction with the group's new state. A silenced notification is recorded as such, unsent.
   */
  private async notify(g: AlertGroup, rule: CompiledRule, kind: NotificationKind, now: number, silences: Silence[], fence?: Fence): Promise<Queued> {
    const silence = findSilence(silences, g.context, now);
    // a group that never notified is being opened (new, or a new episode of a resolved one)
    const opening = g.seq === 0;
    const prevSeq = g.seq;
    g.seq += 1;
    const id = notificationId(g.id, g.episode_start, g.seq);
    if (kind === 'resolved') {
      g.state = 'resolved';
      g.resolved_at = now;
    }
    g.last_notified_at = now;
    g.last_silenced = silence ? 1 : 0;
    if (!silence && kind !== 'resolved') g.episode_sent = 1;
    g.updated_at = now;

    const payload = this.buildNotification(id, g, rule, kind);
    const channels = silence ? [] : await this.channelsFor(rule, g.project_id);
    const deliveries: Delivery[] = channels.map((c) => ({
      id: `${id}:${c.id}`, notification_id: id, channel_id: c.id, channel_name: c.name, channel_type: c.type,
      // in-app notifications are delivered by being stored, in this very transaction
      status: c.type === 'ui' ? 'delivered' : 'pending', attempts: c.type === 'ui' ? 1 : 0, next_attempt_at: now,
      lease_until: null, last_status: null, last_error: null, created_at: now, updated_at: now, delivered_at: c.type === 'ui' ? now : null,
    }));
    const ui: UiNotification[] = channels.filter((c) => c.type === 'ui').map((c) => ({
      id: `${id}:${c.id}`, notification_id: id, channel_id: c.id, project_id: g.project_id, payload, created_at: now, read_at: null,
    }));
    const record: NotificationRecord = {
      id, group_id: g.id, rule_id: rule.id, rule_name: rule.name, project_id: g.project_id,
      state: silence ? 'silenced' : kind === 'resolved' ? 'resolved' : 'firing', kind, silence_id: silence?.id ?? null,
      count: g.count, payload, created_at: now,
    };
    // the group's state change and its notification commit together, or not at all; a group that
    // another writer changed meanwhile (another engine node) is left to that writer
    const inserted = await this.deps.meta
      .tx(async (db) => {
        if (fence && !(await this.store.holdsFence(db, fence))) throw CONFLICT;
        const won = opening ? await this.store.openGroup(db, g) : await this.store.saveGroupIfSeq(g, prevSeq, db);
        if (!won || !(await this.store.insertNotification(db, record, deliveries, ui))) throw CONFLICT;
        return true;
      })
      .catch((e) => {
        if (e === CONFLICT) return false;
        throw e;
      });
    if (!inserted) return { notification_id: '', delivery_ids: [], channels: [] };
    for (const u of ui) this.announceUi(u);
    const toSend = deliveries.filter((d) => d.status === 'pending').map((d) => d.id);
    if (toSend.length) this.dispatcher.kick();
    return { notification_id: id, delivery_ids: toSend, channels: channels.map((c) => c.name) };
  }

  private async channelsFor(rule: CompiledRule, project: string): Promise<Channel[]> {
    const list = rule.id === DEFAULT_ROUTE.id ? await this.store.defaultChannels(project) : await this.store.getChannels(rule.channels);
    // a channel bound to another project never hears of this one, whatever the rule says
    return list.filter((c) => c.project_id === null || c.project_id === project);
  }

  private buildNotification(id: string, g: AlertGroup, rule: CompiledRule, kind: NotificationKind): Notification {
    const detailLines = g.detail.split('\n');
    const headline = detailLines[0];
    const prefix = rule.kind === 'new_group' ? 'New error' : rule.kind === 'regression' ? 'Regression' : '';
    const title = [rule.name, prefix && headline ? `${prefix}: ${headline}` : headline].filter(Boolean).join(' – ');
    const summary: string[] = [];
    if (kind === 'resolved') summary.push(`Resolved after ${formatSpan(Date.now() - g.episode_start)}.`);
    else if (kind === 'repeat') summary.push(`Still firing since ${new Date(g.episode_start).toISOString()}.`);
    if (INSTANT_KINDS.has(rule.kind)) summary.push(`${g.count} matching event${g.count === 1 ? '' : 's'} so far.`);
    summary.push(...detailLines.slice(1));
    const labels = Object.entries(g.labels).filter(([, v]) => v !== '');
    if (labels.length) summary.push(labels.map(([k, v]) => `${k}=${v}`).join(', '));
    const n: Notification = {
      id,
      state: kind === 'resolved' ? 'resolved' : 'firing',
      rule_id: rule.id,
      rule_name: rule.name,
      severity: g.context.severity ?? rule.severity,
      project_id: g.project_id,
      title: title.slice(0, 500),
      summary: summary.join('\n').slice(0, 2500),
      count: g.count,
      first_seen: new Date(g.first_seen).toISOString(),
      last_seen: new Date(g.last_seen).toISOString(),
      labels: g.labels,
      link: this.link(g, rule),
    };
    const userMessage = rule.user_message ?? (rule.id === DEFAULT_ROUTE.id ? detailLines[0] : undefined);
    if (userMessage) n.user_message = userMessage;
    return n;
  }

  /** Dashboard address: MONITORING_PUBLIC_URL, else where this engine listens. */
  baseUrl(): string {
    const pub = this.deps.config.publicUrl.replace(/\/+$/, '');
    if (pub) return pub;
    const addr = this.server?.address();
    const port = addr && typeof addr === 'object' ? addr.port : this.deps.config.port;
    let host = this.deps.config.host;
    if (host === '0.0.0.0' || host === '::' || host === '') host = 'localhost';
    if (host.includes(':')) host = `[${host}]`;
    return `http://${host}:${port}`;
  }

  /** Error-group alerts open that group; every other alert opens its alert group. */
  private link(g: AlertGroup, rule: CompiledRule): string {
    const fp = g.labels.fingerprint ?? g.context.fingerprint;
    if ((rule.kind === 'new_group' || rule.kind === 'regression') && fp) return `${this.baseUrl()}/${errorGroupPath(g.project_id, fp)}`;
    return `${this.baseUrl()}/${alertGroupPath(g.project_id, g.id)}`;
  }

  // ---- plumbing -----------------------------------------------------------------------------

  /** Runs fn after everything queued before it; a failure does not stop the queue. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private fail(msg: string, e: unknown): void {
    if (this.closed) return;
    this.log?.error({ err: String((e as Error)?.stack ?? e) }, msg);
  }
}

function addHit(hits: Map<string, Hit>, rule: CompiledRule, row: EventRow): void {
  const labels = labelsOf(rule.group_by, row);
  const key = groupId(rule.id, row.project_id, labels);
  const at = Number(row.received_at) || Date.now();
  const h = hits.get(key);
  if (h) {
    h.count++;
    h.first = Math.min(h.first, at);
    if (at >= h.last) {
      h.last = at;
      h.row = row;
    }
  } else {
    hits.set(key, { rule, project_id: row.project_id, labels, count: 1, first: at, last: at, row });
  }
}

function newGroup(
  id: string, ruleId: string, project: string, labels: Record<string, string>, context: Record<string, string>,
  now: number, first: number, last: number, count: number, value: number | null, detail: string,
): AlertGroup {
  return {
    id, rule_id: ruleId, project_id: project, labels, context, state: 'firing', episode_start: now, first_seen: first,
    last_seen: last, count, value, detail, seq: 0, last_notified_at: null, last_silenced: 0, episode_sent: 0,
    resolved_at: null, updated_at: now,
  };
}

/** The line that says what happened, from the event that triggered it. */
function headlineOf(row: EventRow): string {
  const what = row.message || row.error_type || `${row.event_type} event`;
  const where = [row.engine, row.platform && row.action ? `${row.platform}/${row.action}` : row.platform].filter(Boolean).join(' ');
  const line = `${what}${where ? ` (${where})` : ''}`.replace(/\s+/g, ' ').trim();
  return line.slice(0, 300);
}

function formatSpan(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 360) / 10} h`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
