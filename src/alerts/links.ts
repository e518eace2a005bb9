// The dashboard's address of each thing an alert can point at: one URL shape per view, used by the
// dashboard's own links (web/src/router.ts builds on these) and by every alert payload, prefixed
// with MONITORING_PUBLIC_URL. Pure, no imports: the dashboard bundles this file as it is.

function hash(view: string, params: Record<string, string>): string {
  return `#/${view}?${new URLSearchParams(params).toString()}`;
}

/** One error group of a project: the Errors view with that group open. */
export function errorGroupPath(project: string, fingerprint: string): string {
  return hash('errors', { project, fp: fingerprint });
}

/** One alert group (rule + project + labels): the Alerts view with that group open. */
export function alertGroupPath(project: string, groupId: string): string {
  return hash('alerts', { project, group: groupId });
}

/** The Alerts view (test messages, alerts without a group). */
export function alertsPath(project?: string | null): string {
  return project ? hash('alerts', { project }) : '#/alerts';
}
