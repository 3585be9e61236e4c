/**
 * Sign-in through an OpenID Connect provider for the inbox: the authorization-code flow with PKCE
 * (S256), `state` and `nonce`, through `openid-client`. The provider's ID token becomes the
 * session's bearer token — the API's OIDC verifier must accept it (its audience is this client's id).
 */
import * as client from 'openid-client';
import { isLoopbackHost } from '../auth/oidc.js';

/** The inbox's OIDC client registration. */
export interface InboxOidcOptions {
  /** The provider's issuer URL (discovery at `<issuer>/.well-known/openid-configuration`). */
  issuer: string;
  clientId: string;
  /** For confidential clients (client_secret_basic); a public client uses PKCE alone. */
  clientSecret?: string;
  /** This inbox's callback, registered at the provider: `<public origin>/inbox/signin/callback`. */
  redirectUri: string;
  /** @default ['openid', 'profile'] */
  scopes?: string[];
}

/** What the browser keeps (sealed) between the redirect to the provider and the callback. */
export interface PendingSignIn {
  state: string;
  nonce: string;
  codeVerifier: string;
  next: string;
}

/** The flow against one provider; discovery happens on first use and is retried after a failure. */
export class InboxOidc {
  private configuration: Promise<client.Configuration> | undefined;

  constructor(private readonly options: InboxOidcOptions) {
    const issuer = new URL(options.issuer);
    // Plain http only where it cannot be intercepted on the wire (a provider on this machine, in tests and dev).
    if (issuer.protocol !== 'https:' && !(issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname))) {
      throw new Error('the inbox OIDC issuer must use https (plain http only on a loopback address)');
    }
    new URL(options.redirectUri);
  }

  private config(): Promise<client.Configuration> {
    this.configuration ??= (async () => {
      const issuer = new URL(this.options.issuer);
      const insecure = issuer.protocol === 'http:';
      return client.discovery(
        issuer,
        this.options.clientId,
        undefined,
        this.options.clientSecret ? client.ClientSecretBasic(this.options.clientSecret) : client.None(),
        insecure ? { execute: [client.allowInsecureRequests] } : undefined,
      );
    })();
    this.configuration.catch(() => {
      this.configuration = undefined;
    });
    return this.configuration;
  }

  /** The provider's authorization URL for a new sign-in, and what must be kept until the callback. */
  async start(next: string): Promise<{ url: URL; pending: PendingSignIn }> {
    const config = await this.config();
    const codeVerifier = client.randomPKCECodeVerifier();
    const pending: PendingSignIn = { state: client.randomState(), nonce: client.randomNonce(), codeVerifier, next };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.options.redirectUri,
      scope: (this.options.scopes ?? ['openid', 'profile']).join(' '),
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    return { url, pending };
  }

  /**
   * Redeems the callback's code (checking state, nonce and the PKCE verifier) and returns the ID
   * token; throws when the provider refused or anything does not match.
   */
  async finish(query: URLSearchParams, pending: PendingSignIn): Promise<string> {
    const config = await this.config();
    // The callback URL as registered, with the query the provider sent: openid-client checks state and iss on it.
    const current = new URL(this.options.redirectUri);
    current.search = query.toString();
    const tokens = await client.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    if (!tokens.id_token) throw new Error('the provider returned no ID token');
    return tokens.id_token;
  }
}
