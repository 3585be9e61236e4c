/**
 * Approver identity: bearer JWTs signed with Ed25519, verified with pinned algorithm, issuer,
 * audience, explicit `typ` and required expiry (RFC 8725). The embedded default signs them with a
 * local key pair under `.toolgate/keys/`, created on first use and never committed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, importPKCS8, importSPKI, type CryptoKey } from 'jose';
import { ApproverSchema, canonicalId, formatIssues, type Approver } from '../shared/index.js';
import { TokenError, type TokenRefusal } from './errors.js';
import { verifyJwt } from './jwt.js';
import { ensureEd25519KeyPair, type KeyPaths } from './keys.js';

/** Re-exported so existing callers keep importing token errors and key paths from here. */
export { TokenError, type TokenRefusal };
/** Where a local key pair lives. */
export type { KeyPaths };

/** The only signing algorithm toolgate issues and accepts for approver tokens. */
export const APPROVER_TOKEN_ALG = 'EdDSA';
/** The explicit JWT type of approver tokens, so no other JWT can be replayed as one. */
export const APPROVER_TOKEN_TYP = 'toolgate-approver+jwt';
/** Default issuer of the local token issuer. */
export const DEFAULT_ISSUER = 'toolgate-local';
/** Audience of approver tokens. */
export const APPROVER_AUDIENCE = 'toolgate-approvals';
/** Clock skew tolerated when checking `exp` and `nbf`, in seconds. @default 30 */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

/** Turns a bearer token into the approver it authenticates, or throws `TokenError` saying why not. */
export interface ApproverVerifier {
  /** The approver `token` identifies; throws `TokenError` when it is not a valid approver token. */
  verify(token: string): Promise<Approver>;
}

/** The default key paths under a state directory. */
export function defaultKeyPaths(stateDir: string): KeyPaths {
  return {
    privateKeyFile: join(stateDir, 'keys', 'approver-token.key.pem'),
    publicKeyFile: join(stateDir, 'keys', 'approver-token.pub.pem'),
  };
}

/** Creates the local Ed25519 key pair if it does not exist yet; returns whether it was created. */
export async function ensureLocalKeyPair(paths: KeyPaths): Promise<boolean> {
  return ensureEd25519KeyPair(paths);
}

/** What an approver token asserts. */
export interface ApproverClaims {
  sub: string;
  tenant: string;
  groups: string[];
}

/** Mints an approver token with the local private key. */
export async function issueApproverToken(claims: ApproverClaims, options: { privateKeyPem: string; ttlSeconds?: number; issuer?: string }): Promise<string> {
  // The token carries the subject as given (an identity provider's spelling); verification takes its canonical form.
  const approver = ApproverSchema.safeParse({ id: canonicalId(claims.sub), tenant: claims.tenant, groups: claims.groups });
  if (!approver.success) throw new TokenError(`cannot issue token: ${formatIssues(approver.error).join('; ')}`);
  const key = await importPKCS8(options.privateKeyPem, APPROVER_TOKEN_ALG);
  return new SignJWT({ tenant: claims.tenant, groups: claims.groups })
    .setProtectedHeader({ alg: APPROVER_TOKEN_ALG, typ: APPROVER_TOKEN_TYP })
    .setSubject(claims.sub)
    .setIssuer(options.issuer ?? DEFAULT_ISSUER)
    .setAudience(APPROVER_AUDIENCE)
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime(Math.floor(Date.now() / 1000) + (options.ttlSeconds ?? 8 * 3600))
    .sign(key);
}

/**
 * The approver named by already-verified claims, with the id in canonical form; throws
 * `TokenError` naming the claim that is missing or not a valid identifier (after canonicalization:
 * an id must come out as 1-128 letters, digits and . _ : @ -). `claims` names each claim as the token carried it.
 */
export function approverFromClaims(
  values: { id: unknown; tenant: unknown; groups: unknown },
  claims: { id: string; tenant: string; groups: string },
  what = 'approver token',
): Approver {
  const refuse = (message: string) => new TokenError(`invalid ${what}: ${message}`, { reason: 'claims' });
  if (values.id === undefined) throw refuse(`the ${claims.id} claim (approver id) is missing`);
  if (values.tenant === undefined) throw refuse(`the ${claims.tenant} claim (tenant) is missing`);
  if (values.groups === undefined) throw refuse(`the ${claims.groups} claim (groups) is missing`);
  if (typeof values.id !== 'string') throw refuse(`the ${claims.id} claim (approver id) must be a string`);
  if (typeof values.tenant !== 'string') throw refuse(`the ${claims.tenant} claim (tenant) must be a string`);
  if (!Array.isArray(values.groups) || !values.groups.every((group) => typeof group === 'string')) {
    throw refuse(`the ${claims.groups} claim (groups) must be an array of strings`);
  }
  // One person is one identity: the id is taken in canonical form (NFKC, case folded), so `Maria`
  // and `ｍａｒｉａ` are the same approver as `maria` everywhere after this point.
  const parsed = ApproverSchema.safeParse({ id: canonicalId(values.id), tenant: values.tenant, groups: values.groups });
  if (!parsed.success) {
    const names: Record<string, string> = { id: claims.id, tenant: claims.tenant, groups: claims.groups };
    const problems = parsed.error.issues.map((issue) => {
      const claim = names[String(issue.path[0])] ?? String(issue.path[0]);
      return `the ${claim} claim: ${issue.message}`;
    });
    throw refuse(problems.join('; '));
  }
  return parsed.data;
}

/** Verifies approver tokens minted by the local issuer against its public key. */
export class ApproverTokenVerifier implements ApproverVerifier {
  private constructor(
    private readonly key: CryptoKey,
    private readonly issuer: string,
    private readonly clockToleranceSeconds: number,
  ) {}

  /** A verifier for the local issuer's public key (PEM, SPKI). */
  static async fromPublicKeyPem(pem: string, issuer = DEFAULT_ISSUER, options: { clockToleranceSeconds?: number } = {}): Promise<ApproverTokenVerifier> {
    return new ApproverTokenVerifier(await importSPKI(pem, APPROVER_TOKEN_ALG), issuer, options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS);
  }

  /** A verifier reading the public key file. */
  static async fromPublicKeyFile(file: string, issuer = DEFAULT_ISSUER, options: { clockToleranceSeconds?: number } = {}): Promise<ApproverTokenVerifier> {
    return ApproverTokenVerifier.fromPublicKeyPem(await readFile(file, 'utf8'), issuer, options);
  }

  /** The approver a token identifies; throws `TokenError` saying what is wrong with it. */
  async verify(token: string): Promise<Approver> {
    const { payload } = await verifyJwt(token, this.key, {
      algorithms: [APPROVER_TOKEN_ALG],
      issuer: this.issuer,
      audience: APPROVER_AUDIENCE,
      typ: APPROVER_TOKEN_TYP,
      clockToleranceSeconds: this.clockToleranceSeconds,
      requiredClaims: ['exp', 'sub', 'iss', 'aud'],
      what: 'approver token',
    });
    return approverFromClaims({ id: payload.sub, tenant: payload.tenant, groups: payload.groups }, { id: 'sub', tenant: 'tenant', groups: 'groups' });
  }
}
