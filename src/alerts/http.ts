// Alert routes: channels, rules and silences (admin scope), alert history and in-app notifications
// (read scope), and the in-app notification stream (SSE). Every route is limited to the caller's
// projects; a key bound to a project creates rules, channels and silences for that project only,
// and its rules may only use that project's channels. Rows with no project (global rules,
// channels, silences) belong to principals with every project.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import { mayAccessProject, visibleProjects, type Principal } from '../auth/principal.js';
import { watchKey } from '../auth/http.js';
import type { KeyStore } from '../auth/key-store.js';
import { asInt, asSingle, asTime } from '../query/filters.js';
import { newEventId } from '../ids.js';
import {
  CHANNEL_TYPES, checkOutboundHost, checkOutboundUrl, createSenders, maskedFields, maskSecrets, mergeSecrets, validateChannelConfig,
  type ChannelType, type Notification, type SenderChannelType,
} from './channels/index.js';
import { pathToField, RULE_KINDS, RuleInput, validateRule, type Rule, type RuleSpec } from './rules.js';
import { isActive, SilenceInput, validateSilence, type Silence } from './silences.js';
import type { AlertGroup, Channel, Delivery, NotificationRecord, NotificationState, UiNotification } from './store.js';
import type { AlertService } from './service.js';
import { alertsPath } from './links.js';
import { covers, type Ack } from './acks.js';
import { previewRule } from './preview.js';

export interface AlertRouteOptions {
  service: AlertService;
  /** Open notification streams end once their key is revoked or expires. */
  keys: KeyStore;
  /** SSE heartbeat comment interval (default 15 s). */
  heartbeatMs?: number;
}

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

// ---- views --------------------------------------------------------------------------------

function ruleView(r: Rule) {
  return {
    id: r.id, name: r.name, project_id: r.project_id, kind: r.kind, filter: r.filter, query: r.query, threshold: r.threshold, window_s: r.window_s,
    min_count: r.min_count, baseline_window_s: r.baseline_window_s, group_by: r.group_by, channels: r.channels, severity: r.severity,
    repeat_interval_s: r.repeat_interval_s, send_resolved: r.send_resolved, enabled: r.enabled, user_message: r.user_message,
    created_at: iso(r.created_at), updated_at: iso(r.updated_at), created_by: r.created_by,
  };
}

function channelView(c: Channel) {
  return {
    id: c.id, project_id: c.project_id, name: c.name, type: c.type, default: c.is_default, config: maskSecrets(c.type, c.config),
    created_at: iso(c.created_at), updated_at: iso(c.updated_at), created_by: c.created_by,
  };
}

function silenceView(s: Silence, now = Date.now()) {
  return {
    id: s.id, project_id: s.project_id, matchers: s.matchers, starts_at: iso(s.starts_at), ends_at: iso(s.ends_at), comment: s.comment,
    active: isActive(s, now), created_by: s.created_by, created_at: iso(s.created_at),
  };
}

function deliveryView(d: Delivery) {
  return {
    channel_id: d.channel_id, channel_name: d.channel_name, channel_type: d.channel_type, status: d.status, attempts: d.attempts,
    last_status: d.last_status, last_error: d.last_error, next_attempt_at: d.status === 'pending' ? iso(d.next_attempt_at) : null,
    delivered_at: iso(d.delivered_at), updated_at: iso(d.updated_at),
  };
}

function alertView(n: NotificationRecord, deliveries: Delivery[]) {
  return {
    id: n.id, group_id: n.group_id, rule_id: n.rule_id, rule_name: n.rule_name, project_id: n.project_id, state: n.state,
    kind: n.kind, silence_id: n.silence_id, count: n.count, severity: n.payload.severity, title: n.payload.title,
    summary: n.payload.summary, labels: n.payload.labels, link: n.payload.link, first_seen: n.payload.first_seen,
    last_seen: n.payload.last_seen, created_at: iso(n.created_at), deliveries: deliveries.map(deliveryView),
  };
}

function groupView(g: AlertGroup, ack?: Ack) {
  const acked = covers(ack, g);
  return {
    id: g.id, rule_id: g.rule_id, project_id: g.project_id, labels: g.labels, state: g.state, count: g.count, value: g.value,
    detail: g.detail, firing_since: g.state === 'firing' ? iso(g.episode_start) : null, first_seen: iso(g.first_seen),
    last_seen: iso(g.last_seen), last_notified_at: iso(g.last_notified_at), resolved_at: iso(g.resolved_at),
    acknowledged_at: acked ? iso(ack!.acknowledged_at) : null, acknowledged_by: acked ? ack!.acknowledged_by : null,
  };
}

function uiView(u: UiNotification) {
  const p = u.payload;
  return {
    id: u.id, notification_id: u.notification_id, project_id: u.project_id, state: p.state, severity: p.severity, title: p.title,
    summary: p.summary, count: p.count, rule_id: p.rule_id, rule_name: p.rule_name, labels: p.labels, link: p.link,
    first_seen: p.first_seen, last_seen: p.last_seen, created_at: iso(u.created_at), read: u.read_at !== null, read_at: iso(u.read_at),
  };
}

// ---- tenant guard -------------------------------------------------------------------------

function canSee(p: Principal, project: string | null): boolean {
  return project === null ? p.projects === '*' : mayAccessProject(p, project);
}

/** The projects a listing covers, and whether rows with no project are included. */
function listScope(req: FastifyRequest, errors: FieldError[]): { projects: readonly string[] | undefined; includeGlobal: boolean } {
  const q = (req.query ?? {}) as Record<string, unknown>;
  const requested = asSingle(q.project_id, 'project_id', errors);
  const v = visibleProjects(req.principal, requested ? [requested] : undefined);
  if (!v.ok) throw new HttpError(403, 'forbidden', `this key may not read project ${v.project}`);
  return { projects: v.projects, includeGlobal: !requested && req.principal.projects === '*' };
}

/** The project a new rule/channel/silence belongs to (null = every project). */
function targetProject(p: Principal, given: string | null | undefined): string | null {
  if (given) {
    if (!mayAccessProject(p, given)) throw new HttpError(403, 'forbidden', `this key may not manage project ${given}`);
    return given;
  }
  if (p.projects === '*') return null;
  if (p.projects.size === 1) return [...p.projects][0];
  throw badRequest([{ field: 'project_id', message: 'is required for a key bound to several projects' }]);
}

function notFound(kind: string, id: string): HttpError {
  return new HttpError(404, 'not_found', `no ${kind} ${id}`);
}

function checkQuery(req: FastifyRequest, known: readonly string[], errors: FieldError[]): Record<string, unknown> {
  const q = (req.query ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(q)) if (!known.includes(k)) errors.push({ field: k, message: 'is not a known parameter' });
  return q;
}

function asBool(raw: unknown, field: string, errors: FieldError[]): boolean | undefined {
  const s = asSingle(raw, field, errors);
  if (s === undefined || s === '') return undefined;
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  errors.push({ field, message: 'must be true or false' });
  return undefined;
}

function bodyObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest([{ field: '(body)', message: 'must be a JSON object' }]);
  return body as Record<string, unknown>;
}

// ---- channel input ------------------------------------------------------------------------

const ChannelInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    type: Type.String(),
    config: Type.Record(Type.String(), Type.Unknown()),
    project_id: Type.Optional(Type.Union([Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' }), Type.Null()])),
    default: Type.Optional(Type.Boolean({ description: 'receives engine-raised alerts that no rule matched' })),
  },
  { additionalProperties: false },
);
const channelChecker = TypeCompiler.Compile(ChannelInput);

function checkChannelBody(body: Record<string, unknown>): { name: string; type: ChannelType; config: Record<string, unknown>; project_id?: string | null; default?: boolean } {
  if (!channelChecker.Check(body)) {
    const errors: FieldError[] = [];
    const seen = new Set<string>();
    for (const e of channelChecker.Errors(body)) {
      const field = pathToField(e.path);
      if (seen.has(field)) continue;
      seen.add(field);
      errors.push({ field, message: e.value === undefined ? 'is required' : e.message.toLowerCase().replace(/^unexpected property.*/, 'is not a known field') });
    }
    throw badRequest(errors);
  }
  if (!(CHANNEL_TYPES as readonly string[]).includes(body.type as string)) {
    throw badRequest([{ field: 'type', message: `must be one of ${CHANNEL_TYPES.join(', ')}` }]);
  }
  return body as ReturnType<typeof checkChannelBody>;
}

function checkChannelConfig(type: ChannelType, config: Record<string, unknown>): void {
  const masked = maskedFields(type, config);
  if (masked.length) throw badRequest(masked.map((f) => ({ field: `config.${f}`, message: 'still holds a masked value; send the real one' })));
  const v = validateChannelConfig(type, config);
  if (!v.ok) {
    throw badRequest(v.errors.map((e) => {
      const m = /^\/?([^:]*): (.*)$/.exec(e);
      const path = m ? m[1].replace(/^\//, '').replace(/\//g, '.') : '';
      return { field: path ? `config.${path}` : 'config', message: m ? m[2] : e };
    }));
  }
}

/**
 * The target must be one the senders may reach (the URL guard, as at send time): refused when the
 * channel is created or changed, not only when an alert is due. Resolves host names once here.
 */
async function guardTargets(type: ChannelType, config: Record<string, unknown>, allowPrivate: boolean): Promise<void> {
  const errors: FieldError[] = [];
  for (const f of ['webhook_url', 'url'] as const) {
    if (typeof config[f] !== 'string') continue;
    const g = await checkOutboundUrl(config[f] as string, allowPrivate);
    if (!g.ok) errors.push({ field: `config.${f}`, message: `is not an allowed target: ${g.reason}` });
  }
  if (type === 'email' && typeof config.host === 'string') {
    const g = await checkOutboundHost(config.host, allowPrivate);
    if (!g.ok) errors.push({ field: 'config.host', message: `is not an allowed target: ${g.reason}` });
  }
  if (errors.length) throw badRequest(errors);
}

// ---- routes -------------------------------------------------------------------------------

export async function alertRoutes(app: FastifyInstance, opts: AlertRouteOptions): Promise<void> {
  const svc = opts.service;
  const store = svc.store;
  const deps = svc.deps;
  svc.attach(app.server, app.log);
  const audit = async (p: Principal, action: string, kind: string, id: string, project: string | null, details: Record<string, unknown>) => {
    try {
      await deps.recordAdminAction(p, action, { project_id: project, kind, id }, details);
    } catch (e) {
      app.log.warn({ err: String(e) }, 'could not record an admin action');
    }
  };
  const admin = { config: { scope: 'admin' as const } };
  const read = { config: { scope: 'read' as const } };

  // ---- channels ----

  const visibleChannel = async (req: FastifyRequest): Promise<Channel> => {
    const { id } = req.params as { id: string };
    const c = await store.getChannel(id);
    if (!c || !canSee(req.principal, c.project_id)) throw notFound('channel', id);
    return c;
  };

  app.get('/monitoring/channels', admin, async (req) => {
    const errors: FieldError[] = [];
    checkQuery(req, ['project_id'], errors);
    const scope = listScope(req, errors);
    if (errors.length) throw badRequest(errors);
    return { channels: (await store.listChannels(scope.projects, scope.includeGlobal)).map(channelView) };
  });

  app.post('/monitoring/channels', { config: { ...admin.config, docs: { body: ChannelInput } } }, async (req, reply) => {
    const body = checkChannelBody(bodyObject(req.body));
    const project = targetProject(req.principal, body.project_id);
    checkChannelConfig(body.type, body.config);
    await guardTargets(body.type, body.config, deps.config.allowPrivateWebhooks);
    const now = Date.now();
    const c: Channel = {
      id: `ch_${newEventId(now).replace(/-/g, '')}`, project_id: project, name: body.name, type: body.type, config: body.config,
      is_default: body.default ?? false, created_at: now, updated_at: now, created_by: req.principal.name,
    };
    await store.insertChannel(c);
    await audit(req.principal, 'create', 'alert_channel', c.id, project, { name: c.name, type: c.type, default: c.is_default });
    return reply.code(201).send(channelView(c));
  });

  app.get('/monitoring/channels/:id', admin, async (req) => channelView(await visibleChannel(req)));

  const updateChannel = (merge: boolean) => async (req: FastifyRequest) => {
    const old = await visibleChannel(req);
    const raw = bodyObject(req.body);
    const base = { name: old.name, type: old.type, config: maskSecrets(old.type, old.config), default: old.is_default };
    const body = checkChannelBody(merge ? { ...base, ...raw } : raw);
    if (body.project_id !== undefined && body.project_id !== old.project_id) {
      throw badRequest([{ field: 'project_id', message: 'cannot change; create a new channel instead' }]);
    }
    const config = body.type === old.type ? mergeSecrets(body.type, body.config, old.config) : body.config;
    checkChannelConfig(body.type, config);
    await guardTargets(body.type, config, deps.config.allowPrivateWebhooks);
    const c: Channel = { ...old, name: body.name, type: body.type, config, is_default: body.default ?? (merge ? old.is_default : false), updated_at: Date.now() };
    await store.updateChannel(c);
    await audit(req.principal, 'update', 'alert_channel', c.id, c.project_id, { name: c.name, type: c.type, default: c.is_default });
    return channelView(c);
  };
  app.put('/monitoring/channels/:id', admin, updateChannel(false));
  app.patch('/monitoring/channels/:id', admin, updateChannel(true));

  app.delete('/monitoring/channels/:id', admin, async (req, reply) => {
    const c = await visibleChannel(req);
    const users = await store.rulesUsingChannel(c.id);
    if (users.length) {
      throw new HttpError(409, 'in_use', `channel ${c.id} is used by rule${users.length > 1 ? 's' : ''} ${users.map((r) => r.id).join(', ')}; remove it from them first`, { rules: users.map((r) => r.id) });
    }
    await store.deleteChannel(c.id);
    await audit(req.principal, 'delete', 'alert_channel', c.id, c.project_id, { name: c.name, type: c.type });
    return reply.code(204).send();
  });

  // one sender set for test messages; closed with the app
  let testSenders: ReturnType<typeof createSenders> | undefined;
  app.addHook('onClose', async () => testSenders?.close());

  app.post('/monitoring/channels/:id/test', admin, async (req) => {
    const c = await visibleChannel(req);
    const now = Date.now();
    const n: Notification = {
      id: `test_${newEventId(now).replace(/-/g, '')}`,
      state: 'test',
      rule_id: 'test',
      rule_name: 'Test message',
      severity: 'info',
      project_id: c.project_id ?? '_system',
      title: `Test message for channel ${c.name}`,
      summary: `Sent by ${req.principal.name} to check that the ${c.type} channel works.`,
      count: 0,
      first_seen: new Date(now).toISOString(),
      last_seen: new Date(now).toISOString(),
      labels: {},
      link: `${svc.baseUrl()}/${alertsPath(c.project_id)}`,
    };
    if (c.type === 'ui') {
      const u: UiNotification = { id: `${n.id}:${c.id}`, notification_id: n.id, channel_id: c.id, project_id: n.project_id, payload: n, created_at: now, read_at: null };
      await store.insertUi(u);
      svc.announceUi(u);
      return { ok: true, notification_id: n.id };
    }
    testSenders ??= createSenders({ allowPrivate: deps.config.allowPrivateWebhooks, timeoutMs: deps.config.alertSendTimeoutMs });
    const res = await testSenders.send(c.type as SenderChannelType, c.config, n);
    return res.ok
      ? { ok: true, notification_id: n.id, status: res.status ?? null }
      : { ok: false, notification_id: n.id, status: res.status ?? null, retryable: res.retryable, error: res.error };
  });

  // ---- rules ----

  const visibleRule = async (req: FastifyRequest): Promise<Rule> => {
    const { id } = req.params as { id: string };
    const r = await store.getRule(id);
    if (!r || !canSee(req.principal, r.project_id)) throw notFound('alert rule', id);
    return r;
  };

  /** Validates a rule body for this caller: schema, project, channels. */
  const checkRule = async (req: FastifyRequest, body: Record<string, unknown>, existing?: Rule): Promise<RuleSpec> => {
    const v = validateRule(body);
    if (!v.ok) throw badRequest(v.errors);
    const spec = v.spec;
    if (existing) {
      // a rule stays in its project (a key for another project could not see it afterwards)
      if ((body.project_id ?? null) !== null && spec.project_id !== existing.project_id) {
        throw badRequest([{ field: 'project_id', message: 'cannot change; create a new rule instead' }]);
      }
      spec.project_id = existing.project_id;
    } else {
      spec.project_id = targetProject(req.principal, spec.project_id);
    }
    const errors: FieldError[] = [];
    const found = await store.getChannels(spec.channels);
    spec.channels.forEach((id, i) => {
      const c = found.find((x) => x.id === id);
      const field = `channels.${i}`;
      if (!c || !canSee(req.principal, c.project_id)) errors.push({ field, message: `no channel ${id}` });
      else if (c.project_id !== null && spec.project_id === null) errors.push({ field, message: `channel ${id} belongs to project ${c.project_id}; a rule for every project may only use channels for every project` });
      else if (c.project_id !== null && c.project_id !== spec.project_id) errors.push({ field, message: `channel ${id} belongs to project ${c.project_id}, not ${spec.project_id}` });
    });
    if (errors.length) throw badRequest(errors);
    return spec;
  };

  app.get('/monitoring/alert-rules', admin, async (req) => {
    const errors: FieldError[] = [];
    const q = checkQuery(req, ['project_id', 'kind', 'enabled'], errors);
    const scope = listScope(req, errors);
    const kind = asSingle(q.kind, 'kind', errors);
    if (kind && !(RULE_KINDS as readonly string[]).includes(kind)) errors.push({ field: 'kind', message: `must be one of ${RULE_KINDS.join(', ')}` });
    const enabled = asBool(q.enabled, 'enabled', errors);
    if (errors.length) throw badRequest(errors);
    const rules = (await store.listRules(scope.projects, scope.includeGlobal))
      .filter((r) => (!kind || r.kind === kind) && (enabled === undefined || r.enabled === enabled));
    return { rules: rules.map(ruleView) };
  });

  app.post('/monitoring/alert-rules', { config: { ...admin.config, docs: { body: RuleInput } } }, async (req, reply) => {
    const spec = await checkRule(req, bodyObject(req.body));
    const now = Date.now();
    const r: Rule = { ...spec, id: `rule_${newEventId(now).replace(/-/g, '')}`, created_at: now, updated_at: now, created_by: req.principal.name };
    await store.insertRule(r);
    await svc.ruleChanged(r.id, r);
    await audit(req.principal, 'create', 'alert_rule', r.id, r.project_id, { name: r.name, kind: r.kind });
    return reply.code(201).send(ruleView(r));
  });

  // what a rule (saved or not) would have fired over the last hours, before it is saved
  app.post('/monitoring/alert-rules/preview', admin, async (req) => {
    const raw = bodyObject(req.body);
    const errors: FieldError[] = [];
    const { hours: rawHours, ...ruleBody } = raw;
    const hours = rawHours === undefined ? 24 : Number(rawHours);
    if (!Number.isInteger(hours) || hours < 1 || hours > 168) errors.push({ field: 'hours', message: 'must be a whole number of hours from 1 to 168' });
    const v = validateRule({ channels: [], ...ruleBody });
    if (!v.ok) errors.push(...v.errors);
    if (errors.length || !v.ok) throw badRequest(errors);
    v.spec.project_id = targetProject(req.principal, v.spec.project_id);
    return deps.limiter(() => previewRule(deps.events, v.spec, Date.now(), hours));
  });

  app.get('/monitoring/alert-rules/:id', admin, async (req) => ruleView(await visibleRule(req)));

  const updateRule = (merge: boolean) => async (req: FastifyRequest) => {
    const old = await visibleRule(req);
    const raw = bodyObject(req.body);
    const { id: _i, created_at: _c, updated_at: _u, created_by: _b, ...oldSpec } = ruleView(old);
    // a PATCH that changes the kind drops the fields only the old kind used, unless it sets them
    const kindChanged = raw.kind !== undefined && raw.kind !== old.kind;
    const base: Record<string, unknown> = { ...oldSpec };
    if (kindChanged) for (const f of ['threshold', 'min_count', 'baseline_window_s', 'group_by', 'send_resolved']) delete base[f];
    const spec = await checkRule(req, merge ? { ...base, ...raw } : raw, old);
    const r: Rule = { ...spec, id: old.id, created_at: old.created_at, created_by: old.created_by, updated_at: Date.now() };
    await store.updateRule(r);
    await svc.ruleChanged(r.id, r);
    await audit(req.principal, 'update', 'alert_rule', r.id, r.project_id, { name: r.name, kind: r.kind, enabled: r.enabled });
    return ruleView(r);
  };
  app.put('/monitoring/alert-rules/:id', admin, updateRule(false));
  app.patch('/monitoring/alert-rules/:id', admin, updateRule(true));

  app.delete('/monitoring/alert-rules/:id', admin, async (req, reply) => {
    const r = await visibleRule(req);
    await store.deleteRule(r.id);
    await svc.ruleChanged(r.id, undefined);
    await audit(req.principal, 'delete', 'alert_rule', r.id, r.project_id, { name: r.name, kind: r.kind });
    return reply.code(204).send();
  });

  // ---- silences ----

  const visibleSilence = async (req: FastifyRequest): Promise<Silence> => {
    const { id } = req.params as { id: string };
    const s = await store.getSilence(id);
    if (!s || !canSee(req.principal, s.project_id)) throw notFound('silence', id);
    return s;
  };

  app.get('/monitoring/silences', admin, async (req) => {
    const errors: FieldError[] = [];
    const q = checkQuery(req, ['project_id', 'active'], errors);
    const scope = listScope(req, errors);
    const active = asBool(q.active, 'active', errors);
    if (errors.length) throw badRequest(errors);
    const now = Date.now();
    const list = (await store.listSilences(scope.projects, scope.includeGlobal)).filter((s) => active === undefined || isActive(s, now) === active);
    return { silences: list.map((s) => silenceView(s, now)) };
  });

  app.post('/monitoring/silences', { config: { ...admin.config, docs: { body: SilenceInput } } }, async (req, reply) => {
    const now = Date.now();
    const v = validateSilence(bodyObject(req.body), now);
    if (!v.ok) throw badRequest(v.errors);
    const spec = v.spec;
    spec.project_id = targetProject(req.principal, spec.project_id);
    if (spec.project_id) spec.matchers.project_id = spec.project_id;
    if (Object.keys(spec.matchers).length === 0) throw badRequest([{ field: 'matchers', message: 'needs at least one matcher' }]);
    const id = `sil_${newEventId(now).replace(/-/g, '')}`;
    await store.insertSilence(id, spec, req.principal.name, now);
    await audit(req.principal, 'create', 'alert_silence', id, spec.project_id, { matchers: spec.matchers, ends_at: iso(spec.ends_at), comment: spec.comment });
    return reply.code(201).send(silenceView((await store.getSilence(id))!, now));
  });

  app.get('/monitoring/silences/:id', admin, async (req) => silenceView(await visibleSilence(req)));

  app.delete('/monitoring/silences/:id', admin, async (req) => {
    const s = await visibleSilence(req);
    const now = Date.now();
    await store.expireSilence(s.id, now);
    await audit(req.principal, 'delete', 'alert_silence', s.id, s.project_id, { matchers: s.matchers });
    return silenceView((await store.getSilence(s.id))!, now);
  });

  // ---- history ----

  app.get('/monitoring/alerts', read, async (req) => {
    const errors: FieldError[] = [];
    const q = checkQuery(req, ['project_id', 'rule_id', 'group_id', 'state', 'from', 'to', 'limit', 'cursor'], errors);
    const scope = listScope(req, errors);
    const state = asSingle(q.state, 'state', errors);
    if (state && !['firing', 'resolved', 'silenced'].includes(state)) errors.push({ field: 'state', message: 'must be firing, resolved or silenced' });
    const limit = asInt(q.limit, 'limit', 1, 500, errors) ?? 100;
    const cursorRaw = asSingle(q.cursor, 'cursor', errors);
    let before: { t: number; id: string } | undefined;
    if (cursorRaw) {
      try {
        const c = JSON.parse(Buffer.from(cursorRaw, 'base64url').toString('utf8')) as { t: unknown; i: unknown };
        if (typeof c.t !== 'number' || typeof c.i !== 'string') throw new Error('bad');
        before = { t: c.t, id: c.i };
      } catch {
        errors.push({ field: 'cursor', message: 'is not a cursor this API gave out' });
      }
    }
    const from = asTime(q.from, 'from', errors);
    const to = asTime(q.to, 'to', errors);
    const ruleId = asSingle(q.rule_id, 'rule_id', errors);
    const groupId = asSingle(q.group_id, 'group_id', errors);
    if (errors.length) throw badRequest(errors);
    const rows = await store.listNotifications({
      projects: scope.projects, ruleId, groupId, state: state as NotificationState | undefined, from, to, before, limit: limit + 1,
    });
    const more = rows.length > limit;
    if (more) rows.length = limit;
    const deliveries = await store.deliveriesOf(rows.map((r) => r.id));
    const byN = new Map<string, Delivery[]>();
    for (const d of deliveries) byN.set(d.notification_id, [...(byN.get(d.notification_id) ?? []), d]);
    const last = rows.at(-1);
    return {
      alerts: rows.map((r) => alertView(r, byN.get(r.id) ?? [])),
      next_cursor: more && last ? Buffer.from(JSON.stringify({ t: last.created_at, i: last.id })).toString('base64url') : null,
    };
  });

  app.get('/monitoring/alerts/:id', read, async (req) => {
    const { id } = req.params as { id: string };
    const n = await store.getNotification(id);
    if (!n || !mayAccessProject(req.principal, n.project_id)) throw notFound('alert', id);
    return alertView(n, await store.deliveriesOf([n.id]));
  });

  app.get('/monitoring/alert-groups', read, async (req) => {
    const errors: FieldError[] = [];
    const q = checkQuery(req, ['project_id', 'state', 'rule_id', 'limit'], errors);
    const scope = listScope(req, errors);
    const state = asSingle(q.state, 'state', errors);
    if (state && state !== 'firing' && state !== 'resolved') errors.push({ field: 'state', message: 'must be firing or resolved' });
    const limit = asInt(q.limit, 'limit', 1, 1000, errors) ?? 200;
    const ruleId = asSingle(q.rule_id, 'rule_id', errors);
    if (errors.length) throw badRequest(errors);
    const groups = await store.listGroups(scope.projects, state as 'firing' | 'resolved' | undefined, ruleId, limit);
    const acks = await svc.acks.getMany(groups.map((g) => g.id));
    return { groups: groups.map((g) => groupView(g, acks.get(g.id))) };
  });

  const visibleGroup = async (req: FastifyRequest): Promise<AlertGroup> => {
    const { id } = req.params as { id: string };
    const g = await store.getGroup(id);
    if (!g || !mayAccessProject(req.principal, g.project_id)) throw notFound('alert group', id);
    return g;
  };

  app.get('/monitoring/alert-groups/:id', read, async (req) => {
    const g = await visibleGroup(req);
    const rule = await store.getRule(g.rule_id);
    return { ...groupView(g, await svc.acks.get(g.id)), rule_name: rule?.name ?? null };
  });

  // acknowledged: no repeats for the rest of this firing episode (it resolves, or the next one starts fresh)
  app.post('/monitoring/alert-groups/:id/ack', admin, async (req) => {
    const g = await visibleGroup(req);
    if (g.state !== 'firing') throw new HttpError(409, 'not_firing', `alert group ${g.id} is not firing; only a firing group can be acknowledged`);
    const now = Date.now();
    const ack: Ack = { group_id: g.id, episode_start: g.episode_start, acknowledged_at: now, acknowledged_by: req.principal.name };
    await svc.acks.ack(ack);
    await audit(req.principal, 'acknowledge', 'alert_group', g.id, g.project_id, { rule_id: g.rule_id, labels: g.labels });
    return groupView(g, ack);
  });

  // ---- in-app notifications ----

  app.get('/monitoring/notifications', read, async (req) => {
    const errors: FieldError[] = [];
    const q = checkQuery(req, ['project_id', 'unread', 'limit'], errors);
    const scope = listScope(req, errors);
    const unread = asBool(q.unread, 'unread', errors) ?? false;
    const limit = asInt(q.limit, 'limit', 1, 500, errors) ?? 50;
    if (errors.length) throw badRequest(errors);
    const [list, unreadCount] = await Promise.all([store.listUi(scope.projects, unread, limit), store.countUnread(scope.projects)]);
    return { notifications: list.map(uiView), unread: unreadCount };
  });

  app.post('/monitoring/notifications/:id/read', read, async (req) => {
    const { id } = req.params as { id: string };
    const u = await store.getUi(id);
    if (!u || !mayAccessProject(req.principal, u.project_id)) throw notFound('notification', id);
    await store.markUiRead(id, Date.now());
    return uiView((await store.getUi(id))!);
  });

  // the project in the query (or an optional body {project_id}); nothing else is accepted, so a
  // body meant for another route is refused rather than ignored
  app.post('/monitoring/notifications/read-all', read, async (req) => {
    const errors: FieldError[] = [];
    checkQuery(req, ['project_id'], errors);
    const body = req.body === undefined || req.body === null ? {} : bodyObject(req.body);
    for (const k of Object.keys(body)) if (k !== 'project_id') errors.push({ field: k, message: 'is not a known field' });
    if (body.project_id !== undefined) {
      if (typeof body.project_id !== 'string') errors.push({ field: 'project_id', message: 'must be a string' });
      else (req.query as Record<string, unknown>).project_id ??= body.project_id;
    }
    if (errors.length) throw badRequest(errors);
    const scope = listScope(req, errors);
    const marked = await store.markAllUiRead(scope.projects, Date.now());
    return { marked, unread: await store.countUnread(scope.projects) };
  });

  const streams = new Set<FastifyReply>();
  app.addHook('preClose', async () => {
    for (const r of streams) r.raw.end();
    streams.clear();
  });

  app.get('/monitoring/notifications/stream', read, async (req, reply) => {
    const errors: FieldError[] = [];
    checkQuery(req, ['project_id'], errors);
    const scope = listScope(req, errors);
    if (errors.length) throw badRequest(errors);
    const allowed = scope.projects ? new Set(scope.projects) : undefined;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    raw.write(': connected\n\n');
    streams.add(reply);
    const onNotification = (u: UiNotification) => {
      if (allowed && !allowed.has(u.project_id)) return;
      raw.write(`id: ${u.id}\nevent: notification\ndata: ${JSON.stringify(uiView(u))}\n\n`);
    };
    svc.uiEvents.on('notification', onNotification);
    const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), opts.heartbeatMs ?? 15_000);
    const unwatch = watchKey(opts.keys, req, () => raw.end('event: key_revoked\ndata: {}\n\n'));
    const cleanup = () => {
      clearInterval(heartbeat);
      unwatch();
      svc.uiEvents.off('notification', onNotification);
      streams.delete(reply);
    };
    req.raw.on('close', cleanup);
    raw.on('close', cleanup);
  });
}
