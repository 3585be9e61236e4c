/**
 * The one place toolgate verifies a JWT with `jose`: pinned algorithms, issuer, audience, type and
 * required claims, and every `jose` failure turned into a `TokenError` that says why in words.
 */
import { errors, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyGetKey, type KeyObject } from 'jose';
import { TokenError, type TokenRefusal } from './errors.js';

/** Longest token accepted; anything longer is refused before it is parsed. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** What a verification insists on. */
export interface JwtExpectations {
  algorithms: string[];
  issuer: string;
  audience: string | string[];
  /** The expected `typ` header; when absent, `typ` is not checked. */
  typ?: string;
  clockToleranceSeconds: number;
  requiredClaims: string[];
  /** What the token is, for messages (`approver token`, `link`). */
  what: string;
}

/** Verifies a compact JWT against a key (or a key resolver) and returns its payload. */
export async function verifyJwt(
  token: string,
  key: CryptoKey | KeyObject | JWTVerifyGetKey,
  expect: JwtExpectations,
): Promise<{ payload: JWTPayload; header: { alg: string; typ?: string } }> {
  if (typeof token !== 'string' || token.length === 0) throw new TokenError(`${expect.what} is missing`, { reason: 'malformed' });
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new TokenError(`${expect.what} is ${token.length} characters; at most ${MAX_TOKEN_LENGTH} are accepted`, { reason: 'malformed' });
  }
  const options = {
    algorithms: expect.algorithms,
    issuer: expect.issuer,
    audience: expect.audience,
    typ: expect.typ,
    clockTolerance: expect.clockToleranceSeconds,
    requiredClaims: expect.requiredClaims,
  };
  try {
    // Two calls so TypeScript picks the right overload; both pin the same options.
    const result = typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options);
    return { payload: result.payload, header: { alg: result.protectedHeader.alg, typ: result.protectedHeader.typ } };
  } catch (err) {
    throw tokenErrorFrom(err, expect);
  }
}

/** Turns a `jose` failure into a `TokenError` whose message names the header or claim at fault. */
export function tokenErrorFrom(err: unknown, expect: Pick<JwtExpectations, 'what' | 'algorithms' | 'typ'>): TokenError {
  const refuse = (reason: TokenRefusal, message: string) => new TokenError(`invalid ${expect.what}: ${message}`, { reason, cause: err });
  if (err instanceof TokenError) return err;
  if (err instanceof errors.JWTExpired) return refuse('expired', 'it has expired (exp is in the past)');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
        return refuse('not_yet_valid', 'it is not valid yet (nbf is in the future)');
      case 'iss':
        return refuse('issuer', err.reason === 'missing' ? 'the iss claim is missing' : 'it was issued by another issuer (iss)');
      case 'aud':
        return refuse('audience', err.reason === 'missing' ? 'the aud claim is missing' : 'it is meant for another audience (aud)');
      case 'typ':
        return refuse('type', `its type header (typ) is not ${expect.typ ?? 'the expected one'}`);
      case 'exp':
        return refuse(
          err.reason === 'missing' ? 'claims' : 'expired',
          err.reason === 'missing' ? 'the exp claim is missing; tokens must expire' : 'exp is invalid',
        );
      default:
        return refuse('claims', `the ${err.claim} claim ${err.reason === 'missing' ? 'is missing' : 'is invalid'}`);
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return refuse('algorithm', `its signing algorithm (alg) is not one of ${expect.algorithms.join(', ')}`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return refuse('signature', 'signature verification failed');
  if (err instanceof errors.JWKSNoMatchingKey) return refuse('signature', 'no key of the issuer matches it (kid/alg)');
  if (err instanceof errors.JWKSMultipleMatchingKeys) return refuse('signature', 'several keys of the issuer match it; it must name its key (kid)');
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) {
    return new TokenError(`cannot verify ${expect.what}: the issuer's keys are unavailable (${(err as Error).message})`, {
      reason: 'key_unavailable',
      cause: err,
    });
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported || err instanceof errors.JWKInvalid) {
    return refuse('malformed', `it is malformed (${(err as Error).message})`);
  }
  if (err instanceof errors.JOSEError) return refuse('malformed', (err as Error).message);
  // Anything else (network failure fetching keys, ...) is the verifier's problem, not the token's.
  return new TokenError(`cannot verify ${expect.what}: ${err instanceof Error ? err.message : String(err)}`, { reason: 'key_unavailable', cause: err });
}

/** Reads a claim by name, or by dot path (`realm_access.roles`) when no claim has that exact name. */
export function claimAt(payload: JWTPayload, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let node: unknown = payload;
  for (const segment of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, segment)) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}
