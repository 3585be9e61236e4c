/**
 * What a notification looks like on the wire, in two kinds that never mix:
 *
 * - **Shared** messages, for the targets of `TOOLGATE_WEBHOOKS` (channels many people read): the
 *   facts an approver needs (tool, risk, tenant, requester, expiry, digest) and the review URL,
 *   which needs approver sign-in. Their builders take no link argument and their types cannot
 *   hold one, so no code path can put a decision link into a shared channel.
 * - **Personal** messages, for one approver's own `notify` target: the same facts, the review URL
 *   and exactly one link, that approver's. Their builders take a single `ApprovalLink`.
 *
 * Each kind comes as a Slack-compatible message (text fallback plus Block Kit blocks) and as the
 * generic JSON event.
 */
import { redactText } from '../egress/redact.js';
import type { ApprovalNotification } from './notifier.js';

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
export type DecisionNotification = ApprovalNotification & { kind: Exclude<ApprovalNotification['kind'], 'outcome'> };

/** Whether the notification asks for a decision (everything but `outcome`). */
export function isDecisionNotification(notification: ApprovalNotification): notification is DecisionNotification {
  return notification.kind !== 'outcome';
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

/**
 * The generic JSON event posted to shared `json=` targets: every notification field, its type and
 * `audience: "shared"`. `links` and `link` are typed `never`: a shared event cannot carry one.
 */
export type SharedApprovalEvent = ApprovalNotification & {
  type: ApprovalEventType;
  audience: 'shared';
  links?: never;
  link?: never;
};

/**
 * The generic JSON event posted to one approver's own `json=` target: every notification field,
 * its type, `audience: "personal"` and that approver's link.
 */
export type PersonalApprovalEvent = DecisionNotification & {
  type: ApprovalEventType;
  audience: 'personal';
  link: ApprovalLink;
};

/**
 * The notification's own fields, copied one by one rather than spread: a caller's object may carry
 * more at run time (the type does not stop it), and nothing but these fields may reach a payload.
 * Free text (the reason) is redacted; every payload is built from this copy.
 */
function facts<N extends ApprovalNotification>(n: N): N {
  const out: ApprovalNotification = {
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
  return out as N;
}

/** The shared JSON event: the facts and the review URL, no link. */
export function sharedJsonPayload(notification: ApprovalNotification): SharedApprovalEvent {
  return { type: `toolgate.approval.${notification.kind}`, audience: 'shared', ...facts(notification) };
}

/** The personal JSON event: the facts, the review URL and `link`, the recipient's own. */
export function personalJsonPayload(notification: DecisionNotification, link: ApprovalLink): PersonalApprovalEvent {
  return {
    type: `toolgate.approval.${notification.kind}`,
    audience: 'personal',
    ...facts(notification),
    link: { ...link },
  };
}

/** The first characters of a digest, enough to compare with what the API shows. */
export function shortDigest(digest: string): string {
  return digest.length > 16 ? `${digest.slice(0, 16)}…` : digest || '(none)';
}

/** Escapes text for Slack mrkdwn, so request data cannot inject links or mentions. */
function esc(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function plain(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

function headline(n: ApprovalNotification): string {
  switch (n.kind) {
    case 'requested':
      return `Approval needed: ${n.tool} (${n.risk} risk)`;
    case 'escalated':
      return `Escalated to you (tier ${n.tier}): ${n.tool} (${n.risk} risk)`;
    case 'reminder':
      return `Still waiting for approval: ${n.tool} (${n.risk} risk)`;
    case 'outcome':
      return `Request ${n.requestId} ${n.outcome ?? 'ended'}: ${n.tool}`;
  }
}

/** The text fallback (notifications, screen readers): the headline and who asked. Never a URL. */
function fallbackText(n: ApprovalNotification): string {
  let text = `${headline(n)} · tenant ${n.tenant} · requested by ${n.actor}`;
  if (n.kind !== 'outcome' && n.expiresAt) text += ` · expires ${n.expiresAt}`;
  return text;
}

/** Header, facts, the requester's reason and the short digest: what shared and personal messages have in common. */
function summaryBlocks(n: ApprovalNotification): SlackBlock[] {
  const fields = [
    { type: 'mrkdwn', text: `*Tool*\n\`${esc(n.tool)}\`` },
    { type: 'mrkdwn', text: `*Risk*\n${esc(n.risk)}` },
    { type: 'mrkdwn', text: `*Tenant*\n${esc(n.tenant)}` },
    { type: 'mrkdwn', text: `*Requester*\n${esc(n.actor)}` },
  ];
  if (n.onBehalfOf && n.onBehalfOf.length > 0) fields.push({ type: 'mrkdwn', text: `*On behalf of*\n${esc(n.onBehalfOf.map((p) => p.id).join(', '))}` });
  if (n.environment) fields.push({ type: 'mrkdwn', text: `*Environment*\n${esc(n.environment)}` });
  if (n.kind === 'outcome') fields.push({ type: 'mrkdwn', text: `*Outcome*\n${esc(n.outcome ?? 'ended')}` });
  else if (n.expiresAt) fields.push({ type: 'mrkdwn', text: `*Expires*\n${esc(n.expiresAt)}` });
  fields.push({ type: 'mrkdwn', text: `*Request*\n\`${esc(n.requestId)}\`` });

  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: plain(headline(n), 150), emoji: false } },
    { type: 'section', fields },
  ];
  if (n.reason) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*Reason given*\n>${esc(plain(n.reason, 500)).replace(/\n/g, '\n>')}` } });
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: `Digest \`${esc(shortDigest(n.digest))}\` · groups ${esc(n.groups.join(', ') || '(none)')}` }],
  });
  return blocks;
}

/**
 * The shared Slack message: the summary and, while the request is open, a single "Review" button
 * to the review URL, which asks for approver sign-in. Never a decision link.
 */
export function sharedSlackPayload(notification: ApprovalNotification): SlackMessage {
  const n = facts(notification);
  const blocks = summaryBlocks(n);
  if (isDecisionNotification(n)) {
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
