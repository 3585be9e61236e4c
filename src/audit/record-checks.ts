/**
 * How far a history's signed statements can be trusted: the front door's request assertion and
 * each approver's decision assertion, verified again here against the trust anchors the workflow
 * recorded in that same history (the keys it read at its start, and again after each rotation).
 * Histories from before the trust boundary stay readable and are reported as unverified, because
 * nothing in them can be verified.
 */
import { redactText } from '../egress/redact.js';
import {
  AssertionError,
  verifyDecisionAssertion,
  verifyRequestAssertion,
  workflowIdFor,
  type ToolRequest,
  type TrustAnchors,
  type TrustedKey,
} from '../shared/index.js';
import { isObject } from './history-payloads.js';
import type { AssertionCheck, AuditRecord } from './record-types.js';

/** The header and claims of a compact JWS, read without verifying anything (what it claims, not what is proven). */
export function peekJws(token: unknown): { header: Record<string, unknown>; claims: Record<string, unknown> } | undefined {
  if (typeof token !== 'string') return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8'));
    const claims: unknown = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'));
    return isObject(header) && isObject(claims) ? { header, claims } : undefined;
  } catch {
    return undefined;
  }
}

function isTrustedKeys(value: unknown): value is TrustedKey[] {
  return Array.isArray(value) && value.every((key) => isObject(key) && typeof key.kid === 'string' && typeof key.x === 'string');
}

/** The result of the `loadTrustAnchors` local activity, recognised by its shape (markers carry no activity type the converter decodes). */
export function asTrustAnchors(value: unknown): TrustAnchors | undefined {
  return isObject(value) && isTrustedKeys(value.requestKeys) && isTrustedKeys(value.decisionKeys)
    ? { requestKeys: value.requestKeys, decisionKeys: value.decisionKeys }
    : undefined;
}

/** Runs a verification and says what came of it; the key id is the one the (verified) assertion names. */
export function check(token: unknown, verify: () => unknown): AssertionCheck {
  try {
    verify();
    const kid = peekJws(token)?.header.kid;
    return { verified: true, ...(typeof kid === 'string' ? { kid } : {}) };
  } catch (err) {
    const code = err instanceof AssertionError ? err.problem : 'malformed';
    return { verified: false, problem: { code, message: redactText((err as Error).message) } };
  }
}

/** What a decision recorded before signed decisions checks as: there is nothing to verify. */
export const UNSIGNED_DECISION: AssertionCheck = {
  verified: false,
  problem: { code: 'unsigned', message: 'the decision was recorded before signed decisions: there is no assertion to verify' },
};

/**
 * A decide update's assertion, verified as the workflow did: with the keys in force when it arrived
 * (the last set the workflow read before it), for this request and run at that time, and only the
 * first time its `jti` shows up (`usedJtis` collects them across the history). Without a token, the
 * decision predates signed decisions ({@link UNSIGNED_DECISION}).
 */
export function decisionCheck(
  token: string | undefined,
  anchors: TrustAnchors | undefined,
  context: Parameters<typeof verifyDecisionAssertion>[2],
  usedJtis: Set<string>,
): AssertionCheck {
  if (token === undefined) return UNSIGNED_DECISION;
  let verification: AssertionCheck = anchors
    ? check(token, () => verifyDecisionAssertion(token, anchors, context))
    : { verified: false, problem: { code: 'no_trust_anchors', message: 'no trusted keys were recorded before this decision' } };
  const jti = peekJws(token)?.claims.jti;
  if (verification.verified && typeof jti === 'string') {
    // The workflow refuses a replayed assertion; one that shows up twice in a history proves nothing.
    if (usedJtis.has(jti)) verification = { verified: false, problem: { code: 'replayed', message: 'the same decision assertion was used before' } };
    usedJtis.add(jti);
  }
  return verification;
}

/**
 * The request's admission, verified as the workflow did: against the first keys it read
 * (`anchors`), at its start time, for this workflow id. `admission` is the start input's token
 * holder (undefined for a history from before the front door signed requests).
 */
export function admissionCheck(
  admission: { token: unknown } | undefined,
  request: ToolRequest | undefined,
  anchors: TrustAnchors | undefined,
  context: { workflowId: string; startedAtMs: number },
): AuditRecord['admission'] {
  let admissionView: AuditRecord['admission'];
  if (!admission) {
    admissionView = {
      present: false,
      verified: false,
      problem: { code: 'unsigned', message: 'the request was started before the front door signed requests: its identity was not verified' },
    };
  } else {
    const present = typeof admission.token === 'string' && admission.token.length > 0;
    if (!request) {
      admissionView = { present, verified: false, problem: { code: 'malformed', message: 'the workflow input is not a tool request' } };
    } else if (!anchors) {
      admissionView = {
        present,
        verified: false,
        problem: { code: 'no_trust_anchors', message: 'the history records no trusted keys (the request was never evaluated)' },
      };
    } else if (context.workflowId !== workflowIdFor(request.tenant, request.requestId)) {
      admissionView = { present, verified: false, problem: { code: 'mismatch', message: 'the workflow id is not the one of this tenant and request id' } };
    } else {
      const token = admission.token;
      admissionView = { present, ...check(token, () => verifyRequestAssertion(token, request, anchors, context)) };
    }
  }
  return admissionView;
}
