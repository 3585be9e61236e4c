/** Errors of the authentication layer: why a token was refused, and which setting is wrong. */
import { ToolgateError } from '../errors.js';

/** Why a token was refused, as a stable code the API can log or map to a status. */
export type TokenRefusal =
  'malformed' | 'algorithm' | 'signature' | 'expired' | 'not_yet_valid' | 'issuer' | 'audience' | 'type' | 'claims' | 'wrong_request' | 'key_unavailable';

/** A token was missing, malformed, badly signed, expired or carried invalid claims. */
export class TokenError extends ToolgateError {
  override readonly name = 'TokenError';
  /** Why the token was refused; `key_unavailable` means the verifier could not get keys (not the token's fault). */
  readonly reason: TokenRefusal;

  constructor(message: string, options: { cause?: unknown; reason?: TokenRefusal } = {}) {
    // Keys that could not be fetched are the identity provider's trouble, not the token's (503, not 401).
    super(options.reason === 'key_unavailable' ? 'identity_provider_unavailable' : 'invalid_token', message, { cause: options.cause });
    this.reason = options.reason ?? 'claims';
  }
}

/** An authentication setting (environment variable or option) is missing or invalid; the message names it. */
export class AuthConfigError extends ToolgateError {
  override readonly name = 'AuthConfigError';

  constructor(
    /** The variable or option at fault, e.g. `TOOLGATE_OIDC_ISSUER`. */
    readonly setting: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('auth_config_invalid', `${setting}: ${message}`, options);
  }
}
