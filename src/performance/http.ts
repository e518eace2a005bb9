// Performance Monitor routes: /monitoring/performance, /monitoring/timeseries, /monitoring/load,
// and the engine's own /metrics in Prometheus text format.
import type { FastifyInstance } from 'fastify';
import type { FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import { administersAll } from '../auth/principal.js';
import type { EngineDeps } from '../engine-deps.js';
import type { Admission } from '../collector/admission.js';
import { writePathMetrics, writePathSummary } from '../wal/metrics.js';
import { readFilter } from '../query/http.js';
import { asInt, asSingle } from '../query/filters.js';
import { autoInterval } from '../aggregator/queries.js';
import { range } from '../aggregator/http.js';
import { DEFAULT_SPIKE, GROUP_DIMENSIONS, load, METRICS, performance, timeseries, type Dimension, type Metric } from './queries.js';

function parseGroupBy(raw: unknown, errors: FieldError[]): Dimension[] {
  const s = asSingle(raw, 'group_by', errors);
  if (!s) return [];
  const dims = s.split(',').map((d) => d.trim()).filter(Boolean);
  if (dims.length > 3) errors.push({ field: 'group_by', message: 'at most 3 dimensions' });
  for (const d of dims) {
    if (!(GROUP_DIMENSIONS as readonly string[]).includes(d)) errors.push({ field: 'group_by', message: `${d.slice(0, 40)} is not one of ${GROUP_DIMENSIONS.join(', ')}` });
  }
  return [...new Set(dims)] as Dimension[];
}

export async function performanceRoutes(app: FastifyInstance, deps: EngineDeps & { admission?: Admission }): Promise<void> {
  const { events, limiter, writePath, collector } = deps;

  app.get('/monitoring/performance', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const f = readFilter(req, ['group_by', 'spike_window', 'spike_baseline', 'spike_factor', 'limit'], errors);
    if (!f.eq.event_type) f.excludeAudit = true;
    const groupBy = parseGroupBy(q.group_by ?? 'platform,action', errors);
    const windowS = asInt(q.spike_window, 'spike_window', 10, 86400, errors);
    const baselineS = asInt(q.spike_baseline, 'spike_baseline', 10, 30 * 86400, errors);
    const factorRaw = asSingle(q.spike_factor, 'spike_factor', errors);
    const factor = factorRaw === undefined ? DEFAULT_SPIKE.factor : Number(factorRaw);
    if (!(factor > 1 && factor <= 1000)) errors.push({ field: 'spike_factor', message: 'must be a number above 1 and at most 1000' });
    const limit = asInt(q.limit, 'limit', 1, 1000, errors) ?? 100;
    if (errors.length) throw badRequest(errors);
    const r = range(f);
    const spike = { ...DEFAULT_SPIKE, factor, windowMs: (windowS ?? 300) * 1000, baselineMs: (baselineS ?? 3600) * 1000 };
    const groups = await limiter(() => performance(events, f, groupBy, r, spike, limit));
    return { from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), group_by: groupBy, groups };
  });

  app.get('/monitoring/timeseries', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const f = readFilter(req, ['metric', 'interval', 'group_by'], errors);
    if (!f.eq.event_type) f.excludeAudit = true;
    const metric = (asSingle(q.metric, 'metric', errors) ?? 'count') as Metric;
    if (!METRICS.includes(metric)) errors.push({ field: 'metric', message: `must be one of ${METRICS.join(', ')}` });
    const groupBy = parseGroupBy(q.group_by, errors);
    const intervalS = asInt(q.interval, 'interval', 1, 30 * 86400, errors);
    if (errors.length) throw badRequest(errors);
    const r = range(f);
    const interval = intervalS ? intervalS * 1000 : autoInterval(r.from, r.to, 500);
    if ((r.to - r.from) / interval > 5000) throw badRequest([{ field: 'interval', message: 'gives more than 5000 points; choose a longer interval' }]);
    const series = await limiter(() => timeseries(events, f, metric, groupBy, r, interval));
    return { metric, interval_s: interval / 1000, from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), series };
  });

  app.get('/monitoring/load', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const f = readFilter(req, ['window'], errors);
    const windowS = asInt(q.window, 'window', 10, 3600, errors) ?? 300;
    if (errors.length) throw badRequest(errors);
    const l = await limiter(() => load(events, f, windowS * 1000));
    // the engine's own counters cover every tenant: only for a caller who administers them all
    if (!administersAll(req.principal)) return { window_s: windowS, ...l };
    return {
      window_s: windowS,
      ...l,
      ingest: {
        ...writePathSummary(writePath),
        accepted: collector.stats.accepted,
        rejected: collector.stats.rejected,
        running_queries: limiter.running,
      },
    };
  });

  app.get('/metrics', { config: { scope: 'admin' } }, async (req, reply) => {
    if (!administersAll(req.principal)) throw new HttpError(403, 'forbidden', 'the engine\'s metrics cover every project: they need an admin key for every project');
    const mem = process.memoryUsage();
    // embedded only: a server's figure is the server's, not this process's
    const storageMemory = events.transport.name === 'chdb'
      ? await events.query<{ v: number }>("SELECT value AS v FROM system.metrics WHERE metric = 'MemoryTracking'", {}, { timeoutMs: 1000 })
        .then((r) => Number(r[0]?.v ?? 0), () => undefined)
      : undefined;
    const lines = [
      '# HELP puraify_monitoring_events_accepted_total Events accepted by ingest.',
      '# TYPE puraify_monitoring_events_accepted_total counter',
      `puraify_monitoring_events_accepted_total ${collector.stats.accepted}`,
      '# HELP puraify_monitoring_events_rejected_total Events rejected by validation.',
      '# TYPE puraify_monitoring_events_rejected_total counter',
      `puraify_monitoring_events_rejected_total ${collector.stats.rejected}`,
      '# HELP puraify_monitoring_attributes_dropped_total Attributes dropped over the per-event limit.',
      '# TYPE puraify_monitoring_attributes_dropped_total counter',
      `puraify_monitoring_attributes_dropped_total ${collector.stats.droppedAttributes}`,
      ...writePathMetrics(writePath, deps.admission),
      '# HELP puraify_monitoring_running_queries Queries running now.',
      '# TYPE puraify_monitoring_running_queries gauge',
      `puraify_monitoring_running_queries ${limiter.running}`,
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${process.memoryUsage.rss()}`,
      '# HELP nodejs_heap_used_bytes JavaScript heap in use (live objects and garbage not yet collected).',
      '# TYPE nodejs_heap_used_bytes gauge',
      `nodejs_heap_used_bytes ${mem.heapUsed}`,
      '# HELP nodejs_external_memory_bytes Memory of Buffers and other objects outside the JavaScript heap.',
      '# TYPE nodejs_external_memory_bytes gauge',
      `nodejs_external_memory_bytes ${mem.external}`,
      ...(storageMemory === undefined ? [] : [
        '# HELP puraify_monitoring_storage_memory_bytes Memory the embedded storage engine (chDB, in this process) tracks as in use.',
        '# TYPE puraify_monitoring_storage_memory_bytes gauge',
        `puraify_monitoring_storage_memory_bytes ${storageMemory}`,
      ]),
    ];
    return reply.type('text/plain; version=0.0.4').send(lines.join('\n') + '\n');
  });
}
