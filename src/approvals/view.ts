/**
 * What an approver is shown of a request: one view for the approval API's JSON (list and detail),
 * the one-click link page and the inbox, so all three show the same redacted facts. Its own module
 * so that the pages rendering it do not import the API that serves them.
 */
import { redactValue } from '../egress/redact.js';
import { FailureTypes, refuseDecision, type Approver, type RequestStatus } from '../shared/index.js';

const requesterIds = (status: RequestStatus): string[] => [status.actor.id, ...(status.onBehalfOf ?? []).map((p) => p.id)];

/** A redacted copy of what approvers are shown (all rules): they decide on the shape of the call, not on its secrets. */
const redacted = <T>(value: T): T => redactValue(value).value;

/**
 * The approval view of a request: everything an approver must see before deciding. Arguments,
 * reasons and edits are redacted; the digests are those of the real request.
 */
export function approvalView(status: RequestStatus, approver: Approver) {
  const plan = status.decision?.approval;
  const refusal =
    status.state === 'pending_approval' && plan && status.digest
      ? refuseDecision(
          {
            pending: true,
            tenant: status.tenant,
            requesterIds: requesterIds(status),
            digest: status.digest,
            plan,
            tier: status.tier,
            approvals: status.approvals,
          },
          { decision: 'approve', digest: status.digest, approver },
        )
      : { type: FailureTypes.NotPending, message: 'the request is not waiting for approval' };
  return {
    requestId: status.requestId,
    state: status.state,
    tenant: status.tenant,
    environment: status.environment,
    tool: status.tool,
    args: redacted(status.proposal?.args),
    risk: status.decision?.risk,
    rule: status.decision?.rule,
    reasons: redacted(status.decision?.reasons ?? []),
    policyDigest: status.decision?.policyDigest,
    toolDigest: status.decision?.toolDigest,
    runAs: status.decision?.runAs,
    actor: status.actor,
    onBehalfOf: status.onBehalfOf ?? [],
    reason: redacted(status.reason),
    traceId: status.traceId,
    digest: status.digest,
    expiresAt: status.expiresAt,
    tier: status.tier,
    eligibleGroups: status.eligibleGroups,
    plan: plan
      ? { name: plan.name, groups: plan.groups, allOf: plan.allOf, minApprovals: plan.minApprovals, rejectionsToDeny: plan.rejectionsToDeny }
      : undefined,
    approvals: redacted(status.approvals.filter((vote) => vote.digest === status.digest)),
    edits: status.edits.map((edit) => ({ ...edit, args: redacted(edit.args), ...(edit.reason === undefined ? {} : { reason: redacted(edit.reason) }) })),
    canDecide: refusal === undefined,
    ...(refusal ? { cannotDecideBecause: refusal.message } : {}),
    proposal: status.proposal ? { ...status.proposal, args: redacted(status.proposal.args) } : undefined,
    outcome: status.outcome ? { status: status.outcome.status } : undefined,
  };
}

/** The approval view of a request, as `approvalView` builds it. */
export type ApprovalView = ReturnType<typeof approvalView>;
