/**
 * The worker's own check, right before policy is evaluated and right before a side effect, that
 * the request came through toolgate's front door and that people toolgate authenticated approved
 * it. The workflow verified the same assertions already; this second check runs in Node with
 * `jose` (an implementation independent of the workflow's) against the keys in the worker's own
 * configuration, not the keys recorded in the history. So whoever can write into Temporal — a
 * rogue process polling the task queue, a forged marker — still cannot make a worker act.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { eligibleGroups, isApprovalSatisfied, requesterIdsOf } from '../shared/approval.js';
import {
  ASSERTION_AUDIENCE,
  DECISION_ASSERTION_TYP,
  MAX_ASSERTION_CHARS,
  REQUEST_ASSERTION_TYP,
  canonicalSha256,
  type DecisionAssertionClaims,
  type RequestAssertionClaims,
  type TrustAnchors,
  type TrustedKey,
} from '../shared/assertions.js';
import { canonicalId } from '../shared/identity.js';
import type { ApprovalRecord } from '../shared/approver-decisions.js';
import type { Evaluation } from '../shared/policy-decisions.js';
import type { ToolRequest } from '../shared/requests.js';
import type { EvaluationSealer } from './seal.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';

/** Evidence that does not hold; the message says which part. */
export class EvidenceError extends ToolgateError {
  override readonly name = 'EvidenceError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('evidence_invalid', message, options);
  }
}

/** Where the check runs: the real workflow and run (from the activity's task, never from its input) and the worker's trust. */
export interface EvidenceContext {
  workflowId: string;
  runId: string;
  anchors: TrustAnchors;
}

/** The admission of a request and, after an edit, the approver's signed edit that changed its arguments. */
export interface AdmissionEvidence {
  /** The front door's request assertion. */
  admission: string;
  /** The request as the front door admitted it. */
  admitted: ToolRequest;
  /** The request as it is now: the admitted one, or its arguments replaced by `edit`. */
  request: ToolRequest;
  /** The last accepted edit's decision assertion, when the arguments were edited. */
  edit?: string;
}

/** Everything the execution activity checks before it acts. */
export interface ExecutionEvidence extends AdmissionEvidence {
  /** The sealed evaluation of `request`. */
  evaluation: Evaluation;
  seal: string;
  /** Decision assertions of the approvals on the evaluation's digest. */
  approvals: string[];
  /** Edit assertions that count as their editors' approvals (their arguments are the executed ones). */
  editApprovals?: string[];
  /**
   * The end user's confirmation under a plan that accepts it: their approval of the evaluated
   * digest, or their edit that produced the executed arguments (then it is `edit` too).
   */
  confirmation?: string;
}

const publicKeys = new Map<string, KeyObject>();
function publicKeyOf(key: TrustedKey): KeyObject {
  let found = publicKeys.get(key.x);
  if (!found) {
    found = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.x }, format: 'jwk' });
    publicKeys.set(key.x, found);
  }
  return found;
}

/** Verifies a compact JWS against a kind of trusted key and returns its claims (time is the workflow's check, not this one's). */
async function verifySigned<T>(token: unknown, keys: readonly TrustedKey[], typ: string, what: string): Promise<T> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_ASSERTION_CHARS) throw new EvidenceError(`${what}: missing or too long`);
  let kid: unknown;
  let headerTyp: unknown;
  try {
    ({ kid, typ: headerTyp } = decodeProtectedHeader(token));
  } catch {
    throw new EvidenceError(`${what}: not a compact JWS`);
  }
  if (headerTyp !== typ) throw new EvidenceError(`${what}: typ must be ${typ}`);
  const key = keys.find((candidate) => candidate.kid === kid);
  if (!key) throw new EvidenceError(`${what}: signed with key ${String(kid)}, which this worker does not trust`);
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, publicKeyOf(key), { algorithms: ['EdDSA'] }));
  } catch {
    throw new EvidenceError(`${what}: the signature does not verify`);
  }
  const claims = JSON.parse(new TextDecoder().decode(payload)) as T & { aud?: unknown };
  if (claims.aud !== ASSERTION_AUDIENCE) throw new EvidenceError(`${what}: audience must be ${ASSERTION_AUDIENCE}`);
  return claims;
}

/** The request with its arguments replaced: what an edit turns the admitted request into. */
const withArgs = (request: ToolRequest, args: Record<string, unknown>): ToolRequest => ({ ...request, args });

/**
 * Checks that `request` is what the front door admitted for this workflow, or that with the
 * arguments of an edit an approver of this request signed. Returns the edit's claims, if any.
 */
export async function verifyAdmission(
  evidence: AdmissionEvidence,
  context: EvidenceContext,
): Promise<{ admission: RequestAssertionClaims; edit?: DecisionAssertionClaims }> {
  const { admitted, request } = evidence;
  const claims = await verifySigned<RequestAssertionClaims>(evidence.admission, context.anchors.requestKeys, REQUEST_ASSERTION_TYP, 'request assertion');
  if (claims.workflow_id !== context.workflowId) throw new EvidenceError('request assertion: issued for another workflow');
  if (claims.request_digest !== canonicalSha256(admitted) || claims.request_id !== admitted.requestId || claims.tenant !== admitted.tenant) {
    throw new EvidenceError('request assertion: issued for another request');
  }
  if (evidence.edit === undefined) {
    if (canonicalSha256(request) !== claims.request_digest) throw new EvidenceError('the request differs from the admitted one and no edit says why');
    return { admission: claims };
  }
  const edit = await verifyEditOf(evidence.edit, admitted, request, context);
  return { admission: claims, edit };
}

/** Verifies an edit assertion of this run whose arguments are exactly `request`'s. */
async function verifyEditOf(token: string, admitted: ToolRequest, request: ToolRequest, context: EvidenceContext): Promise<DecisionAssertionClaims> {
  const edit = await verifyDecision(token, admitted, context);
  if (edit.decision !== 'edit' || edit.args === undefined) throw new EvidenceError('edit: the assertion is not an edit');
  if (canonicalSha256(withArgs(admitted, edit.args)) !== canonicalSha256(request))
    throw new EvidenceError('edit: the request is not the admitted one with the edited arguments');
  return edit;
}

/**
 * Verifies a decision assertion for this workflow and run: by an approver of the request's tenant
 * who is not its requester (nor the person who asked for a linked request), or — channel
 * `end_user` — by the request's own end user, who answers only for themselves.
 */
async function verifyDecision(token: string, request: ToolRequest, context: EvidenceContext): Promise<DecisionAssertionClaims> {
  const claims = await verifySigned<DecisionAssertionClaims>(token, context.anchors.decisionKeys, DECISION_ASSERTION_TYP, 'decision assertion');
  if (claims.workflow_id !== context.workflowId || claims.run_id !== context.runId || claims.request_id !== request.requestId) {
    throw new EvidenceError('decision assertion: issued for another request or run');
  }
  if (claims.tenant !== request.tenant) throw new EvidenceError(`decision assertion: approver of tenant ${claims.tenant}, not ${request.tenant}`);
  if (claims.channel === 'end_user') {
    const endUser = request.onBehalfOf?.[0];
    if (!endUser || canonicalId(claims.sub) !== canonicalId(endUser.id) || !Array.isArray(claims.groups) || claims.groups.length > 0) {
      throw new EvidenceError("decision assertion: an end-user confirmation not from the request's end user");
    }
    return claims;
  }
  const requesters = requesterIdsOf(request).map(canonicalId);
  if (requesters.includes(canonicalId(claims.sub))) throw new EvidenceError('decision assertion: the requester cannot approve');
  return claims;
}

/**
 * Checks everything the execution activity needs before acting: the admission (and edit), the
 * worker's seal on the evaluation of exactly this request in this run, and — when policy asked for
 * approval — signed approvals that satisfy the plan on the evaluated digest. A group of an
 * escalation tier counts only for an approval signed at least the tier's delay after the request
 * was admitted (the workflow, which knows when the wait began, is stricter). Throws `EvidenceError`.
 */
export async function verifyExecution(evidence: ExecutionEvidence, context: EvidenceContext, sealer: EvaluationSealer): Promise<void> {
  const { admission, edit } = await verifyAdmission(evidence, context);
  const { evaluation, request } = evidence;
  if (!sealer.verify({ workflowId: context.workflowId, runId: context.runId, request, evaluation }, evidence.seal)) {
    throw new EvidenceError("the evaluation does not carry this worker deployment's seal for this run");
  }
  const { decision } = evaluation;
  if (decision.outcome === 'allow') return;
  if (decision.outcome !== 'approve' || !decision.approval || !evaluation.digest)
    throw new EvidenceError(`policy decided ${decision.outcome}; nothing may run`);
  const plan = decision.approval;
  /** The groups open when an approval was signed, at the earliest the workflow could have opened them. */
  const groupsAt = (signedAtSeconds: number): string[] => {
    const waited = (signedAtSeconds - admission.iat) * 1000;
    const tier = plan.escalation.filter((step) => step.afterMs <= waited).length;
    return eligibleGroups(plan, Math.min(tier, plan.escalation.length));
  };
  const votes: ApprovalRecord[] = [];
  const vote = (claims: DecisionAssertionClaims) => {
    const open = groupsAt(claims.iat);
    votes.push({
      approverId: canonicalId(claims.sub),
      groups: claims.groups.filter((group) => open.includes(group)),
      decision: 'approve',
      digest: evaluation.digest as string,
      at: new Date(claims.iat * 1000).toISOString(),
      tier: 0,
    });
  };
  for (const token of evidence.approvals) {
    const claims = await verifyDecision(token, request, context);
    if (claims.decision !== 'approve' || claims.digest !== evaluation.digest)
      throw new EvidenceError('decision assertion: not an approval of the evaluated digest');
    vote(claims);
  }
  // An editor stood behind their edit: it counts as their approval of the request it produced.
  if (edit) vote(edit);
  for (const token of evidence.editApprovals ?? []) vote(await verifyEditOf(token, evidence.admitted, request, context));
  if (evidence.confirmation !== undefined) {
    // The end user confirmed exactly this proposal, or adjusted the call into it.
    const claims = evidence.confirmation === evidence.edit && edit ? edit : await verifyDecision(evidence.confirmation, request, context);
    const confirmed = claims.decision === 'approve' ? claims.digest === evaluation.digest : claims.decision === 'edit' && claims === edit;
    if (claims.channel !== 'end_user' || !confirmed) throw new EvidenceError("confirmation: not the end user's confirmation of the evaluated proposal");
    if (plan.endUser !== true) throw new EvidenceError(`confirmation: approval plan ${plan.name} does not accept the end user's confirmation`);
    return;
  }
  if (
    !isApprovalSatisfied(
      plan,
      votes.filter((v) => v.groups.length > 0),
      evaluation.digest,
    )
  ) {
    throw new EvidenceError(`the signed approvals do not satisfy approval plan ${plan.name}`);
  }
}
