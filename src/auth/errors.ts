/** Errors of the authentication layer: why a token was refused, and which setting is wrong. */

/** Why a token was refused, as a stable code the API can log or map to a status. */
export type TokenRefusal =
  'malformed' | 'algorithm' | 'signature' | 'expired' | 'not_yet_valid' | 'issuer' | 'audience' | 'type' | 'claims' | 'wrong_request' | 'key_unavailable';

/** A token was missing, malformed, badly signed, expired or carried invalid claims. */
export class TokenError extends Error {
  override readonly name = 'TokenError';
  /** Why the token was refused; `key_unavailable` means the verifier could not get keys (not the token's fault). */
  readonly reason: TokenRefusal;

  constructor(message: string, options: { cause?: unknown; reason?: TokenRefusal } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = options.reason ?? 'claims';
  }
}

/** An authentication setting (environment variable or option) is missing or invalid; the message names it. */
export class AuthConfigError extends Error {
  override readonly name = 'AuthConfigError';

  constructor(
    /** The variable or option at fault, e.g. `TOOLGATE_OIDC_ISSUER`. */
    readonly setting: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${setting}: ${message}`, options);
  }
}
