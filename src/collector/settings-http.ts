// GET|PUT /monitoring/projects/:project_id/settings — redaction rules and the flood ceiling.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError, badRequest } from '../http/errors.js';
import { mayAccessProject } from '../auth/principal.js';
import type { EngineDeps } from '../engine-deps.js';
import { ProjectSettingsSchema, type ProjectSettings } from './project-settings.js';
import { RedactionRuleError } from './redact.js';

const PROJECT = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The :project_id of a per-project admin route, checked against the caller's projects. */
export function projectParam(req: FastifyRequest): string {
  const { project_id } = req.params as { project_id: string };
  if (!PROJECT.test(project_id)) throw badRequest([{ field: 'project_id', message: 'must match [A-Za-z0-9_.:-]{1,128}' }]);
  if (!mayAccessProject(req.principal, project_id)) throw new HttpError(403, 'forbidden', `this key may not manage project ${project_id}`);
  return project_id;
}

export async function settingsRoutes(app: FastifyInstance, deps: EngineDeps): Promise<void> {
  app.get('/monitoring/projects/:project_id/settings', { config: { scope: 'admin' } }, async (req) => {
    return deps.projectSettings.get(projectParam(req));
  });

  app.put('/monitoring/projects/:project_id/settings', { config: { scope: 'admin' }, schema: { body: ProjectSettingsSchema } }, async (req) => {
    const id = projectParam(req);
    const before = deps.projectSettings.get(id).retention_days ?? null;
    let saved: ProjectSettings;
    try {
      saved = await deps.projectSettings.put(id, req.body as ProjectSettings, req.principal.name);
    } catch (e) {
      throw badRequest([{ field: e instanceof RedactionRuleError ? e.field : 'redaction', message: (e as Error).message }]);
    }
    await deps.recordAdminAction(req.principal, 'update_settings', { project_id: id, kind: 'project_settings', id }, { settings: saved });
    const after = saved.retention_days ?? null;
    // how long data is kept is a decision of its own in the audit trail, with both values
    if (after !== before) {
      await deps.recordAdminAction(req.principal, 'update_retention', { project_id: id, kind: 'retention', id }, {
        from_days: before ?? `default (${deps.config.retentionDays})`, to_days: after ?? `default (${deps.config.retentionDays})`,
      });
    }
    return saved;
  });
}
