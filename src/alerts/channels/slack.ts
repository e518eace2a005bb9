// Slack incoming-webhook sender: a Block Kit message built from a Notification.
// Event text is tenant/end-user controlled, so everything that goes into mrkdwn is escaped
// (&, <, > per Slack's rules), which also keeps `<!channel>` and `<url|label>` injections inert.
// Slack limits honoured by truncation: header plain_text ≤ 150, section text ≤ 3000, ≤ 10 fields
// of ≤ 2000 each, context ≤ 10 elements, button text ≤ 75, button url ≤ 3000, fallback text ≤ 3000.
import type { DeliveryResult, Notification, SlackConfig } from './types.js';
import { postJson } from './webhook.js';
import type { PinnedAddress } from './url-guard.js';

export const SLACK_LIMITS = {
  headerText: 150,
  sectionText: 3000,
  fields: 10,
  fieldText: 2000,
  contextElements: 10,
  contextText: 2000,
  buttonText: 75,
  buttonUrl: 3000,
  fallbackText: 3000,
} as const;

type PlainText = { type: 'plain_text'; text: string; emoji?: boolean };
type Mrkdwn = { type: 'mrkdwn'; text: string };
export type SlackBlock =
  | { type: 'header'; text: PlainText }
  | { type: 'section'; text?: Mrkdwn; fields?: Mrkdwn[] }
  | { type: 'context'; elements: Mrkdwn[] }
  | { type: 'actions'; elements: { type: 'button'; text: PlainText; url: string; action_id: string; style?: 'primary' | 'danger' }[] };
export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

const SEVERITY_EMOJI: Record<string, string> = {
  critical: '🔴',
  high: '🟠',
  medium: '🟡',
  warning: '⚠️',
  low: '🔵',
  info: 'ℹ️',
  debug: '⚪',
};

/** Pure: the Block Kit payload for one notification. */
export function buildSlackMessage(n: Notification): SlackMessage {
  const sev = (n.severity || 'unknown').toLowerCase();
  const icon = n.state === 'resolved' ? '✅' : n.state === 'test' ? '🧪' : (SEVERITY_EMOJI[sev] ?? '🔔');
  const stateWord = n.state === 'resolved' ? 'Resolved' : n.state === 'test' ? 'Test' : sev.toUpperCase();
  const title = oneLine(n.title) || '(no title)';

  const blocks: SlackBlock[] = [];
  blocks.push({
    type: 'header',
    text: { type: 'plain_text', text: truncate(`${icon} ${stateWord}: ${title}`, SLACK_LIMITS.headerText), emoji: true },
  });

  const facts: [string, string][] = [
    ['Severity', sev.toUpperCase()],
    ['Project', n.project_id],
    ['Count', String(n.count)],
    ['State', n.state],
    ['First seen', n.first_seen],
    ['Last seen', n.last_seen],
  ];
  for (const [k, v] of Object.entries(n.labels ?? {})) facts.push([k, v]);
  blocks.push({
    type: 'section',
    fields: facts.slice(0, SLACK_LIMITS.fields).map(([k, v]) => mrkdwn(`*${escapeMrkdwn(oneLine(k))}*\n${escapeMrkdwn(oneLine(v)) || '–'}`, SLACK_LIMITS.fieldText)),
  });

  const summary = (n.summary ?? '').trim();
  if (summary) blocks.push({ type: 'section', text: mrkdwn(escapeMrkdwn(summary), SLACK_LIMITS.sectionText) });

  const ctx = [`Rule: *${escapeMrkdwn(oneLine(n.rule_name) || n.rule_id)}*`, `Notification \`${escapeMrkdwn(oneLine(n.id))}\``];
  blocks.push({ type: 'context', elements: ctx.slice(0, SLACK_LIMITS.contextElements).map((t) => mrkdwn(t, SLACK_LIMITS.contextText)) });

  if (/^https?:\/\//i.test(n.link ?? '')) {
    blocks.push({
      type: 'actions',
      elements: [
        {
          type: 'button',
          text: { type: 'plain_text', text: truncate('Open in dashboard', SLACK_LIMITS.buttonText), emoji: true },
          url: n.link.slice(0, SLACK_LIMITS.buttonUrl),
          action_id: 'open_dashboard',
          ...(n.state === 'firing' && (sev === 'critical' || sev === 'high') ? { style: 'danger' as const } : {}),
        },
      ],
    });
  }

  const text = truncateEscaped(
    `${icon} [${stateWord}] ${escapeMrkdwn(n.project_id)}: ${escapeMrkdwn(title)} (${n.count}×)`,
    SLACK_LIMITS.fallbackText,
  );
  return { text, blocks };
}

export async function sendSlack(cfg: SlackConfig, n: Notification, opts: { timeoutMs?: number; pinned?: PinnedAddress } = {}): Promise<DeliveryResult> {
  return postJson(cfg.webhook_url, JSON.stringify(buildSlackMessage(n)), { timeoutMs: opts.timeoutMs, pinned: opts.pinned });
}

// ---- text helpers ---------------------------------------------------------------------------

/** Slack mrkdwn escaping: only &, < and > are control characters. */
export function escapeMrkdwn(s: string): string {
  return String(s ?? '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function mrkdwn(text: string, max: number): Mrkdwn {
  return { type: 'mrkdwn', text: truncateEscaped(text, max) || ' ' };
}

function oneLine(s: string | undefined): string {
  return String(s ?? '').replace(/\s+/g, ' ').trim();
}

/** At most `max` UTF-16 units, ending in '…' when cut, never splitting a surrogate pair. */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, max - 1);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** truncate() for already-escaped mrkdwn: also drops a half-cut `&amp;`-style entity. */
function truncateEscaped(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, max - 1);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  cut = cut.replace(/&[a-z]{0,4}$/, '');
  return `${cut}…`;
}
