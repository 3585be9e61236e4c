/**
 * What a tool request shows of itself, as pure functions of its state (the RequestMachine's public
 * fields): the search attributes ops and approvers list it by, the message approvers are sent,
 * its outcomes, and the Temporal UI's current details. Nothing here changes the request or issues
 * a command: the workflow decides when each one is shown.
 */
import type { SearchAttributeUpdatePair, TypedSearchAttributes } from '@temporalio/common';
import type { ApproverNotificationInput } from '../activities/notify.js';
import { linkAttributeValue, searchAttributes } from '../src/shared/messages.js';
import { notificationOutcome } from '../src/shared/outcome-details.js';
import type { NotificationRecord } from '../src/shared/approver-decisions.js';
import type { DenialCode, Evaluation } from '../src/shared/policy-decisions.js';
import type { KillOrder, RequestStatus, ToolOutcome } from '../src/shared/request-status.js';
import type { ToolRequest } from '../src/shared/requests.js';

/** What the views read of a request. */
export interface RequestView {
  readonly status: RequestStatus;
  /** The request as it stands (an edit changes its arguments). */
  readonly request: ToolRequest;
  /** Policy's latest evaluation. */
  readonly evaluation?: Evaluation;
  readonly killed?: KillOrder;
  /** The digest decisions must carry right now; undefined whenever no decision may apply. */
  readonly pendingDigest?: string;
  /** Whether the run keeps the waiting attributes (runs from before the inbox patch do not). */
  readonly inboxVisible: boolean;
}

/** The fields every outcome of the request shares. */
export type OutcomeBase = Omit<Extract<ToolOutcome, { status: 'completed' }>, 'status' | 'result' | 'args' | 'execution' | 'editedBy' | 'proposal'>;

// ---- search attributes ----------------------------------------------------------------------

/** The state and waiting attributes, upserted at each change of state. */
export function stateAttributes(view: RequestView): SearchAttributeUpdatePair[] {
  return [{ key: searchAttributes.status, value: view.status.state }, ...waitingAttributes(view)];
}

/** Who may decide now, from what tier, until when, and who already voted: what "waiting for me" lists from (none before the inbox patch). */
export function waitingAttributes(view: RequestView): SearchAttributeUpdatePair[] {
  const { status, pendingDigest: digest } = view;
  if (!view.inboxVisible) return [];
  if (status.state !== 'pending_approval' || digest === undefined) {
    return [
      { key: searchAttributes.eligibleGroups, value: [] },
      { key: searchAttributes.voters, value: [] },
    ];
  }
  const voters = [...new Set(status.approvals.filter((vote) => vote.digest === digest).map((vote) => vote.approverId))];
  return [
    { key: searchAttributes.eligibleGroups, value: [...status.eligibleGroups] },
    { key: searchAttributes.tier, value: status.tier },
    ...(status.expiresAt ? [{ key: searchAttributes.expiresAt, value: new Date(status.expiresAt) }] : []),
    { key: searchAttributes.voters, value: voters },
  ];
}

/** The attributes the starter set (`current`) that differ from the verified request: scope checks and the UI read them. */
export function verifiedAttributes(request: ToolRequest, current: Pick<TypedSearchAttributes, 'get'>): SearchAttributeUpdatePair[] {
  const changed: SearchAttributeUpdatePair[] = [];
  const verified = [
    [searchAttributes.tenant, request.tenant],
    [searchAttributes.tool, request.tool],
    [searchAttributes.actor, request.actor.id],
  ] as const;
  for (const [key, value] of verified) if (current.get(key) !== value) changed.push({ key, value });
  // A linked request (override, rollback) is found from its original through this attribute; only a signed link may set it.
  const link = request.link ? linkAttributeValue(request.link.kind, request.link.requestId) : undefined;
  if (current.get(searchAttributes.link) !== link) changed.push({ key: searchAttributes.link, value: link ?? null });
  return changed;
}

// ---- the approvers' message -----------------------------------------------------------------

/** What the notifier sends `groups` about the request (`kind`: why now). */
export function approverNotification(view: RequestView, kind: NotificationRecord['kind'], groups: string[]): ApproverNotificationInput {
  const { status, request } = view;
  const proposal = kind === 'outcome' ? undefined : status.proposal;
  return {
    kind,
    tier: status.tier,
    groups,
    requestId: request.requestId,
    tenant: request.tenant,
    tool: request.tool,
    risk: status.decision?.risk ?? 'critical',
    actor: request.actor.id,
    ...(request.onBehalfOf ? { onBehalfOf: request.onBehalfOf } : {}),
    digest: status.digest ?? '',
    ...(status.expiresAt === undefined ? {} : { expiresAt: status.expiresAt }),
    environment: request.environment,
    ...(request.reason === undefined ? {} : { reason: request.reason }),
    // What an approver decides on; the notifier redacts it before anything is shortened. Not
    // repeated in the outcome message, so each request's history carries it a bounded number of times.
    ...(proposal ? { args: proposal.args } : {}),
    // The dry-run preview approvers sign with the rest (already redacted and cut by the worker).
    ...(proposal?.preview ? { preview: proposal.preview } : {}),
    ...(proposal?.provenance ? { provenance: proposal.provenance } : {}),
    // A break-glass round and a linked request say so in every message (only then: other messages keep their shape).
    ...(status.decision?.override ? { override: status.decision.override } : {}),
    ...(request.link ? { requestLink: request.link } : {}),
    ...(status.outcome === undefined ? {} : { outcome: status.outcome.status, outcomeDetails: notificationOutcome(status.outcome) }),
  };
}

// ---- outcomes -------------------------------------------------------------------------------

/** What every outcome says: the request, policy's decision, the votes, and the end user's confirmation and a break-glass grant (only when there are). */
export function outcomeBase(view: RequestView): OutcomeBase {
  const { request, evaluation, status } = view;
  const digest = evaluation?.digest;
  const confirmed = digest === undefined ? undefined : status.confirmations?.find((answer) => answer.decision === 'approve' && answer.digest === digest);
  const override = evaluation?.decision.override;
  return {
    requestId: request.requestId,
    workflowId: status.workflowId,
    tool: request.tool,
    tenant: request.tenant,
    actor: request.actor,
    risk: evaluation?.decision.risk ?? 'critical',
    rule: evaluation?.decision.rule ?? 'check:request_assertion',
    policyDigest: evaluation?.decision.policyDigest ?? '',
    digest,
    approvals: status.approvals,
    ...(confirmed ? { confirmation: confirmed } : {}),
    ...(override ? { override } : {}),
  };
}

/** A denial with `code`. */
export function deniedOutcome(view: RequestView, code: DenialCode, reasons: string[]): ToolOutcome {
  return { ...outcomeBase(view), status: 'denied', code, reasons };
}

/** The denial of a request the front door did not admit (`reason`: why). */
export function unadmittedOutcome(view: RequestView, reason: string): ToolOutcome {
  return deniedOutcome(view, 'unverified_request', [`the request was not admitted by toolgate's front door: ${reason}; nothing was evaluated or executed`]);
}

/** The denial when the worker refused the request's evidence (`message`: its words). */
export function workerRefusalOutcome(view: RequestView, message: string): ToolOutcome {
  return deniedOutcome(view, 'unverified_request', [`the worker did not accept the request's evidence: ${message}; nothing was executed`]);
}

/** The denial by the request's kill order. */
export function killedOutcome(view: RequestView): ToolOutcome {
  const order = view.killed as KillOrder;
  return deniedOutcome(view, 'kill_switch', [`a kill switch was turned on by ${order.by} at ${order.at}: ${order.reason}`]);
}

/** The expiry of the approval phase. */
export function expiredOutcome(view: RequestView): ToolOutcome {
  return { ...outcomeBase(view), status: 'expired', expiresAt: view.status.expiresAt ?? '' };
}

/** The rejection by `by` (an approver, or the end user). */
export function rejectedOutcome(view: RequestView, by: string, reason?: string): ToolOutcome {
  return { ...outcomeBase(view), status: 'rejected', rejectedBy: by, ...(reason === undefined ? {} : { reason }) };
}

// ---- the Temporal UI ------------------------------------------------------------------------

/**
 * The Temporal UI's "current details" of a request: its state and, once it ended, how — so a
 * denied or expired request reads as what it is, not as a green "Completed". Names and codes
 * only, never arguments, reasons or tool messages. Shown by the UI, kept in no history event.
 */
export function currentDetails(status: RequestStatus): string {
  const outcome = status.outcome;
  const lines = [`**${(outcome?.status ?? status.state).replace(/_/g, ' ').toUpperCase()}** ${status.tool} for ${status.tenant}`];
  if (status.decision) lines.push(`**Policy** ${status.decision.outcome} by ${status.decision.rule}, risk ${status.decision.risk}`);
  if (status.state === 'pending_approval') {
    lines.push(`**Waiting for** ${status.eligibleGroups.join(', ') || '(nobody)'} (tier ${status.tier}) until ${status.expiresAt ?? '?'}`);
  }
  if (outcome?.status === 'denied') lines.push(`**Denied** ${outcome.code}`);
  else if (outcome?.status === 'rejected') lines.push(`**Rejected by** ${outcome.rejectedBy}`);
  else if (outcome?.status === 'expired') lines.push(`**Expired** at ${outcome.expiresAt}, nothing ran`);
  else if (outcome?.status === 'failed') lines.push(`**Failed** ${outcome.error.type}: the tool did not act`);
  else if (outcome?.status === 'outcome_unknown') lines.push(`**Outcome unknown** ${outcome.error.type}: reconcile by hand`);
  else if (outcome?.status === 'completed')
    lines.push(`**Completed** as ${outcome.execution.runAs}${outcome.withheld ? `, result withheld (${outcome.withheld.code})` : ''}`);
  const approvals = status.approvals.filter((vote) => vote.decision === 'approve').map((vote) => vote.approverId);
  if (approvals.length > 0) lines.push(`**Approved by** ${[...new Set(approvals)].join(', ')}`);
  if (outcome?.confirmation) lines.push(`**Confirmed by the end user** ${outcome.confirmation.principal}`);
  if (status.link?.kind === 'override') lines.push(`**BREAK-GLASS override** of request ${status.link.requestId}, asked by ${status.link.by.id}`);
  else if (status.link?.kind === 'rollback') lines.push(`**Rollback** of request ${status.link.requestId}, asked by ${status.link.by.id}`);
  return lines.join('\n\n');
}
