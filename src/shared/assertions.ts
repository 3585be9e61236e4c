/**
 * Signed assertions, verified inside the workflow: the front door's signature on each request it
 * admits, and the approval API's signature on each decision it authenticated. Both are compact
 * JWS (RFC 7515) signed with Ed25519 (`alg: EdDSA`, RFC 8037) with an explicit `typ`, a `kid` that
 * names the signing key, and the audience `toolgate-workflow`.
 *
 * This module is pure and deterministic, so the workflow sandbox runs it: Ed25519 comes from
 * `@noble/curves` (strict RFC 8032 verification, not ZIP-215), SHA-256 from `@noble/hashes`,
 * base64url from `@scure/base` and canonical JSON (RFC 8785) from `canonicalize`. Node's own
 * crypto signs them (src/trust/), and verifies them again right before a side effect.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { base64urlnopad } from '@scure/base';
import canonicalize from 'canonicalize';
import type { ToolRequest } from './requests.js';

// The workflow sandbox evaluates this module again for every workflow, and a workflow verifies one
// or two signatures. noble's default precomputed table for the base point (window 6, about 1,400
// point additions, built on the first multiplication) would be rebuilt per workflow and cost more
// than it saves: the table-less path (window 1, public inputs only) makes a workflow's first
// verification about 3x cheaper (21 -> 7 ms cold) for about 1.5x on a warm repeat.
ed25519.Point.BASE.precompute(1);

/** The `typ` of a front door's request assertion. */
export const REQUEST_ASSERTION_TYP = 'toolgate-request+jwt';
/** The `typ` of an approval API's decision assertion. */
export const DECISION_ASSERTION_TYP = 'toolgate-decision+jwt';
/** The audience of both assertions: the workflow that verifies them. */
export const ASSERTION_AUDIENCE = 'toolgate-workflow';
/** The only algorithm of assertions. */
export const ASSERTION_ALG = 'EdDSA';
/** Clock skew tolerated between the signer and the workflow, in milliseconds. */
export const ASSERTION_CLOCK_TOLERANCE_MS = 60_000;
/** How long a request assertion is valid after it was signed: the front door starts the workflow at once, so a minute is plenty and keeps a copied admission short-lived. */
export const REQUEST_ASSERTION_TTL_SECONDS = 60;
/** How long a decision assertion is valid: the API sends it at once, and signs a new one to retry. */
export const DECISION_ASSERTION_TTL_SECONDS = 300;
/** Largest assertion accepted (an edit carries the new arguments, at most 256 KiB of JSON). */
export const MAX_ASSERTION_CHARS = 400_000;

/** A public key a workflow trusts: its id and the raw 32-byte Ed25519 key, base64url (the JWK `x`). */
export interface TrustedKey {
  kid: string;
  x: string;
}

/**
 * The keys a workflow trusts, as the worker gives them (recorded in the history): front doors'
 * request-signing keys and approval APIs' decision-signing keys. Several keys per kind allow
 * rotation; a key is one kind only.
 */
export interface TrustAnchors {
  requestKeys: TrustedKey[];
  decisionKeys: TrustedKey[];
}

/** Why an assertion was refused: a stable code and a sentence. */
export type AssertionProblem =
  'malformed' | 'wrong_type' | 'unknown_key' | 'bad_signature' | 'wrong_audience' | 'expired' | 'not_yet_valid' | 'mismatch' | 'replayed';

/** An assertion that does not verify; `problem` says why in one word. */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
  constructor(
    readonly problem: AssertionProblem,
    message: string,
  ) {
    super(message);
  }
}

/** Claims every assertion carries (JWT registered claims, RFC 7519). */
export interface AssertionClaims {
  iss: string;
  aud: string;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
  /** Unique per assertion: a replayed assertion is refused by it. */
  jti: string;
}

/** What the front door asserts about a request it admitted: who (from the credential), where, and a digest of the whole request. */
export interface RequestAssertionClaims extends AssertionClaims {
  /** The actor id (canonical form), from the agent credential. */
  sub: string;
  tenant: string;
  environment: string;
  request_id: string;
  workflow_id: string;
  /** SHA-256 (hex) of the RFC 8785 canonical JSON of the request the workflow is started with. */
  request_digest: string;
}

/** What the approval API asserts about a decision: who authenticated, how, and exactly what they decided on. */
export interface DecisionAssertionClaims extends AssertionClaims {
  /** The approver id (canonical form), from the approver's credential. */
  sub: string;
  tenant: string;
  groups: string[];
  request_id: string;
  workflow_id: string;
  /** The run the approver looked at; a decision never applies to another run of the same id. */
  run_id: string;
  /** The proposal digest the decision is bound to. */
  digest: string;
  decision: 'approve' | 'reject' | 'edit';
  /** `end_user`: the end user's confirmation relayed by the front door (sub is the end user, groups empty). */
  channel: 'api' | 'link' | 'end_user';
  /** The single-use nonce of the one-click link the decision came through. */
  link_nonce?: string;
  reason?: string;
  /** The changed arguments of an edit. */
  args?: Record<string, unknown>;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The RFC 8785 canonical JSON of a JSON value: the project's only call of the canonicalizer, so
 * every digest and every signed message is built from the same bytes. Throws a TypeError for a
 * value JSON cannot carry (undefined, a function), and the canonicalizer's error for NaN, an
 * infinity, a lone surrogate or a cycle.
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no canonical JSON form');
  return text;
}

/**
 * SHA-256 hex of the RFC 8785 canonical JSON of a JSON value: the one canonical-JSON hash of the
 * project (request and proposal digests, policy and manifest digests, audit chain headers). Pure,
 * so the workflow computes it in its sandbox exactly as the front door, the worker and the CLI do.
 */
export function canonicalSha256(value: unknown): string {
  return bytesToHex(sha256(utf8.encode(canonicalJson(value))));
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8.decode(base64urlnopad.decode(part)));
  } catch {
    throw new AssertionError('malformed', `the assertion's ${what} is not base64url JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new AssertionError('malformed', `the assertion's ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Verifies a compact JWS assertion: EdDSA with a key from `keys` named by `kid`, the expected
 * `typ`, the workflow audience, and `iat`/`exp` around `nowMs`. Returns its claims; throws
 * `AssertionError` saying what is wrong. Binding to a request (ids, digests) is the caller's part.
 */
export function verifyAssertion<T extends AssertionClaims>(token: unknown, keys: readonly TrustedKey[], expected: { typ: string; nowMs: number }): T {
  if (typeof token !== 'string' || token.length === 0) throw new AssertionError('malformed', 'no assertion was given');
  if (token.length > MAX_ASSERTION_CHARS) throw new AssertionError('malformed', `the assertion is longer than ${MAX_ASSERTION_CHARS} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) throw new AssertionError('malformed', 'the assertion is not a compact JWS (three dot-separated parts)');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodeJson(headerPart, 'header');
  if (header.alg !== ASSERTION_ALG) throw new AssertionError('wrong_type', `the assertion's alg must be ${ASSERTION_ALG}`);
  if (header.typ !== expected.typ) throw new AssertionError('wrong_type', `the assertion's typ must be ${expected.typ}`);
  if (header.crit !== undefined) throw new AssertionError('wrong_type', 'the assertion must not carry critical header parameters');
  const key = typeof header.kid === 'string' ? keys.find((candidate) => candidate.kid === header.kid) : undefined;
  if (!key)
    throw new AssertionError(
      'unknown_key',
      `the assertion is signed with key ${JSON.stringify(typeof header.kid === 'string' ? header.kid : '')}, which this request does not trust`,
    );
  let valid = false;
  try {
    const signature = base64urlnopad.decode(signaturePart);
    const publicKey = base64urlnopad.decode(key.x);
    valid =
      signature.length === 64 &&
      publicKey.length === 32 &&
      ed25519.verify(signature, utf8.encode(`${headerPart}.${payloadPart}`), publicKey, { zip215: false });
  } catch {
    valid = false;
  }
  if (!valid) throw new AssertionError('bad_signature', "the assertion's signature does not verify");
  const claims = decodeJson(payloadPart, 'payload');
  if (claims.aud !== ASSERTION_AUDIENCE) throw new AssertionError('wrong_audience', `the assertion's audience must be ${ASSERTION_AUDIENCE}`);
  if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || typeof claims.jti !== 'string' || typeof claims.iss !== 'string') {
    throw new AssertionError('malformed', 'the assertion must carry iss, iat, exp and jti');
  }
  if (claims.iat * 1000 > expected.nowMs + ASSERTION_CLOCK_TOLERANCE_MS) throw new AssertionError('not_yet_valid', 'the assertion was issued in the future');
  if (claims.exp * 1000 < expected.nowMs - ASSERTION_CLOCK_TOLERANCE_MS)
    throw new AssertionError('expired', `the assertion expired at ${new Date(claims.exp * 1000).toISOString()}`);
  return claims as unknown as T;
}

/**
 * Verifies the front door's assertion on a request: a valid signature by a trusted front door,
 * issued for this workflow id and this exact request (the digest of its canonical JSON), around
 * the time the workflow was started. Throws `AssertionError`.
 */
export function verifyRequestAssertion(
  token: unknown,
  request: ToolRequest,
  anchors: TrustAnchors,
  context: { workflowId: string; startedAtMs: number },
): RequestAssertionClaims {
  const claims = verifyAssertion<RequestAssertionClaims>(token, anchors.requestKeys, { typ: REQUEST_ASSERTION_TYP, nowMs: context.startedAtMs });
  const mismatch = (what: string) => new AssertionError('mismatch', `the request assertion was issued for another ${what}`);
  if (claims.workflow_id !== context.workflowId) throw mismatch('workflow');
  if (claims.request_id !== request.requestId || claims.tenant !== request.tenant) throw mismatch('request');
  if (claims.environment !== request.environment || claims.sub !== request.actor.id) throw mismatch('identity');
  if (claims.request_digest !== canonicalSha256(request)) throw mismatch('request body');
  return claims;
}

/**
 * Verifies an approval API's decision assertion for this run of this request (signature, type,
 * audience, time, request, workflow and run ids). Whether the decision may apply — digest,
 * eligibility, replays — is for the approval rules. Throws `AssertionError`.
 */
export function verifyDecisionAssertion(
  token: unknown,
  anchors: TrustAnchors,
  context: { requestId: string; workflowId: string; runId: string; nowMs: number },
): DecisionAssertionClaims {
  const claims = verifyAssertion<DecisionAssertionClaims>(token, anchors.decisionKeys, { typ: DECISION_ASSERTION_TYP, nowMs: context.nowMs });
  if (claims.request_id !== context.requestId || claims.workflow_id !== context.workflowId || claims.run_id !== context.runId) {
    throw new AssertionError('mismatch', 'the decision assertion was issued for another request or run');
  }
  const { decision, channel } = claims;
  if (decision !== 'approve' && decision !== 'reject' && decision !== 'edit')
    throw new AssertionError('malformed', 'the decision must be approve, reject or edit');
  if (channel !== 'api' && channel !== 'link' && channel !== 'end_user') throw new AssertionError('malformed', 'the channel must be api, link or end_user');
  if (channel === 'end_user' && (!Array.isArray(claims.groups) || claims.groups.length > 0 || claims.link_nonce !== undefined)) {
    throw new AssertionError('malformed', "an end user's confirmation carries no groups and no link nonce");
  }
  if (typeof claims.sub !== 'string' || typeof claims.tenant !== 'string' || typeof claims.digest !== 'string') {
    throw new AssertionError('malformed', 'the decision assertion must carry sub, tenant and digest');
  }
  if (!Array.isArray(claims.groups) || !claims.groups.every((group) => typeof group === 'string')) {
    throw new AssertionError('malformed', "the decision assertion's groups must be a list of strings");
  }
  if (claims.args !== undefined && (claims.args === null || typeof claims.args !== 'object' || Array.isArray(claims.args))) {
    throw new AssertionError('malformed', "the decision assertion's args must be an object");
  }
  return claims;
}
