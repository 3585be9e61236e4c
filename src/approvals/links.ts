/**
 * Signed one-click approval links. A link token is a short-lived JWT, signed with a local Ed25519
 * key pair that is distinct from the approver-token key, with its own `typ` and audience so neither
 * kind of token can stand in for the other. It binds one approver to one request digest and carries
 * a random `jti`; the workflow enforces that each `jti` is used once.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, importPKCS8, importSPKI, type CryptoKey } from 'jose';
import { IDENTIFIER_PATTERN, type Approver } from '../shared/index.js';
import { TokenError } from '../auth/errors.js';
import { verifyJwt } from '../auth/jwt.js';
import type { KeyPaths } from '../auth/keys.js';
import { approverFromClaims } from '../auth/tokens.js';

/** The only algorithm link tokens are signed and verified with. */
export const LINK_TOKEN_ALG = 'EdDSA';
/** The explicit JWT type of link tokens. */
export const LINK_TOKEN_TYP = 'toolgate-link+jwt';
/** The audience of link tokens; approver tokens carry another. */
export const LINK_AUDIENCE = 'toolgate-approval-links';
/** Default issuer of link tokens. */
export const DEFAULT_LINK_ISSUER = 'toolgate-local';
/** How long a link stays valid unless the request expires sooner, in seconds. @default 900 (15 minutes) */
export const DEFAULT_LINK_TTL_SECONDS = 15 * 60;
/** Clock skew tolerated when verifying links, in seconds. @default 5 */
export const DEFAULT_LINK_CLOCK_TOLERANCE_SECONDS = 5;

const DIGEST_PATTERN = /^[a-f0-9]{64}$/;

/** The default link key paths under a state directory. */
export function defaultLinkKeyPaths(stateDir: string): KeyPaths {
  return {
    privateKeyFile: join(stateDir, 'keys', 'link-signing.key.pem'),
    publicKeyFile: join(stateDir, 'keys', 'link-signing.pub.pem'),
  };
}

/** What a link grants: one approver, one request digest, optionally one fixed decision. */
export interface LinkGrant {
  requestId: string;
  digest: string;
  approver: Approver;
  /** When set, the link can only cast this decision. */
  decision?: 'approve' | 'reject';
  /** The request's expiry; the link never outlives it. */
  requestExpiresAt?: string | Date;
}

/** A minted link token. */
export interface MintedLink {
  token: string;
  jti: string;
  /** ISO time the link stops working. */
  expiresAt: string;
}

/** What a verified link token asserts. */
export interface VerifiedLink {
  /** The single-use nonce; the workflow refuses a second use. */
  jti: string;
  requestId: string;
  digest: string;
  approver: Approver;
  decision?: 'approve' | 'reject';
  /** ISO time the link stops working. */
  expiresAt: string;
}

/** Mints link tokens with the link-signing private key. */
export class LinkSigner {
  private constructor(
    private readonly key: CryptoKey,
    private readonly issuer: string,
    private readonly ttlSeconds: number,
  ) {}

  /** A signer for a PKCS#8 PEM Ed25519 private key. */
  static async fromPrivateKeyPem(pem: string, options: { issuer?: string; ttlSeconds?: number } = {}): Promise<LinkSigner> {
    const ttl = options.ttlSeconds ?? DEFAULT_LINK_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 24 * 3600) throw new RangeError('link ttlSeconds must be a whole number from 1 to 86400');
    return new LinkSigner(await importPKCS8(pem, LINK_TOKEN_ALG), options.issuer ?? DEFAULT_LINK_ISSUER, ttl);
  }

  /** A signer reading the private key file. */
  static async fromPrivateKeyFile(file: string, options: { issuer?: string; ttlSeconds?: number } = {}): Promise<LinkSigner> {
    return LinkSigner.fromPrivateKeyPem(await readFile(file, 'utf8'), options);
  }

  /** Mints a single-use link for `grant`; throws `TokenError` when the grant is invalid or the request already expired. */
  async mintLink(grant: LinkGrant, now = new Date()): Promise<MintedLink> {
    checkBinding(grant.requestId, grant.digest, 'cannot mint link');
    if (grant.decision !== undefined && grant.decision !== 'approve' && grant.decision !== 'reject') {
      throw new TokenError('cannot mint link: decision must be "approve" or "reject"');
    }
    const approver = approverFromClaims(
      { id: grant.approver.id, tenant: grant.approver.tenant, groups: grant.approver.groups },
      { id: 'approver.id', tenant: 'approver.tenant', groups: 'approver.groups' },
      'link grant',
    );
    const nowSeconds = Math.floor(now.getTime() / 1000);
    let exp = nowSeconds + this.ttlSeconds;
    if (grant.requestExpiresAt !== undefined) {
      const requestExpiry = new Date(grant.requestExpiresAt).getTime();
      if (Number.isNaN(requestExpiry)) throw new TokenError('cannot mint link: requestExpiresAt is not a valid time');
      const requestExp = Math.floor(requestExpiry / 1000);
      if (requestExp <= nowSeconds) throw new TokenError(`cannot mint link: request ${grant.requestId} has already expired`);
      exp = Math.min(exp, requestExp);
    }
    const jti = randomUUID();
    const claims: Record<string, unknown> = {
      tenant: approver.tenant,
      groups: approver.groups,
      request_id: grant.requestId,
      digest: grant.digest,
    };
    if (grant.decision) claims.decision = grant.decision;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: LINK_TOKEN_ALG, typ: LINK_TOKEN_TYP })
      .setIssuer(this.issuer)
      .setAudience(LINK_AUDIENCE)
      .setSubject(approver.id)
      .setJti(jti)
      .setIssuedAt(nowSeconds)
      .setNotBefore(nowSeconds)
      .setExpirationTime(exp)
      .sign(this.key);
    return { token, jti, expiresAt: new Date(exp * 1000).toISOString() };
  }
}

/** Verifies link tokens against the link-signing public key. */
export class LinkVerifier {
  private constructor(
    private readonly key: CryptoKey,
    private readonly issuer: string,
    private readonly clockToleranceSeconds: number,
  ) {}

  /** A verifier for an SPKI PEM Ed25519 public key. */
  static async fromPublicKeyPem(pem: string, options: { issuer?: string; clockToleranceSeconds?: number } = {}): Promise<LinkVerifier> {
    return new LinkVerifier(
      await importSPKI(pem, LINK_TOKEN_ALG),
      options.issuer ?? DEFAULT_LINK_ISSUER,
      options.clockToleranceSeconds ?? DEFAULT_LINK_CLOCK_TOLERANCE_SECONDS,
    );
  }

  /** A verifier reading the public key file. */
  static async fromPublicKeyFile(file: string, options: { issuer?: string; clockToleranceSeconds?: number } = {}): Promise<LinkVerifier> {
    return LinkVerifier.fromPublicKeyPem(await readFile(file, 'utf8'), options);
  }

  /**
   * What a link token grants; throws `TokenError` saying why it is refused (wrong type, audience,
   * algorithm or key, expired, malformed claims, or not for `expected.requestId`).
   */
  async verifyLink(token: string, expected: { requestId?: string } = {}): Promise<VerifiedLink> {
    const { payload } = await verifyJwt(token, this.key, {
      algorithms: [LINK_TOKEN_ALG],
      issuer: this.issuer,
      audience: LINK_AUDIENCE,
      typ: LINK_TOKEN_TYP,
      clockToleranceSeconds: this.clockToleranceSeconds,
      requiredClaims: ['exp', 'iss', 'aud', 'sub', 'jti'],
      what: 'link',
    });
    const refuse = (message: string) => new TokenError(`invalid link: ${message}`, { reason: 'claims' });
    if (typeof payload.jti !== 'string' || payload.jti.length < 16 || payload.jti.length > 128) {
      throw refuse('the jti claim must be a random nonce of 16-128 characters');
    }
    if (typeof payload.request_id !== 'string') throw refuse('the request_id claim is missing');
    if (typeof payload.digest !== 'string') throw refuse('the digest claim is missing');
    checkBinding(payload.request_id, payload.digest, 'invalid link');
    const decision = payload.decision;
    if (decision !== undefined && decision !== 'approve' && decision !== 'reject') throw refuse('the decision claim must be "approve" or "reject"');
    if (expected.requestId !== undefined && payload.request_id !== expected.requestId) {
      throw new TokenError(`invalid link: it is for request ${payload.request_id}, not ${expected.requestId}`, { reason: 'wrong_request' });
    }
    const approver = approverFromClaims(
      { id: payload.sub, tenant: payload.tenant, groups: payload.groups },
      { id: 'sub', tenant: 'tenant', groups: 'groups' },
      'link',
    );
    return {
      jti: payload.jti,
      requestId: payload.request_id,
      digest: payload.digest,
      approver,
      ...(decision ? { decision } : {}),
      expiresAt: new Date((payload.exp ?? 0) * 1000).toISOString(),
    };
  }
}

function checkBinding(requestId: unknown, digest: unknown, prefix: string): void {
  if (typeof requestId !== 'string' || !IDENTIFIER_PATTERN.test(requestId)) {
    throw new TokenError(`${prefix}: request_id must be a request id (1-128 letters, digits and . _ : @ -)`, { reason: 'claims' });
  }
  if (typeof digest !== 'string' || !DIGEST_PATTERN.test(digest)) {
    throw new TokenError(`${prefix}: digest must be the 64 hex characters of the proposal digest`, { reason: 'claims' });
  }
}
