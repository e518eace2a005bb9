// The generated events and the query shapes of bench/query, shared with bench/cluster.
import { newEventId } from '../src/ids.js';
import { ACTIONS, ENGINES, ERRORS, PLATFORMS } from './common.js';

export const DAY = 86_400_000;

/** A SELECT of `n` events from row `off` of a `rows`-event data set ending 7 days after `start`:
 *  everything derives from the row number, so runs are comparable (see bench/query.ts). */
export function eventsSelect(rows: number, off: number, n: number, start: number): string {
  return `
      SELECT
        concat('ev-', toString(number)) AS id,
        ${start} + intDiv(number * ${7 * DAY}, ${rows}) AS timestamp,
        ${start} + intDiv(number * ${7 * DAY}, ${rows}) + 50 AS received_at,
        concat('pf_', toString(cityHash64(intDiv(number, 20), 1) % 50)) AS project_id, -- a session stays in one project
        if(err, 'action_error', 'execution') AS event_type,
        ['execution','validation','vault','platform_builder','feedback_loop','engine_control'][1 + cityHash64(number, 2) % 6] AS engine,
        '' AS triggered_by,
        concat('flow_', toString(cityHash64(number, 3) % 200)) AS flow_id,
        concat('sess_', toString(intDiv(number, 20))) AS session_id,
        concat('user_', toString(cityHash64(number, 4) % 5000)) AS user_id,
        concat('trace_', toString(intDiv(number, 5))) AS trace_id,
        '' AS span_id,
        ['Slack','Notion','Gmail','HubSpot','Stripe','Airtable'][1 + p] AS platform,
        ['send_message','create_page','send_email','update_contact','charge','append_row'][1 + p] AS action,
        if(err, 'error', 'success') AS status,
        if(err, 'high', 'info') AS severity,
        if(err, ['api_timeout','token_expired','rate_limited','validation_failed','not_found'][1 + cityHash64(number, 5) % 5], '') AS error_type,
        if(err, concat('Failed to call ', ['Slack','Notion','Gmail','HubSpot','Stripe','Airtable'][1 + p], ' after ', toString(cityHash64(number, 6) % 5000), ' ms'), 'ok') AS message,
        '' AS stack,
        toFloat64(20 + (cityHash64(number, 7) % 3000) * (cityHash64(number, 8) % 100) / 100) AS duration_ms,
        toUInt32(if(err, cityHash64(number, 9) % 4, 0)) AS retries,
        if(err, lower(hex(cityHash64(p, cityHash64(number, 5) % 5))), '') AS fingerprint,
        0 AS alert,
        0 AS sampled,
        ['region'] AS attr_keys,
        [['eu','us','ap'][1 + cityHash64(number, 10) % 3]] AS attr_values
      FROM (SELECT number, cityHash64(number, 11) % 100 < 8 AS err, cityHash64(number, 12) % 6 AS p
            FROM numbers(${off}, ${n}))`;
}

/** A cheap integer hash (the SQL generator uses cityHash64; any well-mixed hash gives the same shapes). */
function h(n: number, salt: number): number {
  let x = (Math.imul(n ^ (n >>> 16), 0x45d9f3b) + Math.imul(salt, 0x9e3779b1)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** Event number → event, as eventsSelect()'s SQL makes it (same projects, sessions, traces, users, errors). */
export function eventAt(n: number, rows: number, start: number): Record<string, unknown> {
  const err = h(n, 11) % 100 < 8;
  const p = h(n, 12) % 6;
  const ts = start + Math.floor((n * 7 * DAY) / rows);
  const e: Record<string, unknown> = {
    id: newEventId(ts),
    timestamp: ts,
    project_id: `pf_${h(Math.floor(n / 20), 1) % 50}`,
    event_type: err ? 'action_error' : 'execution',
    engine: ENGINES[h(n, 2) % 6],
    flow_id: `flow_${h(n, 3) % 200}`,
    session_id: `sess_${Math.floor(n / 20)}`,
    user_id: `user_${h(n, 4) % 5000}`,
    trace_id: `trace_${Math.floor(n / 5)}`,
    platform: PLATFORMS[p],
    action: ACTIONS[p],
    status: err ? 'error' : 'success',
    severity: err ? 'high' : 'info',
    message: err ? `Failed to call ${PLATFORMS[p]} after ${h(n, 6) % 5000} ms` : 'ok',
    duration_ms: 20 + ((h(n, 7) % 3000) * (h(n, 8) % 100)) / 100,
    retries: err ? h(n, 9) % 4 : 0,
    attributes: { region: ['eu', 'us', 'ap'][h(n, 10) % 3] },
  };
  if (err) e.error_type = ERRORS[h(n, 5) % 5];
  return e;
}

export interface Shape {
  name: string;
  path: () => string;
}

export function shapes(end: number): Shape[] {
  const r = (n: number) => Math.floor(Math.random() * n);
  const p = () => `pf_${r(50)}`;
  const day = `from=${end - DAY}&to=${end}`;
  const week = `from=${end - 7 * DAY}&to=${end}`;
  return [
    { name: 'logs: latest 100 of a project', path: () => `/monitoring/logs?project_id=${p()}` },
    { name: 'logs: errors on one platform, 1 day', path: () => `/monitoring/logs?project_id=${p()}&status=error&platform=Slack&${day}` },
    { name: 'logs: text search q, 1 day', path: () => `/monitoring/logs?project_id=${p()}&q=after%20${r(5000)}%20ms&${day}` },
    { name: 'logs: attribute filter, 1 day', path: () => `/monitoring/logs?project_id=${p()}&attr.region=eu&${day}` },
    { name: 'logs: query text and fields, 1 day', path: () => `/monitoring/logs?project_id=${p()}&${day}&query=${encodeURIComponent(`platform:Slack "after ${r(5000)} ms"`)}` },
    { name: 'logs: query OR, NOT, comparison, 1 day', path: () => `/monitoring/logs?project_id=${p()}&${day}&query=${encodeURIComponent('status:error platform:(Slack OR Notion) -error_type:not_found duration_ms:>1000')}` },
    { name: 'logs/count: query, 7 days', path: () => `/monitoring/logs/count?project_id=${p()}&${week}&query=${encodeURIComponent('error_type:api_timeout|rate_limited attr.region:eu')}` },
    { name: 'errors: query search, 7 days', path: () => `/monitoring/errors?project_id=${p()}&${week}&query=${encodeURIComponent('platform:Slack timeout*')}` },
    { name: 'logs: one user, 7 days', path: () => `/monitoring/logs?project_id=${p()}&user_id=user_${r(5000)}&${week}` },
    { name: 'logs: one trace (no project)', path: () => `/monitoring/logs?trace_id=trace_${r(100_000)}` },
    { name: 'logs: one session', path: () => `/monitoring/logs?session_id=sess_${r(50_000)}&order=asc` },
    { name: 'errors: groups of a project, 7 days', path: () => `/monitoring/errors?project_id=${p()}&${week}` },
    { name: 'errors: groups of a project, 1 day', path: () => `/monitoring/errors?project_id=${p()}&${day}` },
    { name: 'performance: by platform,action, 7 days', path: () => `/monitoring/performance?project_id=${p()}&group_by=platform,action&${week}` },
    { name: 'performance: by flow_id, 1 day', path: () => `/monitoring/performance?project_id=${p()}&group_by=flow_id&${day}` },
    { name: 'timeseries: p95 by platform, 7 days', path: () => `/monitoring/timeseries?project_id=${p()}&metric=p95&group_by=platform&${week}` },
    { name: 'sessions: replay one session', path: () => `/monitoring/sessions/sess_${r(50_000)}` },
    { name: 'audit: a user\'s timeline, 7 days', path: () => `/monitoring/audit?project_id=${p()}&user_id=user_${r(5000)}&${week}` },
  ];
}

