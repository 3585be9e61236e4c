/**
 * What a notification looks like on the wire: a Slack-compatible message (text fallback plus
 * blocks) and the generic JSON event. Both carry what an approver needs to decide (tool, risk,
 * tenant, requester, expiry, digest) and, except on `outcome`, one single-use link per approver.
 */
import type { ApprovalNotification } from './notifier.js';

/** One approver's single-use link. */
export interface ApprovalLink {
  /** The approver's id. */
  approver: string;
  name?: string;
  email?: string;
  url: string;
  /** ISO time the link stops working. */
  expiresAt: string;
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

/** The generic JSON event posted to `json=` targets. */
export type JsonApprovalEvent = ApprovalNotification & { type: `toolgate.approval.${ApprovalNotification['kind']}`; links: ApprovalLink[] };

const SLACK_MAX_BLOCKS = 50;
const SLACK_BUTTONS_PER_ACTIONS = 25;

/** The generic JSON event: every notification field, its type, and the links (none on `outcome`). */
export function jsonPayload(notification: ApprovalNotification, links: readonly ApprovalLink[]): JsonApprovalEvent {
  return {
    type: `toolgate.approval.${notification.kind}`,
    ...notification,
    links: notification.kind === 'outcome' ? [] : [...links],
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

/** A Slack message: header, the facts, the digest, and one button per approver (none on `outcome`). */
export function slackPayload(notification: ApprovalNotification, links: readonly ApprovalLink[]): SlackMessage {
  const n = notification;
  const fields = [
    { type: 'mrkdwn', text: `*Tool*\n\`${esc(n.tool)}\`` },
    { type: 'mrkdwn', text: `*Risk*\n${esc(n.risk)}` },
    { type: 'mrkdwn', text: `*Tenant*\n${esc(n.tenant)}` },
    { type: 'mrkdwn', text: `*Requester*\n${esc(n.actor)}` },
  ];
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

  let text = `${headline(n)} · tenant ${n.tenant} · requested by ${n.actor}`;
  if (n.kind !== 'outcome') {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `<${n.reviewUrl}|Review the request> (approver sign-in required)` } });
    const buttons = links.map((link, index) => ({
      type: 'button',
      action_id: `toolgate-link-${index}`,
      text: { type: 'plain_text', text: plain(`Review and decide as ${link.name ?? link.approver}`, 75), emoji: false },
      url: link.url,
    }));
    // Slack refuses messages over 50 blocks: keep one block for the closing note.
    const maxActions = SLACK_MAX_BLOCKS - blocks.length - 1;
    let shown = 0;
    for (let start = 0, added = 0; start < buttons.length && added < maxActions; start += SLACK_BUTTONS_PER_ACTIONS, added += 1) {
      const chunk = buttons.slice(start, start + SLACK_BUTTONS_PER_ACTIONS);
      blocks.push({ type: 'actions', elements: chunk });
      shown += chunk.length;
    }
    if (links.length > 0) {
      const until = links.map((link) => link.expiresAt).sort()[0];
      const hidden = links.length - shown;
      blocks.push({
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text:
              `Each button is a single-use link for the approver it names, valid until ${esc(until ?? '')}; do not forward it.` +
              (hidden > 0 ? ` ${hidden} more approvers can decide through the review link.` : ''),
          },
        ],
      });
    }
    if (n.expiresAt) text += ` · expires ${n.expiresAt}`;
  }
  return { text, blocks, unfurl_links: false, unfurl_media: false };
}
