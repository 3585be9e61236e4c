/**
 * What a notification looks like on the wire, in two kinds that never mix:
 *
 * - **Shared** messages, for the targets of `TOOLGATE_WEBHOOKS` (channels many people read) and
 *   the terminal of `toolgate dev`: the facts an approver needs (tool, risk, tenant, requester,
 *   reason, key arguments, deadline, digest) and the review URL, which needs approver sign-in.
 *   Their builders take no link argument and their types cannot hold one, so no code path can put
 *   a decision link into a shared channel.
 * - **Personal** messages, for one approver's own `notify` target: the same facts, the review URL
 *   and exactly one link, that approver's. Their builders take a single `ApprovalLink`.
 *
 * Each kind comes as a Slack-compatible message (text fallback plus Block Kit blocks) and as the
 * generic JSON event. Requester and approver text (reason, arguments, a rejection's reason) is
 * redacted with every rule on the whole text first, and only then shortened: a secret cut in half
 * would no longer match its rule.
 */
import { redactText, redactValue } from '../egress/redact.js';
import { describePrompt, flagsOnArgument, previewHeadline, previewView, provenanceKinds, provenanceView, type ProvenanceView } from '../approvals/view.js';
import type { ApprovalNotification } from './types.js';
import type { OverrideGrant, RequestLink } from '../shared/index.js';
import { outcomeSentence, type OutcomeDetails } from '../shared/outcome-details.js';

/** One approver's single-use decision link. */
export interface ApprovalLink {
  /** The approver's id: the only person this link is for. */
  approver: string;
  name?: string;
  email?: string;
  url: string;
  /** ISO time the link stops working. */
  expiresAt: string;
}

/** A notification that still asks for a decision: the only kind a personal message is built for. */
export type DecisionNotification = ApprovalNotification & { kind: Exclude<ApprovalNotification['kind'], 'outcome' | 'override'> };

/** Whether the notification asks for a decision (everything but `outcome`). */
export function isDecisionNotification(notification: ApprovalNotification): notification is DecisionNotification {
  // Only the groups asked to decide get links: not on the outcome, not on a break-glass notice to security.
  return notification.kind !== 'outcome' && notification.kind !== 'override';
}

/** A Slack block (layout blocks as the Slack Block Kit defines them). */
export type SlackBlock = Record<string, unknown>;

/** A message for a Slack incoming webhook (or any Slack-compatible receiver). */
export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
  unfurl_links: false;
  unfurl_media: false;
}

/** The JSON `type` of a notification kind. */
export type ApprovalEventType = `toolgate.approval.${ApprovalNotification['kind']}`;

/** How much of the arguments a message shows: the first fields, each value cut after redaction. */
export const KEY_ARGUMENT_LIMITS = Object.freeze({ fields: 8, valueChars: 200, nameChars: 60 });

/** One argument value as messages show it: scalars as they are, strings shortened, nested values as compact JSON text. */
export type ArgumentValue = string | number | boolean | null;

/** The arguments as messages show them: redacted, at most `KEY_ARGUMENT_LIMITS.fields` of them. */
export interface KeyArguments {
  shown: Record<string, ArgumentValue>;
  /** How many further fields the review page shows and the message does not. */
  omitted: number;
}

/** The longest rejection reason (after redaction) an outcome message repeats. */
const REASON_CHARS = 300;

/**
 * What every payload is built from: the notification's facts with the free text redacted, the
 * arguments reduced to `KeyArguments` (`args` and `argsOmitted`) and, on outcomes, `summary`.
 */
export type NotificationFacts = Omit<ApprovalNotification, 'args' | 'provenance' | 'preview'> & {
  /** The key arguments, redacted with every rule and shortened (see `keyArguments`). */
  args?: Record<string, ArgumentValue>;
  /** Fields of the arguments left out of `args`. */
  argsOmitted?: number;
  /** On outcomes: how the request ended in one sentence ("completed by svc-x, approved by maria"). */
  summary?: string;
  /** What the agent runtime says came from untrusted content, redacted (see `provenanceView`). */
  provenance?: ProvenanceView;
  /** The tool's dry-run preview approvers sign, redacted and shortened (see `PREVIEW_MESSAGE_CHARS`). */
  preview?: PreviewFacts;
  /** The break-glass grant of an override request: its reasons and the asker's reason redacted and shortened. */
  override?: OverrideGrant;
  /** The request this one overrides or rolls back: the reason redacted and shortened. */
  requestLink?: RequestLink;
};

/** A dry-run preview as messages show it. */
export interface PreviewFacts {
  /** `ok`: the tool answered; `failed` / `timed_out`: it did not, and the request waits for approval anyway. */
  status: 'ok' | 'failed' | 'timed_out';
  /** `preview (dry run)`, or with `failed` / `timed out`. */
  headline: string;
  /** The answer or why there is none: redacted, at most `PREVIEW_MESSAGE_CHARS` characters. */
  text: string;
  /** Cut here or by the tool's `preview.max_bytes`: the review page shows what the worker kept. */
  truncated: boolean;
}

/** The longest preview text a message carries (after redaction); the review page shows all of it. */
export const PREVIEW_MESSAGE_CHARS = 1500;

/**
 * The generic JSON event posted to shared `json=` targets: every fact, its type and
 * `audience: "shared"`. `links` and `link` are typed `never`: a shared event cannot carry one.
 */
export type SharedApprovalEvent = NotificationFacts & {
  type: ApprovalEventType;
  /** The message's headline, as Slack's header shows it (`BREAK-GLASS override requested: …` on an override). */
  subject: string;
  audience: 'shared';
  links?: never;
  link?: never;
};

/**
 * The generic JSON event posted to one approver's own `json=` target: every fact, its type,
 * `audience: "personal"` and that approver's link.
 */
export type PersonalApprovalEvent = NotificationFacts & {
  kind: DecisionNotification['kind'];
  type: ApprovalEventType;
  /** The message's headline, as Slack's header shows it. */
  subject: string;
  audience: 'personal';
  link: ApprovalLink;
};

/** Shortens text to `max` characters, marking the cut with an ellipsis. */
function plain(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

function compactValue(value: unknown): ArgumentValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return plain(value, KEY_ARGUMENT_LIMITS.valueChars);
  // JSON.stringify gives undefined for functions and symbols, which JSON arguments never hold.
  return plain(JSON.stringify(value) ?? typeof value, KEY_ARGUMENT_LIMITS.valueChars);
}

/**
 * The arguments as messages show them: the whole value redacted with every rule (secret-named
 * keys replaced whole), then the first `KEY_ARGUMENT_LIMITS.fields` fields, each value cut at
 * `valueChars` characters and nested values written as compact JSON.
 */
export function keyArguments(args: Record<string, unknown>): KeyArguments {
  // Redaction first, on everything: cutting first could split a secret so that no rule matches it.
  const redacted = redactValue(args).value as unknown;
  const entries = redacted !== null && typeof redacted === 'object' ? Object.entries(redacted) : [['value', redacted] as const];
  const shown: Record<string, ArgumentValue> = {};
  for (const [name, value] of entries.slice(0, KEY_ARGUMENT_LIMITS.fields)) shown[plain(name, KEY_ARGUMENT_LIMITS.nameChars)] = compactValue(value);
  return { shown, omitted: Math.max(0, entries.length - KEY_ARGUMENT_LIMITS.fields) };
}

function redactedOutcome(details: OutcomeDetails): OutcomeDetails {
  const out: OutcomeDetails = { status: details.status };
  if (details.approvedBy !== undefined) out.approvedBy = [...details.approvedBy];
  if (details.runAs !== undefined) out.runAs = details.runAs;
  if (details.withheld !== undefined) out.withheld = details.withheld;
  if (details.rejectedBy !== undefined) out.rejectedBy = details.rejectedBy;
  // The approver's reason is free text: redacted whole, then shortened.
  if (details.reason !== undefined) out.reason = plain(redactText(details.reason), REASON_CHARS);
  if (details.code !== undefined) out.code = details.code;
  if (details.error !== undefined) out.error = details.error;
  return out;
}

/**
 * The notification's own fields, copied one by one rather than spread: a caller's object may carry
 * more at run time (the type does not stop it), and nothing but these fields may reach a payload.
 * Free text (the reason, the arguments, a rejection's reason) is redacted here, on the whole text,
 * before any message shortens it; every payload is built from this copy.
 */
function facts(n: ApprovalNotification): NotificationFacts {
  const out: NotificationFacts = {
    kind: n.kind,
    tier: n.tier,
    groups: [...n.groups],
    requestId: n.requestId,
    tenant: n.tenant,
    tool: n.tool,
    risk: n.risk,
    actor: n.actor,
    digest: n.digest,
    reviewUrl: n.reviewUrl,
  };
  if (n.onBehalfOf !== undefined) out.onBehalfOf = n.onBehalfOf.map((principal) => ({ id: principal.id, type: principal.type }));
  if (n.expiresAt !== undefined) out.expiresAt = n.expiresAt;
  if (n.outcome !== undefined) out.outcome = n.outcome;
  if (n.environment !== undefined) out.environment = n.environment;
  // The requester's reason is free text: redacted here, on the whole text, before any message shortens it.
  if (n.reason !== undefined) out.reason = redactText(n.reason);
  if (n.args !== undefined) {
    const key = keyArguments(n.args);
    out.args = key.shown;
    if (key.omitted > 0) out.argsOmitted = key.omitted;
  }
  // Read explicitly, rebuilt field by field and redacted (the caller's object may hold anything).
  const provenance = provenanceView(n.provenance);
  if (provenance !== undefined && n.kind !== 'outcome') out.provenance = provenance;
  // Read explicitly, rebuilt and redacted by `previewView`, then shortened: a message is no place for a long diff.
  const preview = n.kind === 'outcome' ? undefined : previewView(n.preview);
  if (preview !== undefined) {
    out.preview = {
      status: preview.status,
      headline: previewHeadline(preview),
      text: plain(preview.text, PREVIEW_MESSAGE_CHARS),
      truncated: preview.truncated || preview.text.length > PREVIEW_MESSAGE_CHARS,
    };
  }
  if (n.outcomeDetails !== undefined) out.outcomeDetails = redactedOutcome(n.outcomeDetails);
  // Rebuilt field by field: the asker's reason and the denial's reasons are free text, redacted then shortened.
  if (n.override !== undefined) {
    const o = n.override;
    out.override = {
      breakGlass: o.breakGlass,
      deniedRule: o.deniedRule,
      deniedCode: o.deniedCode,
      deniedReasons: o.deniedReasons.slice(0, KEY_ARGUMENT_LIMITS.fields).map((reason) => plain(redactText(reason), REASON_CHARS)),
      by: o.by,
      reason: plain(redactText(o.reason), REASON_CHARS),
      notify: [...o.notify],
    };
  }
  if (n.requestLink !== undefined) {
    const l = n.requestLink;
    out.requestLink = {
      kind: l.kind,
      requestId: l.requestId,
      tool: l.tool,
      by: { id: l.by.id, groups: [...l.by.groups] },
      reason: plain(redactText(l.reason), REASON_CHARS),
    };
  }
  if (n.kind === 'outcome') out.summary = outcomeSentence(out.outcomeDetails, out.outcome);
  return out;
}

/** The shared JSON event: the facts and the review URL, no link. */
export function sharedJsonPayload(notification: ApprovalNotification): SharedApprovalEvent {
  const n = facts(notification);
  return { type: `toolgate.approval.${notification.kind}`, subject: headline(n), audience: 'shared', ...n };
}

/** The personal JSON event: the facts, the review URL and `link`, the recipient's own. */
export function personalJsonPayload(notification: DecisionNotification, link: ApprovalLink): PersonalApprovalEvent {
  const n = facts(notification);
  return {
    type: `toolgate.approval.${notification.kind}`,
    subject: headline(n),
    audience: 'personal',
    ...n,
    kind: notification.kind,
    link: { ...link },
  };
}

/** The first characters of a digest, enough to compare with what the API shows. */
export function shortDigest(digest: string): string {
  return digest.length > 16 ? `${digest.slice(0, 16)}…` : digest || '(none)';
}

/** An ISO time as people read it: `2026-03-01 14:05 UTC`; the text itself when it is not a time. */
export function readableTime(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** How far away a time is, roughly: `in 59 min`, `in 3 h`, `in 2 days`, or `passed`. */
export function timeLeft(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  if (Number.isNaN(ms)) return '';
  if (ms <= 0) return 'passed';
  const minutes = Math.ceil(ms / 60_000);
  if (minutes < 120) return `in ${minutes} min`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `in ${hours} h` : `in ${Math.round(hours / 24)} days`;
}

/** Escapes text for Slack mrkdwn, so request data cannot inject links or mentions. */
function esc(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A deadline for Slack: shown in each reader's own time zone (Slack's date formatting), with the
 * UTC time as the fallback. Built from the parsed time only, so nothing of the input is echoed.
 */
function slackTime(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return esc(iso);
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} at {time}|${readableTime(iso)}>`;
}

/** How a break-glass override ended, in its outcome headline: it ran (approved), or it did not. */
const OVERRIDE_ENDS: Readonly<Record<string, string>> = {
  completed: 'approved',
  failed: 'approved (the tool failed)',
  outcome_unknown: 'approved (outcome unknown)',
  rejected: 'rejected',
  expired: 'expired',
  denied: 'denied',
};

/** The headline of a break-glass override's notification: said first, in capitals, whatever the kind. */
function overrideHeadline(n: NotificationFacts): string {
  const what = `${n.tool} (${n.risk} risk)`;
  switch (n.kind) {
    case 'requested':
    case 'override':
      return `BREAK-GLASS override requested: ${what}`;
    case 'escalated':
      return `BREAK-GLASS override escalated to you (tier ${n.tier}): ${what}`;
    case 'reminder':
      return `BREAK-GLASS override still waiting for a second person: ${what}`;
    case 'outcome':
      return `BREAK-GLASS override ${OVERRIDE_ENDS[n.outcome ?? ''] ?? 'ended'}: ${n.tool} (request ${n.requestId} ${n.outcome ?? 'ended'})`;
  }
}

/** The message's headline (Slack's header, the JSON event's `subject`, the start of the text fallback). */
function headline(n: NotificationFacts): string {
  // A break-glass notice (kind `override`) without its grant still says what it is.
  if (n.override || n.kind === 'override' || n.requestLink?.kind === 'override') return overrideHeadline(n);
  const rollback = n.requestLink?.kind === 'rollback' ? ` · rollback of ${n.requestLink.requestId}` : '';
  switch (n.kind) {
    case 'requested':
      return `Approval needed: ${n.tool} (${n.risk} risk)${rollback}`;
    case 'escalated':
      return `Escalated to you (tier ${n.tier}): ${n.tool} (${n.risk} risk)${rollback}`;
    case 'reminder':
      return `Still waiting for approval: ${n.tool} (${n.risk} risk)${rollback}`;
    case 'outcome':
      return `Request ${n.requestId} ${n.outcome ?? 'ended'}: ${n.tool}${rollback}`;
  }
}

/** The text fallback (notifications, screen readers): the headline, what happened, who asked. Never a URL. */
function fallbackText(n: NotificationFacts): string {
  let text = headline(n);
  if (n.override) text += ` · overrides ${n.override.deniedRule} (${n.override.deniedCode}), asked by ${n.override.by}`;
  if (n.kind === 'outcome' && n.summary) text += ` · ${n.summary}`;
  text += ` · tenant ${n.tenant} · requested by ${n.actor}`;
  if (n.kind !== 'outcome' && n.expiresAt) text += ` · expires ${readableTime(n.expiresAt)}`;
  return esc(text);
}

/** Every kind of line break, Unicode's included: Slack starts a new line at each. */
const LINE_BREAKS = /\r\n|[\r\n\u2028\u2029\u0085]/g;

/**
 * Untrusted text (the agent's reason and arguments, an approver's reason) made inert for Slack
 * mrkdwn: escaped, and a formatting character (* _ ~ `) that could open a span (not preceded by a
 * letter or digit, as `result_too_large`'s are) followed by a zero-width space, so the text shows
 * as typed and cannot make bold "Approved by security" lines of its own.
 */
function inert(text: string): string {
  return esc(text).replace(/(^|[^\p{L}\p{N}])([*_~`])/gu, '$1$2\u200b');
}

/** Untrusted text on one line. */
function oneLine(text: string): string {
  return inert(text.replace(LINE_BREAKS, ' ⏎ '));
}

/** One argument value as mrkdwn text: inert, on one line. */
function argumentText(value: ArgumentValue): string {
  return oneLine(typeof value === 'string' ? value : JSON.stringify(value));
}

/**
 * Header, facts, what happened (outcomes), the requester's reason, the key arguments and the short
 * digest: what shared and personal messages have in common. Untrusted text sits in `verbatim`
 * sections, so Slack does not turn URLs or names in it into links or mentions.
 */
function summaryBlocks(n: NotificationFacts): SlackBlock[] {
  const fields = [
    { type: 'mrkdwn', text: `*Tool*\n\`${esc(n.tool)}\`` },
    { type: 'mrkdwn', text: `*Risk*\n${esc(n.risk)}` },
    { type: 'mrkdwn', text: `*Tenant*\n${esc(n.tenant)}` },
    { type: 'mrkdwn', text: `*Requester*\n${esc(n.actor)}` },
  ];
  if (n.onBehalfOf && n.onBehalfOf.length > 0) fields.push({ type: 'mrkdwn', text: `*On behalf of*\n${esc(n.onBehalfOf.map((p) => p.id).join(', '))}` });
  if (n.environment) fields.push({ type: 'mrkdwn', text: `*Environment*\n${esc(n.environment)}` });
  if (n.kind === 'outcome') fields.push({ type: 'mrkdwn', text: `*Outcome*\n${esc(n.outcome ?? 'ended')}` });
  else if (n.expiresAt) fields.push({ type: 'mrkdwn', text: `*Expires*\n${slackTime(n.expiresAt)} (${esc(timeLeft(n.expiresAt))})` });
  fields.push({ type: 'mrkdwn', text: `*Request*\n\`${esc(n.requestId)}\`` });

  const blocks: SlackBlock[] = [{ type: 'header', text: { type: 'plain_text', text: plain(headline(n), 150), emoji: false } }];
  // What is overridden or rolled back comes before everything else: approving an override overrides a policy denial.
  const linked = linkedSection(n);
  if (linked) blocks.push(linked);
  blocks.push({ type: 'section', fields });
  if (n.kind === 'outcome' && n.summary) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*What happened*\n${oneLine(n.summary)}`, verbatim: true } });
  }
  if (n.reason)
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `*Reason given*\n>${inert(plain(n.reason, 500).replace(LINE_BREAKS, '\n')).replace(/\n/g, '\n>')}`, verbatim: true },
    });
  if (n.args && (Object.keys(n.args).length > 0 || n.argsOmitted)) {
    const lines = Object.entries(n.args).map(
      ([name, value]) => `• *${oneLine(name)}*${flagsOnArgument(n.provenance, name).length > 0 ? ' ⚠ _untrusted_' : ''}: ${argumentText(value)}`,
    );
    if (n.argsOmitted) lines.push(`_and ${n.argsOmitted} more field${n.argsOmitted === 1 ? '' : 's'} on the review page_`);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*Arguments* (redacted)\n${lines.join('\n')}`, verbatim: true } });
  }
  if (n.provenance) {
    // The runtime's claim, so approvers know which values an attacker may have written.
    const lines = n.provenance.untrusted
      .slice(0, KEY_ARGUMENT_LIMITS.fields)
      .map((flag) => `• ⚠ \`${oneLine(plain(flag.path, 120)).replace(/`/g, "'")}\` from ${esc(provenanceKinds(flag.kinds))}`);
    const more = n.provenance.untrusted.length - KEY_ARGUMENT_LIMITS.fields;
    if (more > 0) lines.push(`_and ${more} more on the review page_`);
    if (n.provenance.prompt) lines.push(`Prompt: ${oneLine(plain(describePrompt(n.provenance.prompt, 3), 300))}`);
    const title = n.provenance.untrusted.length > 0 ? '*Came from untrusted content*' : '*Prompt metadata*';
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `${title}\n${lines.join('\n')}`, verbatim: true } });
  }
  if (n.preview) {
    // What the tool says it would do, quoted and inert like every untrusted text; its lines kept (a diff reads by lines).
    const quoted = inert(n.preview.text.replace(LINE_BREAKS, '\n')).replace(/\n/g, '\n>');
    const note = n.preview.truncated ? '\n_shortened: the review page shows the whole preview_' : '';
    const headline = n.preview.headline.charAt(0).toUpperCase() + n.preview.headline.slice(1);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*${headline}*\n>${quoted}${note}`, verbatim: true } });
  }
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: `Digest \`${esc(shortDigest(n.digest))}\` · groups ${esc(n.groups.join(', ') || '(none)')}` }],
  });
  return blocks;
}

/** The section naming a break-glass override (what it overrides, who asked, why) or a rollback; undefined for other requests. */
function linkedSection(n: NotificationFacts): SlackBlock | undefined {
  const quote = (text: string) => `>${inert(text.replace(LINE_BREAKS, '\n')).replace(/\n/g, '\n>')}`;
  const original = n.requestLink ? ` of request \`${esc(n.requestLink.requestId)}\`` : '';
  if (n.override) {
    const o = n.override;
    const reasons = o.deniedReasons.map((reason) => `• ${oneLine(reason)}`).join('\n');
    const text =
      `*BREAK-GLASS OVERRIDE*${original}\n` +
      `Approving overrides a policy denial: rule \`${esc(o.deniedRule)}\` (\`${esc(o.deniedCode)}\`)${reasons ? `\n${reasons}` : ''}\n` +
      `Asked by ${esc(o.by)} under break-glass rule \`${esc(o.breakGlass)}\`:\n${quote(o.reason)}\n` +
      `Always notified: ${esc(o.notify.join(', ') || '(none)')}`;
    return { type: 'section', text: { type: 'mrkdwn', text, verbatim: true } };
  }
  if (n.requestLink) {
    const l = n.requestLink;
    const what = l.kind === 'rollback' ? '*Rollback*' : '*BREAK-GLASS OVERRIDE*';
    return {
      type: 'section',
      text: { type: 'mrkdwn', text: `${what}${original} (\`${esc(l.tool)}\`), asked by ${esc(l.by.id)}:\n${quote(l.reason)}`, verbatim: true },
    };
  }
  return undefined;
}

/**
 * The shared Slack message: the summary and, while the request is open, a single "Review" button
 * to the review URL (the inbox page of the request), which asks for approver sign-in. Never a
 * decision link.
 */
export function sharedSlackPayload(notification: ApprovalNotification): SlackMessage {
  const n = facts(notification);
  const blocks = summaryBlocks(n);
  if (n.kind !== 'outcome') {
    blocks.push({
      type: 'actions',
      elements: [{ type: 'button', action_id: 'toolgate-review', text: { type: 'plain_text', text: 'Review', emoji: false }, url: n.reviewUrl }],
    });
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: 'Approver sign-in required. One-click decision links go only to each approver’s own notification target.' }],
    });
  }
  return { text: fallbackText(n), blocks, unfurl_links: false, unfurl_media: false };
}

/**
 * The personal Slack message for the approver `link` is for: the summary, a "Review and decide"
 * button with their single-use link, and a "Review" button to the review URL (sign-in required).
 */
export function personalSlackPayload(notification: DecisionNotification, link: ApprovalLink): SlackMessage {
  const n = facts(notification);
  const blocks = summaryBlocks(n);
  blocks.push({
    type: 'actions',
    elements: [
      {
        type: 'button',
        action_id: 'toolgate-decide',
        style: 'primary',
        text: { type: 'plain_text', text: 'Review and decide', emoji: false },
        url: link.url,
      },
      { type: 'button', action_id: 'toolgate-review', text: { type: 'plain_text', text: 'Review', emoji: false }, url: n.reviewUrl },
    ],
  });
  blocks.push({
    type: 'context',
    elements: [
      {
        type: 'mrkdwn',
        text: `"Review and decide" is a single-use link for ${esc(link.name ?? link.approver)} alone, valid until ${esc(link.expiresAt)}; do not forward it. "Review" needs approver sign-in.`,
      },
    ],
  });
  return { text: fallbackText(n), blocks, unfurl_links: false, unfurl_media: false };
}

/** Removes terminal control characters (escape sequences could rewrite what the terminal shows). */
function terminalSafe(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}

/**
 * The line `toolgate dev` prints for a notification: a shared message (a terminal is a shared
 * place, so never a decision link). Waiting requests: tool, risk, tenant, requester, groups,
 * deadline and the review URL; outcomes: how the request ended.
 */
export function consoleLine(notification: ApprovalNotification, now = Date.now()): string {
  const n = facts(notification);
  const requester = `requested by ${n.actor}${n.onBehalfOf && n.onBehalfOf.length > 0 ? ` for ${n.onBehalfOf.map((p) => p.id).join(', ')}` : ''}`;
  const breakGlass = n.override !== undefined || n.kind === 'override' || n.requestLink?.kind === 'override';
  const o = n.override;
  const overrides = o ? ` · overrides ${o.deniedRule} (${o.deniedCode}), asked by ${o.by}: "${plain(o.reason.replace(LINE_BREAKS, ' ⏎ '), 200)}"` : '';
  const rollback = n.requestLink?.kind === 'rollback' ? ` · rollback of ${n.requestLink.requestId}` : '';
  if (n.kind === 'outcome') {
    const start = breakGlass ? `BREAK-GLASS override ${OVERRIDE_ENDS[n.outcome ?? ''] ?? 'ended'}: request ${n.requestId} ` : `request ${n.requestId} `;
    return terminalSafe(`toolgate: ${start}(${n.tool}, tenant ${n.tenant}, ${requester}) ${n.summary ?? 'ended'}${overrides}${rollback}`);
  }
  let label = n.kind === 'requested' ? 'approval needed' : n.kind === 'escalated' ? `escalated to tier ${n.tier}` : 'still waiting for approval';
  if (breakGlass) {
    label =
      n.kind === 'requested' || n.kind === 'override'
        ? 'BREAK-GLASS override requested'
        : n.kind === 'escalated'
          ? `BREAK-GLASS override escalated to tier ${n.tier}`
          : 'BREAK-GLASS override still waiting for a second person';
  }
  const deadline = n.expiresAt ? ` · expires ${readableTime(n.expiresAt)} (${timeLeft(n.expiresAt, now)})` : '';
  const flagged =
    n.provenance && n.provenance.untrusted.length > 0
      ? ` · ⚠ from untrusted content: ${plain(n.provenance.untrusted.map((flag) => `${flag.path} (${provenanceKinds(flag.kinds)})`).join(', '), 300)}`
      : '';
  const preview = n.preview ? ` · ${n.preview.headline}: ${plain(n.preview.text.replace(LINE_BREAKS, ' ⏎ '), 200)}` : '';
  return terminalSafe(
    `toolgate: ${label}: ${n.tool} (${n.risk} risk)${overrides}${rollback} · tenant ${n.tenant} · ${requester} · groups ${n.groups.join(', ') || '(none)'}${deadline}${flagged}${preview} · review ${n.reviewUrl}`,
  );
}
