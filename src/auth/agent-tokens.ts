/**
 * Agent identity, the only credential an agent holds: bearer JWTs signed with Ed25519
 * (`typ: toolgate-agent+jwt`, `aud: toolgate-agents`), verified with pinned algorithm, issuer,
 * audience, type and required expiry. The token binds the actor id, type, roles, tenant and
 * environment, optionally the principals the agent acts for and a narrower list of tools; a
 * request body can never widen or change any of them. The type and audience differ from approver
 * tokens, so an agent token can never be replayed as an approver's, nor the other way round.
 */
import { readFile } from 'node:fs/promises';
import { SignJWT, importPKCS8, importSPKI, type CryptoKey } from 'jose';
import { ActorSchema, IDENTIFIER_PATTERN, PrincipalSchema, canonicalId, formatIssues, type Principal } from '../shared/index.js';
import { TokenError } from './errors.js';
import { verifyJwt } from './jwt.js';

/** The only signing algorithm of agent tokens. */
export const AGENT_TOKEN_ALG = 'EdDSA';
/** The explicit JWT type of agent tokens. */
export const AGENT_TOKEN_TYP = 'toolgate-agent+jwt';
/** The audience of agent tokens. */
export const AGENT_AUDIENCE = 'toolgate-agents';
/** Default issuer of the local token issuer (shared with approver tokens). */
export const DEFAULT_AGENT_ISSUER = 'toolgate-local';

/** An agent as its token identifies it: everything a request of this agent may say about who and where. */
export interface AgentIdentity {
  /** The actor id, in canonical form (see src/shared/identity.ts). */
  id: string;
  type: 'agent';
  tenant: string;
  roles: string[];
  /** The environment the agent acts in. */
  environment: string;
  /** The principals the agent acts for (e.g. the user behind it), nearest first. */
  onBehalfOf?: Principal[];
  /** When set, the only tools this agent may request. */
  tools?: string[];
}

/** What an agent token asserts. */
export interface AgentClaims {
  sub: string;
  tenant: string;
  roles: string[];
  environment: string;
  onBehalfOf?: Principal[];
  tools?: string[];
}

/** Turns a bearer token into the agent it authenticates, or throws `TokenError` saying why not. */
export interface AgentVerifier {
  /** The agent `token` identifies; throws `TokenError` when it is not a valid agent token. */
  verify(token: string): Promise<AgentIdentity>;
}

/** Mints an agent token with a PKCS#8 Ed25519 private key. @default ttlSeconds 3600 */
export async function issueAgentToken(claims: AgentClaims, options: { privateKeyPem: string; ttlSeconds?: number; issuer?: string }): Promise<string> {
  const actor = ActorSchema.safeParse({ id: canonicalId(claims.sub), type: 'agent', roles: claims.roles });
  if (!actor.success) throw new TokenError(`cannot issue agent token: ${formatIssues(actor.error).join('; ')}`);
  if (typeof claims.tenant !== 'string' || !IDENTIFIER_PATTERN.test(claims.tenant))
    throw new TokenError('cannot issue agent token: tenant must be an identifier');
  if (typeof claims.environment !== 'string' || !IDENTIFIER_PATTERN.test(claims.environment)) {
    throw new TokenError('cannot issue agent token: environment must be an identifier (the token binds where the agent acts)');
  }
  const extra = parseExtraClaims({ on_behalf_of: claims.onBehalfOf, tools: claims.tools });
  if (typeof extra === 'string') throw new TokenError(`cannot issue agent token: ${extra}`);
  const key = await importPKCS8(options.privateKeyPem, AGENT_TOKEN_ALG);
  return new SignJWT({
    tenant: claims.tenant,
    roles: claims.roles,
    type: 'agent',
    environment: claims.environment,
    ...(extra.onBehalfOf ? { on_behalf_of: extra.onBehalfOf } : {}),
    ...(extra.tools ? { tools: extra.tools } : {}),
  })
    .setProtectedHeader({ alg: AGENT_TOKEN_ALG, typ: AGENT_TOKEN_TYP })
    .setSubject(claims.sub)
    .setIssuer(options.issuer ?? DEFAULT_AGENT_ISSUER)
    .setAudience(AGENT_AUDIENCE)
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime(Math.floor(Date.now() / 1000) + (options.ttlSeconds ?? 3600))
    .sign(key);
}

/** Verifies agent tokens against the issuer's Ed25519 public key. */
export class AgentTokenVerifier implements AgentVerifier {
  private constructor(
    private readonly key: CryptoKey,
    private readonly issuer: string,
    private readonly clockToleranceSeconds: number,
  ) {}

  /** A verifier for a public key (PEM, SPKI). */
  static async fromPublicKeyPem(pem: string, issuer = DEFAULT_AGENT_ISSUER, options: { clockToleranceSeconds?: number } = {}): Promise<AgentTokenVerifier> {
    return new AgentTokenVerifier(await importSPKI(pem, AGENT_TOKEN_ALG), issuer, options.clockToleranceSeconds ?? 30);
  }

  /** A verifier reading the public key file. */
  static async fromPublicKeyFile(file: string, issuer = DEFAULT_AGENT_ISSUER, options: { clockToleranceSeconds?: number } = {}): Promise<AgentTokenVerifier> {
    return AgentTokenVerifier.fromPublicKeyPem(await readFile(file, 'utf8'), issuer, options);
  }

  /** The agent a token identifies; throws `TokenError` naming what is wrong. */
  async verify(token: string): Promise<AgentIdentity> {
    const { payload } = await verifyJwt(token, this.key, {
      algorithms: [AGENT_TOKEN_ALG],
      issuer: this.issuer,
      audience: AGENT_AUDIENCE,
      typ: AGENT_TOKEN_TYP,
      clockToleranceSeconds: this.clockToleranceSeconds,
      requiredClaims: ['exp', 'sub', 'iss', 'aud'],
      what: 'agent token',
    });
    const refuse = (message: string) => new TokenError(`invalid agent token: ${message}`, { reason: 'claims' });
    if (payload.type !== 'agent') throw refuse('the type claim must be "agent"');
    if (typeof payload.tenant !== 'string' || !IDENTIFIER_PATTERN.test(payload.tenant)) throw refuse('the tenant claim must be a tenant id');
    if (typeof payload.environment !== 'string' || !IDENTIFIER_PATTERN.test(payload.environment)) {
      throw refuse('the environment claim must be an environment id (the token binds where the agent acts)');
    }
    const actor = ActorSchema.safeParse({
      id: typeof payload.sub === 'string' ? canonicalId(payload.sub) : payload.sub,
      type: 'agent',
      roles: payload.roles ?? [],
    });
    if (!actor.success) throw refuse(formatIssues(actor.error).join('; ').replace('actor.id', 'sub').replace('actor.roles', 'roles'));
    const extra = parseExtraClaims({ on_behalf_of: payload.on_behalf_of, tools: payload.tools });
    if (typeof extra === 'string') throw refuse(extra);
    return {
      id: actor.data.id,
      type: 'agent',
      tenant: payload.tenant,
      roles: actor.data.roles,
      environment: payload.environment,
      ...(extra.onBehalfOf ? { onBehalfOf: extra.onBehalfOf } : {}),
      ...(extra.tools ? { tools: extra.tools } : {}),
    };
  }
}

/** The optional `on_behalf_of` and `tools` claims, validated (ids canonical); a string says what is wrong. */
function parseExtraClaims(claims: { on_behalf_of?: unknown; tools?: unknown }): { onBehalfOf?: Principal[]; tools?: string[] } | string {
  const out: { onBehalfOf?: Principal[]; tools?: string[] } = {};
  if (claims.on_behalf_of !== undefined) {
    if (!Array.isArray(claims.on_behalf_of) || claims.on_behalf_of.length > 8) return 'the on_behalf_of claim must be a list of at most 8 principals';
    const principals: Principal[] = [];
    for (const item of claims.on_behalf_of) {
      const id = (item as { id?: unknown } | null)?.id;
      const parsed = PrincipalSchema.safeParse({ ...(item as object), id: typeof id === 'string' ? canonicalId(id) : id });
      if (!parsed.success) return `the on_behalf_of claim: ${formatIssues(parsed.error).join('; ')}`;
      principals.push(parsed.data);
    }
    out.onBehalfOf = principals;
  }
  if (claims.tools !== undefined) {
    if (!Array.isArray(claims.tools) || claims.tools.length > 256 || !claims.tools.every((tool) => typeof tool === 'string' && IDENTIFIER_PATTERN.test(tool))) {
      return 'the tools claim must be a list of at most 256 tool names';
    }
    out.tools = claims.tools as string[];
  }
  return out;
}
