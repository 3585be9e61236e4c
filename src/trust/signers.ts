/**
 * Signing assertions: the front door signs each request it admits, the approval API signs each
 * decision of an approver it authenticated. Compact JWS with EdDSA, an explicit `typ`, the key's
 * `kid` and the workflow audience; the workflow verifies them with src/shared/assertions.ts.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import {
  ASSERTION_ALG,
  ASSERTION_AUDIENCE,
  DECISION_ASSERTION_TTL_SECONDS,
  DECISION_ASSERTION_TYP,
  REQUEST_ASSERTION_TTL_SECONDS,
  REQUEST_ASSERTION_TYP,
  canonicalSha256,
  type DecisionAssertionClaims,
} from '../shared/assertions.js';
import type { ToolRequest } from '../shared/requests.js';
import type { SigningKey } from './keys.js';

/** The issuer of request assertions. */
export const FRONT_DOOR_ISSUER = 'toolgate-front-door';
/** The issuer of decision assertions. */
export const APPROVALS_ISSUER = 'toolgate-approvals';

async function sign(key: SigningKey, typ: string, issuer: string, claims: Record<string, unknown>, ttlSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: ASSERTION_ALG, typ, kid: key.kid })
    .setIssuer(issuer)
    .setAudience(ASSERTION_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .setJti(randomUUID())
    .sign(key.privateKey);
}

/** Signs the requests the front door admits. */
export class RequestSigner {
  constructor(private readonly key: SigningKey) {}

  /** The id of the signing key. */
  get kid(): string {
    return this.key.kid;
  }

  /**
   * The assertion that the front door admitted exactly `request` (identity taken from the agent's
   * credential) for `workflowId`. `request` must be the value the workflow is started with;
   * `requestDigest` is its canonical digest when the caller already has it.
   */
  async sign(request: ToolRequest, workflowId: string, options: { ttlSeconds?: number; requestDigest?: string } = {}): Promise<string> {
    return sign(
      this.key,
      REQUEST_ASSERTION_TYP,
      FRONT_DOOR_ISSUER,
      {
        sub: request.actor.id,
        tenant: request.tenant,
        environment: request.environment,
        request_id: request.requestId,
        workflow_id: workflowId,
        request_digest: options.requestDigest ?? canonicalSha256(request),
      },
      options.ttlSeconds ?? REQUEST_ASSERTION_TTL_SECONDS,
    );
  }
}

/** What the approval API asserts about one decision (the registered claims are added when signing). */
export type DecisionStatement = Omit<DecisionAssertionClaims, 'iss' | 'aud' | 'iat' | 'exp' | 'jti'>;

/** Signs the decisions of approvers the approval API (or the link endpoint) authenticated. */
export class DecisionSigner {
  constructor(private readonly key: SigningKey) {}

  /** The id of the signing key. */
  get kid(): string {
    return this.key.kid;
  }

  /** The decision assertion for `statement`, valid for DECISION_ASSERTION_TTL_SECONDS. */
  async sign(statement: DecisionStatement): Promise<string> {
    return sign(this.key, DECISION_ASSERTION_TYP, APPROVALS_ISSUER, { ...statement }, DECISION_ASSERTION_TTL_SECONDS);
  }
}
