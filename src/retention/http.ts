// GET /monitoring/projects/:project_id/usage — events and bytes per day, and the retention in force.
// POST /monitoring/retention/run — runs the retention job now (operators; keys that see every project).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseTime, type FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import { mayAccessProject } from '../auth/principal.js';
import { asSingle } from '../query/filters.js';
import type { EventStore } from '../storage/event-store.js';
import type { ProjectSettingsStore } from '../collector/project-settings.js';
import { DAY_MS } from './policy.js';
import { projectUsage } from './usage.js';
import type { RetentionJob } from './job.js';

const PROJECT = /^[A-Za-z0-9_.:-]{1,128}$/;

export interface RetentionRouteOptions {
  events: EventStore;
  projectSettings: ProjectSettingsStore;
  retention: RetentionJob;
  defaultDays: number;
  limiter: <T>(fn: () => Promise<T>) => Promise<T>;
}

function time(req: FastifyRequest, field: 'from' | 'to', errors: FieldError[]): number | undefined {
  const raw = asSingle((req.query as Record<string, unknown>)[field], field, errors);
  if (raw === undefined) return undefined;
  const t = parseTime(raw);
  if (t === undefined) errors.push({ field, message: 'must be an ISO 8601 time or epoch milliseconds' });
  return t;
}

export async function retentionRoutes(app: FastifyInstance, o: RetentionRouteOptions): Promise<void> {
  app.get('/monitoring/projects/:project_id/usage', { config: { scope: 'read' } }, async (req) => {
    const { project_id } = req.params as { project_id: string };
    if (!PROJECT.test(project_id)) throw badRequest([{ field: 'project_id', message: 'must match [A-Za-z0-9_.:-]{1,128}' }]);
    if (!mayAccessProject(req.principal, project_id)) throw new HttpError(403, 'forbidden', `this key may not read project ${project_id}`);
    const errors: FieldError[] = [];
    const days = o.projectSettings.get(project_id).retention_days ?? o.defaultDays;
    const to = time(req, 'to', errors) ?? Date.now() + DAY_MS;
    const from = time(req, 'from', errors) ?? to - (days + 1) * DAY_MS;
    if (!errors.length && from >= to) errors.push({ field: 'from', message: 'must be before to' });
    if (errors.length) throw badRequest(errors);
    const list = await o.limiter(() => projectUsage(o.events, project_id, from, to));
    return {
      project_id,
      retention_days: days,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      days: list,
      total: { events: list.reduce((n, d) => n + d.events, 0), bytes: list.reduce((n, d) => n + d.bytes, 0), raw_bytes: list.reduce((n, d) => n + d.raw_bytes, 0) },
    };
  });

  app.post('/monitoring/retention/run', { config: { scope: 'admin' } }, async (req) => {
    // the job runs for every project: only a caller that sees them all may start it
    if (req.principal.projects !== '*') throw new HttpError(403, 'forbidden', 'running retention needs a key for every project');
    return o.retention.run();
  });
}
