/**
 * What every notification message is built from, whatever its format. Messages come in two kinds
 * that never mix:
 *
 * - **Shared** messages, for the targets of `TOOLGATE_WEBHOOKS` (channels many people read) and
 *   the terminal of `toolgate dev`: the facts an approver needs (tool, risk, tenant, requester,
 *   reason, key arguments, deadline, digest) and the review URL, which needs approver sign-in.
 *   Their builders take no link argument and their types cannot hold one, so no code path can put
 *   a decision link into a shared channel.
 * - **Personal** messages, for one approver's own `notify` target: the same facts, the review URL
 *   and exactly one link, that approver's. Their builders take a single `ApprovalLink`.
 *
 * Each kind comes as a Slack-compatible message (./slack-payloads.ts) and as the generic JSON event
 * (./json-payloads.ts); the dev terminal prints a shared line (./console-line.ts). This module holds
 * the audiences, the facts every format is built from and the words they share (headline, times). Requester and approver text (reason, arguments, a rejection's reason) is
 * redacted with every rule on the whole text first, and only then shortened: a secret cut in half
 * would no longer match its rule.
 */
import { redactText, redactValue } from '../egress/redact.js';
import { previewHeadline, previewView, provenanceView, type ProvenanceView } from '../approvals/view.js';
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

/** Shortens text to `max` characters, marking the cut with an ellipsis. */
export function plain(value: string, max: number): string {
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
export function facts(n: ApprovalNotification): NotificationFacts {
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
    const { kind, requestId, tool, by, reason } = n.requestLink;
    out.requestLink = { kind, requestId, tool, by: { id: by.id, groups: [...by.groups] }, reason: plain(redactText(reason), REASON_CHARS) };
  }
  if (n.kind === 'outcome') out.summary = outcomeSentence(out.outcomeDetails, out.outcome);
  return out;
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

/** How a break-glass override ended, in its outcome headline: it ran (approved), or it did not. */
export const OVERRIDE_ENDS: Readonly<Record<string, string>> = {
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
export function headline(n: NotificationFacts): string {
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

/** Every kind of line break, Unicode's included: Slack starts a new line at each. */
export const LINE_BREAKS = /\r\n|[\r\n\u2028\u2029\u0085]/g;
