// GET|PUT|DELETE /monitoring/projects/:project_id/forwarding — a project's Sentry and Datadog
// targets (admin). Secrets are never returned in full; every change is audited (masked).
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { badRequest, HttpError } from '../http/errors.js';
import { projectParam } from '../collector/settings-http.js';
import type { AdminActionRecorder } from '../audit/admin-actions.js';
import { ForwardingBody, maskForwarding, mergeForwardingSecrets, validateForwarding, type ForwardingConfig } from './config.js';
import type { ForwardingService } from './service.js';
import { guardForwardingTargets } from './targets.js';

export interface ForwardingRouteOptions {
  forwarding: ForwardingService;
  recordAdminAction: AdminActionRecorder;
}

const Params = Type.Object({ project_id: Type.String() });

export async function forwardingRoutes(app: FastifyInstance, opts: ForwardingRouteOptions): Promise<void> {
  const { forwarding } = opts;
  const view = async (project: string) => {
    const stored = await forwarding.store.get(project);
    return {
      project_id: project,
      ...maskForwarding(stored?.config ?? {}),
      updated_at: stored ? new Date(stored.updated_at).toISOString() : null,
      updated_by: stored?.updated_by ?? null,
      status: await forwarding.store.status(project),
    };
  };

  app.get('/monitoring/projects/:project_id/forwarding', {
    config: { scope: 'admin' },
    schema: { params: Params, summary: 'A project\'s forwarding targets (secrets masked) and outbox counts' },
  }, async (req) => view(projectParam(req)));

  // validated by hand (validateForwarding: DSN, URLs and the filter too), so the schema is docs only;
  // the endpoints then pass the URL guard, as alert channel targets do
  app.put('/monitoring/projects/:project_id/forwarding', {
    config: { scope: 'admin', docs: { body: ForwardingBody } },
    schema: { params: Params, summary: 'Set the targets; a masked secret sent back keeps the stored one' },
  }, async (req) => {
    const project = projectParam(req);
    const v = validateForwarding(req.body ?? {});
    if (!v.ok) throw badRequest(v.errors);
    const prev = await forwarding.store.get(project);
    const next: ForwardingConfig = mergeForwardingSecrets({ sentry: v.value.sentry ?? null, datadog: v.value.datadog ?? null }, prev?.config);
    const refused = await guardForwardingTargets(next, forwarding.allowPrivateTargets);
    if (refused.length) throw badRequest(refused);
    await forwarding.store.put(project, next, req.principal.name, Date.now());
    await forwarding.reload();
    await opts.recordAdminAction(req.principal, 'update_forwarding', { project_id: project, kind: 'forwarding', id: project }, { forwarding: maskForwarding(next) });
    return view(project);
  });

  app.delete('/monitoring/projects/:project_id/forwarding', {
    config: { scope: 'admin' },
    schema: { params: Params, summary: 'Stop forwarding; what is queued fails as no longer configured' },
  }, async (req, reply) => {
    const project = projectParam(req);
    if (!(await forwarding.store.remove(project))) throw new HttpError(404, 'not_found', `project ${project} forwards nowhere`);
    await forwarding.reload();
    await opts.recordAdminAction(req.principal, 'delete_forwarding', { project_id: project, kind: 'forwarding', id: project });
    return reply.code(204).send();
  });
}
