/**
 * The approval rules, as pure functions: who may vote on a request at a given tier, and when the
 * votes cast satisfy its plan. The workflow's update validator and the HTTP API both use them, so
 * the API's early answer and the workflow's binding answer cannot disagree.
 */
import { canonicalId } from './identity.js';
import { FailureTypes, HISTORY_BOUNDS, type FailureType } from './messages.js';
import type { ApprovalRecord, Approver, DecideInput, EndUserConfirmation } from './approver-decisions.js';
import type { ApprovalPlan } from './policy-decisions.js';

/**
 * Who may not decide a request: its actor, every principal it acts for, and whoever asked for a
 * linked request (the second person of a break-glass override is someone else). One rule for the
 * workflow, the execution's evidence check, the approver's view and the notifier's links.
 */
export function requesterIdsOf(request: { actor: { id: string }; onBehalfOf?: readonly { id: string }[]; link?: { by: { id: string } } }): string[] {
  return [request.actor.id, ...(request.onBehalfOf ?? []).map((principal) => principal.id), ...(request.link ? [request.link.by.id] : [])];
}

/** Groups whose members may vote once escalation reached `tier` (tiers are cumulative). */
export function eligibleGroups(plan: ApprovalPlan, tier: number): string[] {
  const groups = new Set([...plan.groups, ...plan.allOf]);
  for (const step of plan.escalation.slice(0, tier)) for (const group of step.groups) groups.add(group);
  return [...groups];
}

/** A refusal of a decision: the failure type and a sentence saying why. */
export interface DecisionRefusal {
  type: FailureType;
  message: string;
}

/** What the validator needs to know about the request it guards. */
export interface PendingApproval {
  pending: boolean;
  tenant: string;
  /** The actor and every principal it acts for: none of them may decide. */
  requesterIds: string[];
  digest: string;
  plan: ApprovalPlan;
  tier: number;
  /** Votes of the current round (on `digest`). */
  approvals: ApprovalRecord[];
  /** Nonces of one-click links already used on this request. */
  usedLinkNonces?: readonly string[];
  /** Edits made so far (bounded by HISTORY_BOUNDS.edits); absent = not counted. */
  edits?: number;
  /** The request's end user (its first `onBehalfOf` principal, canonical id); absent when it has none. */
  endUser?: string;
  /** The end user's answers so far (all rounds). */
  confirmations?: readonly EndUserConfirmation[];
}

/**
 * Decides whether `input` may be applied to the request. Order matters: state first (nothing
 * applies to a closed request), then binding (digest), then identity (tenant, self, group, repeat).
 * Ids are compared in canonical form (`canonicalId`): one person is one identity.
 */
export function refuseDecision(request: PendingApproval, input: DecideInput): DecisionRefusal | undefined {
  if (!request.pending) {
    return { type: FailureTypes.NotPending, message: 'the request is not waiting for approval (already decided or expired)' };
  }
  if (input.decision !== 'approve' && input.decision !== 'reject' && input.decision !== 'edit') {
    return { type: FailureTypes.InvalidDecision, message: 'decision must be "approve", "reject" or "edit"' };
  }
  if ((input.decision === 'edit') !== (input.args !== undefined && input.args !== null && typeof input.args === 'object')) {
    return { type: FailureTypes.InvalidDecision, message: 'args must be given with decision "edit", and only then' };
  }
  if (input.via === 'link' && (!input.linkNonce || input.decision === 'edit')) {
    return { type: FailureTypes.InvalidDecision, message: 'a one-click link carries a nonce and can only approve or reject' };
  }
  if (input.linkNonce !== undefined && request.usedLinkNonces?.includes(input.linkNonce)) {
    return { type: FailureTypes.LinkReused, message: 'this one-click link was already used' };
  }
  if (input.digest !== request.digest) {
    return {
      type: FailureTypes.DigestMismatch,
      message: 'digest does not match the proposal awaiting approval; fetch the request again and review it',
    };
  }
  if (input.approver.tenant !== request.tenant) {
    return { type: FailureTypes.WrongTenant, message: `approver belongs to tenant ${input.approver.tenant}, not ${request.tenant}` };
  }
  const approverId = canonicalId(input.approver.id);
  // The end user answers for themselves through the agent framework: never an approver's vote.
  if (input.via === 'end_user') return refuseConfirmation(request, input, approverId);
  if (request.requesterIds.some((id) => canonicalId(id) === approverId)) {
    return { type: FailureTypes.SelfApproval, message: 'the requester cannot decide their own request' };
  }
  const groups = eligibleGroups(request.plan, request.tier);
  if (!input.approver.groups.some((group) => groups.includes(group))) {
    return {
      type: FailureTypes.NotEligible,
      message: `approver is in none of the groups that may decide now (${groups.join(', ')})`,
    };
  }
  if (request.approvals.some((vote) => canonicalId(vote.approverId) === approverId && vote.digest === request.digest)) {
    return { type: FailureTypes.DuplicateVote, message: `${input.approver.id} has already voted on this request` };
  }
  if (input.decision === 'edit' && request.edits !== undefined && request.edits >= HISTORY_BOUNDS.edits) {
    return { type: FailureTypes.EditLimit, message: `this request was already edited ${HISTORY_BOUNDS.edits} times; approve or reject it as it is` };
  }
  if (request.approvals.filter((vote) => vote.digest === request.digest).length >= HISTORY_BOUNDS.votesPerRound) {
    return { type: FailureTypes.VoteLimit, message: `this proposal already has ${HISTORY_BOUNDS.votesPerRound} votes, the most one round takes` };
  }
  return undefined;
}

/** The end-user branch of `refuseDecision`: the plan must accept them, and it must be the request's own end user, once per proposal. */
function refuseConfirmation(request: PendingApproval, input: DecideInput, principal: string): DecisionRefusal | undefined {
  if (request.plan.endUser !== true) {
    return { type: FailureTypes.NotEligible, message: `approval plan ${request.plan.name} does not accept the end user's confirmation` };
  }
  if (request.endUser === undefined) {
    return { type: FailureTypes.NotEligible, message: 'the request names no end user (onBehalfOf) who could confirm it' };
  }
  if (principal !== request.endUser) {
    return { type: FailureTypes.NotEligible, message: "the confirmation is not from the request's end user" };
  }
  if (request.confirmations?.some((answer) => answer.digest === request.digest)) {
    return { type: FailureTypes.DuplicateVote, message: 'the end user has already answered this proposal' };
  }
  if (input.decision === 'edit' && request.edits !== undefined && request.edits >= HISTORY_BOUNDS.edits) {
    return { type: FailureTypes.EditLimit, message: `this request was already edited ${HISTORY_BOUNDS.edits} times; confirm or decline it as it is` };
  }
  return undefined;
}

/** True when the plan accepts the end user and they confirmed the proposal with this digest. */
export function isConfirmedByEndUser(plan: ApprovalPlan, confirmations: readonly EndUserConfirmation[] | undefined, digest: string): boolean {
  return plan.endUser === true && (confirmations ?? []).some((answer) => answer.decision === 'approve' && answer.digest === digest);
}

/** The end user's refusal of the proposal with this digest, when the plan accepts their answer. */
export function endUserDecline(plan: ApprovalPlan, confirmations: readonly EndUserConfirmation[] | undefined, digest: string): EndUserConfirmation | undefined {
  return plan.endUser === true ? (confirmations ?? []).find((answer) => answer.decision === 'reject' && answer.digest === digest) : undefined;
}

/**
 * True when the approvals satisfy the plan: enough distinct approvers and, for `allOf`, a
 * different person for each listed group (found by bipartite matching, so the order of votes
 * never matters).
 */
export function isApprovalSatisfied(plan: ApprovalPlan, approvals: ApprovalRecord[], digest?: string): boolean {
  // Keyed by canonical id: two spellings of one name are one approver.
  const approvers = new Map<string, string[]>();
  for (const vote of approvals) {
    if (vote.decision === 'approve' && (digest === undefined || vote.digest === digest)) approvers.set(canonicalId(vote.approverId), vote.groups);
  }
  if (approvers.size < plan.minApprovals) return false;
  if (plan.allOf.length === 0) return true;
  return matchGroups(plan.allOf, [...approvers.entries()]);
}

function matchGroups(groups: string[], approvers: [string, string[]][]): boolean {
  // Kuhn's augmenting paths: groupOf maps each approver to the group they currently fill.
  const groupOf = new Map<string, string>();
  const assign = (group: string, seen: Set<string>): boolean => {
    for (const [id, memberOf] of approvers) {
      if (!memberOf.includes(group) || seen.has(id)) continue;
      seen.add(id);
      const current = groupOf.get(id);
      if (current === undefined || assign(current, seen)) {
        groupOf.set(id, group);
        return true;
      }
    }
    return false;
  };
  return groups.every((group) => assign(group, new Set()));
}

/** True when enough distinct people rejected the proposal with this digest to end the request. */
export function isRejected(plan: ApprovalPlan, approvals: ApprovalRecord[], digest: string): boolean {
  const rejecters = new Set(approvals.filter((v) => v.decision === 'reject' && v.digest === digest).map((v) => canonicalId(v.approverId)));
  return rejecters.size >= Math.max(1, plan.rejectionsToDeny);
}

/** The approver's groups that count for this request, for the record. */
export function countedGroups(plan: ApprovalPlan, tier: number, approver: Approver): string[] {
  const groups = eligibleGroups(plan, tier);
  return approver.groups.filter((group) => groups.includes(group));
}
