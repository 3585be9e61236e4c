/**
 * Notifications as Slack-compatible messages (text fallback plus Block Kit blocks): shared ones
 * with a "Review" button that needs sign-in, personal ones with one approver's own decision link.
 * Untrusted text is escaped and made inert for mrkdwn. See ./facts.ts for the two kinds and the facts.
 */
import { describePrompt, flagsOnArgument, provenanceKinds } from '../approvals/view.js';
import {
  KEY_ARGUMENT_LIMITS,
  LINE_BREAKS,
  facts,
  headline,
  plain,
  readableTime,
  shortDigest,
  timeLeft,
  type ApprovalLink,
  type ArgumentValue,
  type DecisionNotification,
  type NotificationFacts,
} from './facts.js';
import type { ApprovalNotification } from './types.js';

/** A Slack block (layout blocks as the Slack Block Kit defines them). */
export type SlackBlock = Record<string, unknown>;

/** A message for a Slack incoming webhook (or any Slack-compatible receiver). */
export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
  unfurl_links: false;
  unfurl_media: false;
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

/** The text fallback (notifications, screen readers): the headline, what happened, who asked. Never a URL. */
function fallbackText(n: NotificationFacts): string {
  let text = headline(n);
  if (n.override) text += ` · overrides ${n.override.deniedRule} (${n.override.deniedCode}), asked by ${n.override.by}`;
  if (n.kind === 'outcome' && n.summary) text += ` · ${n.summary}`;
  text += ` · tenant ${n.tenant} · requested by ${n.actor}`;
  if (n.kind !== 'outcome' && n.expiresAt) text += ` · expires ${readableTime(n.expiresAt)}`;
  return esc(text);
}

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
