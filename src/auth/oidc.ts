/**
 * Approver identity from an OpenID Connect provider: tokens signed by the provider's keys (JWKS),
 * with pinned asymmetric algorithms, required issuer, audience and expiry, and a configurable
 * mapping from the provider's claims to toolgate's approver (id, tenant, groups).
 */
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Approver } from '../shared/index.js';
import { AuthConfigError, TokenError } from './errors.js';
import { claimAt, verifyJwt } from './jwt.js';
import { DEFAULT_CLOCK_TOLERANCE_SECONDS, approverFromClaims, type ApproverVerifier } from './tokens.js';

/** Asymmetric JWS algorithms an OIDC verifier may be pinned to; symmetric (HS*) and `none` never. */
export const OIDC_ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
/** Algorithms accepted when the configuration names none. @default ['RS256', 'ES256'] */
export const DEFAULT_OIDC_ALGORITHMS = ['RS256', 'ES256'];

/** How an OIDC verifier finds keys and maps claims. */
export interface OidcVerifierOptions {
  /** The exact `iss` the provider puts in its tokens. */
  issuer: string;
  /** The provider's JWKS endpoint (https, or http on a loopback address). */
  jwksUrl: string;
  /** The `aud` the tokens must carry (one of them when several are given). */
  audience: string | string[];
  /** Accepted signing algorithms. @default ['RS256', 'ES256'] */
  algorithms?: string[];
  /** Expected `typ` header (many providers send `JWT` or `at+jwt`); not checked when absent. */
  typ?: string;
  /** Clock skew tolerated on `exp` and `nbf`, in seconds. @default 30 */
  clockToleranceSeconds?: number;
  /** Claim holding the approver id. @default 'sub' */
  subjectClaim?: string;
  /** Claim (or dot path) holding the groups: a string array or a space/comma-separated string. @default 'groups' */
  groupsClaim?: string;
  /**
   * Claim (or dot path) holding the tenant. @default 'tenant' When `tenant` is fixed and this is
   * also given, the claim must be present and equal to the fixed tenant.
   */
  tenantClaim?: string;
  /** A fixed tenant for providers that carry none; the tenant claim is then not read unless `tenantClaim` is given. */
  tenant?: string;
  /** How long a JWKS fetch may take, in milliseconds. @default 5000 */
  jwksTimeoutMs?: number;
  /** Least time between two JWKS refetches (e.g. on an unknown `kid`), in milliseconds. @default 30000 */
  jwksCooldownMs?: number;
  /** How long fetched keys are trusted before a refetch, in milliseconds. @default 600000 */
  jwksCacheMaxAgeMs?: number;
}

/** Verifies approver tokens issued by an OIDC provider and maps their claims to an approver. */
export class OidcApproverVerifier implements ApproverVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly algorithms: string[];
  private readonly subjectClaim: string;
  private readonly groupsClaim: string;
  private readonly tenantClaim: string | undefined;

  /** Checks the options (throwing `AuthConfigError` naming the option) and prepares the key set; fetches nothing yet. */
  constructor(private readonly options: OidcVerifierOptions) {
    if (!options.issuer) throw new AuthConfigError('issuer', 'the issuer is required');
    const audiences = Array.isArray(options.audience) ? options.audience : [options.audience];
    if (audiences.length === 0 || audiences.some((aud) => typeof aud !== 'string' || aud === '')) {
      throw new AuthConfigError('audience', 'at least one non-empty audience is required');
    }
    this.algorithms = checkAlgorithms(options.algorithms ?? DEFAULT_OIDC_ALGORITHMS);
    const url = checkJwksUrl(options.jwksUrl);
    this.subjectClaim = options.subjectClaim || 'sub';
    this.groupsClaim = options.groupsClaim || 'groups';
    if (options.tenant !== undefined && options.tenant === '') throw new AuthConfigError('tenant', 'the fixed tenant must not be empty');
    this.tenantClaim = options.tenantClaim || (options.tenant === undefined ? 'tenant' : undefined);
    const tolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
    if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 300) {
      throw new AuthConfigError('clockToleranceSeconds', 'must be between 0 and 300 seconds');
    }
    this.keys = createRemoteJWKSet(url, {
      timeoutDuration: options.jwksTimeoutMs ?? 5000,
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
      cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
    });
  }

  /** The approver a provider token identifies; throws `TokenError` saying what is wrong with it. */
  async verify(token: string): Promise<Approver> {
    const { payload } = await verifyJwt(token, this.keys, {
      algorithms: this.algorithms,
      issuer: this.options.issuer,
      audience: this.options.audience,
      typ: this.options.typ,
      clockToleranceSeconds: this.options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['exp', 'iss', 'aud'],
      what: 'approver token',
    });
    return approverFromClaims(
      { id: claimAt(payload, this.subjectClaim), tenant: this.tenantOf(payload), groups: this.groupsOf(payload) },
      { id: this.subjectClaim, tenant: this.tenantClaim ?? '(fixed tenant)', groups: this.groupsClaim },
    );
  }

  private tenantOf(payload: JWTPayload): unknown {
    const fixed = this.options.tenant;
    if (this.tenantClaim === undefined) return fixed;
    const claimed = claimAt(payload, this.tenantClaim);
    if (fixed !== undefined && claimed !== undefined && claimed !== fixed) {
      throw new TokenError(`invalid approver token: the ${this.tenantClaim} claim names another tenant than ${fixed}`, { reason: 'claims' });
    }
    return claimed;
  }

  private groupsOf(payload: JWTPayload): unknown {
    const value = claimAt(payload, this.groupsClaim);
    if (typeof value !== 'string') return value;
    return value.split(/[\s,]+/).filter(Boolean);
  }
}

function checkAlgorithms(algorithms: string[]): string[] {
  if (!Array.isArray(algorithms) || algorithms.length === 0) throw new AuthConfigError('algorithms', 'name at least one signing algorithm');
  for (const alg of algorithms) {
    if (/^HS/i.test(alg) || alg.toLowerCase() === 'none') {
      throw new AuthConfigError(
        'algorithms',
        `${alg} is refused: only asymmetric algorithms (${OIDC_ALLOWED_ALGORITHMS.join(', ')}) may verify approver tokens`,
      );
    }
    if (!(OIDC_ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new AuthConfigError('algorithms', `${alg} is not supported; use one of ${OIDC_ALLOWED_ALGORITHMS.join(', ')}`);
    }
  }
  return [...new Set(algorithms)];
}

/** True for hosts that never leave the machine, where plain http cannot be intercepted on the wire. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function checkJwksUrl(jwksUrl: string): URL {
  let url: URL;
  try {
    url = new URL(jwksUrl);
  } catch (err) {
    throw new AuthConfigError('jwksUrl', `must be an absolute URL, got ${JSON.stringify(jwksUrl)}`, { cause: err });
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new AuthConfigError('jwksUrl', 'must use https (plain http only on a loopback address): keys fetched in the clear can be replaced');
  }
  return url;
}
