/**
 * The request digest: SHA-256 over the RFC 8785 canonical JSON of a proposal. Approvers sign off
 * this value, so an approval applies to exactly the request they saw and to nothing else.
 */
import { canonicalSha256 } from '../shared/assertions.js';
import type { Actor, PolicyDecision, Proposal, ToolRequest } from '../shared/index.js';

/**
 * SHA-256 hex of the canonical JSON of any JSON value: the one implementation the workflow (in its
 * sandbox), the front door, the policy activity and the worker's checks all share.
 */
export const canonicalDigest: (value: unknown) => string = canonicalSha256;

/** Builds the proposal an approver reviews: everything that determines the side effect. */
export function buildProposal(request: ToolRequest, workflowId: string, decision: PolicyDecision): Proposal {
  const actor: Actor = { id: request.actor.id, type: request.actor.type, roles: [...request.actor.roles] };
  return {
    requestId: request.requestId,
    workflowId,
    tenant: request.tenant,
    environment: request.environment,
    actor,
    actorChain: [{ id: actor.id, type: actor.type }, ...(request.onBehalfOf ?? []).map(({ id, type }) => ({ id, type }))],
    tool: { name: request.tool, digest: decision.toolDigest ?? '' },
    args: request.args,
    policyDigest: decision.policyDigest,
    decision: { outcome: decision.outcome, risk: decision.risk, rule: decision.rule },
    approval: decision.approval ?? null,
    // What the agent runtime says came from untrusted content is part of what approvers sign;
    // only when there is some, so the proposals (and digests) of other requests are unchanged.
    ...(request.provenance === undefined ? {} : { provenance: request.provenance }),
    // A linked request's link (the original, who asked and why) and a break-glass grant are signed
    // with the rest: approving an override is approving exactly that override.
    ...(request.link === undefined ? {} : { link: request.link }),
    ...(decision.override === undefined ? {} : { override: decision.override }),
  };
}

/** The digest of a proposal. */
export function proposalDigest(proposal: Proposal): string {
  return canonicalDigest(proposal);
}
