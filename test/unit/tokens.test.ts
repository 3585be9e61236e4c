/**
 * The token matrix: every way an approver token can be forged, replayed from elsewhere or stretched
 * past its life is refused, by the local Ed25519 verifier and by the OIDC verifier (keys served
 * from a loopback JWKS endpoint), each with a `TokenError` that says why. Agent tokens bind the
 * environment and validate their narrowing claims; approver and agent ids come out canonical.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SignJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import { AGENT_AUDIENCE, AGENT_TOKEN_TYP, AgentTokenVerifier, DEFAULT_AGENT_ISSUER, issueAgentToken, type AgentClaims } from '../../src/auth/agent-tokens.js';
import { createApproverVerifier } from '../../src/auth/config.js';
import { AuthConfigError, TokenError, type TokenRefusal } from '../../src/auth/errors.js';
import { OidcApproverVerifier } from '../../src/auth/oidc.js';
import { APPROVER_AUDIENCE, APPROVER_TOKEN_TYP, ApproverTokenVerifier, DEFAULT_ISSUER, issueApproverToken } from '../../src/auth/tokens.js';

const now = () => Math.floor(Date.now() / 1000);
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An unsigned token, built by hand the way an attacker would. */
function unsignedToken(payload: JWTPayload, header: Record<string, unknown> = { alg: 'none', typ: 'JWT' }): string {
  return `${b64url(header)}.${b64url(payload)}.`;
}

/** Replaces the payload of a signed token, keeping its header and signature. */
function tamper(token: string, change: (payload: any) => void): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
  change(claims);
  return `${header}.${b64url(claims)}.${signature}`;
}

/** Signs `payload` with HS256 using `secret` (public key bytes, for the RS/HS confusion attack). */
async function hs256(payload: JWTPayload, secret: Uint8Array, header: Record<string, unknown>): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ ...header, alg: 'HS256' }).sign(secret);
}

async function expectRefused(verifier: { verify(token: string): Promise<unknown> }, token: string, reason: TokenRefusal, says: RegExp): Promise<void> {
  await assert.rejects(verifier.verify(token), (err: unknown) => {
    assert.ok(err instanceof TokenError, `expected TokenError, got ${String(err)}`);
    assert.equal(err.reason, reason, `reason of: ${err.message}`);
    assert.match(err.message, says);
    return true;
  });
}

describe('local approver tokens (Ed25519)', () => {
  let privateKey: CryptoKey;
  let privateKeyPem: string;
  let publicKeyPem: string;
  let otherPrivateKey: CryptoKey;
  let verifier: ApproverTokenVerifier;

  const claims = () => ({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
  const sign = (payload: JWTPayload, header: Record<string, unknown> = {}, key: CryptoKey = privateKey) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: APPROVER_TOKEN_TYP, ...header }).sign(key);
  const standard = (extra: JWTPayload = {}): JWTPayload => ({
    ...claims(),
    iss: DEFAULT_ISSUER,
    aud: APPROVER_AUDIENCE,
    iat: now(),
    exp: now() + 600,
    ...extra,
  });

  before(async () => {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    privateKey = pair.privateKey;
    privateKeyPem = await exportPKCS8(pair.privateKey);
    publicKeyPem = await exportSPKI(pair.publicKey);
    otherPrivateKey = (await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })).privateKey;
    verifier = await ApproverTokenVerifier.fromPublicKeyPem(publicKeyPem);
  });

  test('a token from the local issuer yields the approver it names', async () => {
    const token = await issueApproverToken(claims(), { privateKeyPem });
    assert.deepEqual(await verifier.verify(token), { id: 'maria', tenant: 'acme', groups: ['manager'] });
  });

  test('the approver id comes out canonical: case, width and compatibility variants are one approver', async () => {
    for (const sub of ['Maria', 'MARIA', 'ＭＡＲＩＡ', 'ｍａｒｉａ', '𝐦𝐚𝐫𝐢𝐚', 'Ⓜⓐⓡⓘⓐ']) {
      assert.deepEqual(
        await verifier.verify(await issueApproverToken({ ...claims(), sub }, { privateKeyPem })),
        { id: 'maria', tenant: 'acme', groups: ['manager'] },
        sub,
      );
      // Another issuer may write any spelling into sub, unchecked; the verifier folds it all the same.
      assert.equal((await verifier.verify(await sign(standard({ sub })))).id, 'maria', `hand-signed ${sub}`);
    }
    assert.equal((await verifier.verify(await sign(standard({ sub: '\u212Aate' })))).id, 'kate', 'Kelvin sign');
    // Canonical, then checked: a spelling that folds to something outside the id alphabet is refused.
    await expectRefused(verifier, await sign(standard({ sub: 'ｍａｒｉａ ｘ' })), 'claims', /sub claim/);
  });

  test('an unsigned token (alg none) is refused', async () => {
    await expectRefused(verifier, unsignedToken(standard(), { alg: 'none', typ: APPROVER_TOKEN_TYP }), 'algorithm', /alg/);
  });

  test('a token signed by another key is refused', async () => {
    await expectRefused(verifier, await sign(standard(), {}, otherPrivateKey), 'signature', /signature verification failed/);
  });

  test('HS256 keyed with the public key PEM (algorithm confusion) is refused', async () => {
    const token = await hs256(standard(), new TextEncoder().encode(publicKeyPem), { typ: APPROVER_TOKEN_TYP });
    await expectRefused(verifier, token, 'algorithm', /alg.*not one of EdDSA/);
  });

  test('an expired token is refused, even within a day of issue', async () => {
    await expectRefused(verifier, await sign(standard({ iat: now() - 3600, exp: now() - 60 })), 'expired', /expired/);
  });

  test('a token without exp is refused: approver tokens must expire', async () => {
    const payload = standard();
    delete payload.exp;
    await expectRefused(verifier, await sign(payload), 'claims', /exp/);
  });

  test('a token not valid yet (nbf beyond the clock tolerance) is refused', async () => {
    await expectRefused(verifier, await sign(standard({ nbf: now() + 300 })), 'not_yet_valid', /not valid yet/);
  });

  test('a token whose nbf is within the clock tolerance is accepted', async () => {
    assert.equal((await verifier.verify(await sign(standard({ nbf: now() + 10 })))).id, 'maria');
  });

  test('a token for another audience is refused', async () => {
    await expectRefused(verifier, await sign(standard({ aud: 'toolgate-approval-links' })), 'audience', /audience/);
  });

  test('a token from another issuer is refused', async () => {
    await expectRefused(verifier, await sign(standard({ iss: 'someone-else' })), 'issuer', /issuer/);
  });

  test('a token of another type, or with no type, is refused', async () => {
    await expectRefused(verifier, await sign(standard(), { typ: 'toolgate-link+jwt' }), 'type', /typ/);
    await expectRefused(verifier, await sign(standard(), { typ: 'JWT' }), 'type', /typ/);
    const untyped = await new SignJWT(standard()).setProtectedHeader({ alg: 'EdDSA' }).sign(privateKey);
    await expectRefused(verifier, untyped, 'type', /typ/);
  });

  test('a token without its signature part is refused', async () => {
    const token = await sign(standard());
    await expectRefused(verifier, token.split('.').slice(0, 2).join('.'), 'malformed', /malformed/);
    await expectRefused(verifier, `${token.split('.').slice(0, 2).join('.')}.`, 'signature', /signature/);
  });

  test('a signed token whose payload was changed is refused', async () => {
    const token = await sign(standard());
    await expectRefused(
      verifier,
      tamper(token, (payload) => {
        payload.groups.push('admin');
      }),
      'signature',
      /signature verification failed/,
    );
  });

  test('tokens missing tenant or groups, or with ill-typed claims, are refused naming the claim', async () => {
    const noTenant = standard();
    delete noTenant.tenant;
    await expectRefused(verifier, await sign(noTenant), 'claims', /tenant claim.*missing/);
    const noGroups = standard();
    delete noGroups.groups;
    await expectRefused(verifier, await sign(noGroups), 'claims', /groups claim.*missing/);
    await expectRefused(verifier, await sign(standard({ groups: 'manager' })), 'claims', /groups claim.*array of strings/);
    await expectRefused(verifier, await sign(standard({ sub: 'has spaces' })), 'claims', /sub claim/);
  });

  test('garbage and oversized tokens are refused without reaching the signature check', async () => {
    await expectRefused(verifier, 'not-a-jwt', 'malformed', /malformed/);
    await expectRefused(verifier, '', 'malformed', /missing/);
    await expectRefused(verifier, 'a'.repeat(20_000), 'malformed', /characters/);
  });
});

describe('OIDC approver tokens (JWKS on a loopback server)', () => {
  const ISSUER = 'https://idp.example/realms/acme';
  const AUDIENCE = 'toolgate';
  let server: Server;
  let jwksUrl: string;
  let jwksRequests = 0;
  let rsaKey: CryptoKey;
  let ecKey: CryptoKey;
  let rsaPublicPem: string;
  let strangerKey: CryptoKey;
  let verifier: OidcApproverVerifier;

  const standard = (extra: JWTPayload = {}): JWTPayload => ({
    sub: 'maria',
    tenant: 'acme',
    groups: ['manager'],
    iss: ISSUER,
    aud: AUDIENCE,
    iat: now(),
    exp: now() + 600,
    ...extra,
  });
  const rs256 = (payload: JWTPayload, header: Record<string, unknown> = {}, key: CryptoKey = rsaKey) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1', typ: 'JWT', ...header }).sign(key);

  before(async () => {
    const rsa = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    rsaKey = rsa.privateKey;
    ecKey = ec.privateKey;
    rsaPublicPem = await exportSPKI(rsa.publicKey);
    strangerKey = (await generateKeyPair('RS256', { modulusLength: 2048 })).privateKey;
    const jwks = {
      keys: [
        { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
        { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
      ],
    };
    server = createServer((req, res) => {
      jwksRequests += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    verifier = new OidcApproverVerifier({ issuer: ISSUER, jwksUrl, audience: AUDIENCE });
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('a valid RS256 token and a valid ES256 token yield the approver, with keys fetched from the JWKS', async () => {
    assert.deepEqual(await verifier.verify(await rs256(standard())), { id: 'maria', tenant: 'acme', groups: ['manager'] });
    const es = await new SignJWT(standard({ sub: 'li' })).setProtectedHeader({ alg: 'ES256', kid: 'ec-1' }).sign(ecKey);
    assert.equal((await verifier.verify(es)).id, 'li');
    assert.ok(jwksRequests >= 1);
  });

  test('the approver id of an identity provider comes out canonical too', async () => {
    assert.equal((await verifier.verify(await rs256(standard({ sub: 'MARIA' })))).id, 'maria');
    assert.equal((await verifier.verify(await rs256(standard({ sub: 'Ｍａｒｉａ' })))).id, 'maria');
  });

  test('an unsigned token (alg none) is refused', async () => {
    await expectRefused(verifier, unsignedToken(standard(), { alg: 'none', kid: 'rsa-1' }), 'algorithm', /alg/);
  });

  test('a token signed by a key the provider does not publish is refused', async () => {
    await expectRefused(verifier, await rs256(standard(), {}, strangerKey), 'signature', /signature verification failed/);
  });

  test('HS256 keyed with the RSA public key (RS/HS confusion) is refused', async () => {
    const token = await hs256(standard(), new TextEncoder().encode(rsaPublicPem), { kid: 'rsa-1', typ: 'JWT' });
    await expectRefused(verifier, token, 'algorithm', /alg.*not one of RS256, ES256/);
  });

  test('an algorithm the deployment did not pin is refused even when the key could verify it', async () => {
    const esOnly = new OidcApproverVerifier({ issuer: ISSUER, jwksUrl, audience: AUDIENCE, algorithms: ['ES256'] });
    await expectRefused(esOnly, await rs256(standard()), 'algorithm', /not one of ES256/);
  });

  test('expired and not-yet-valid tokens are refused; nbf within tolerance is honoured', async () => {
    await expectRefused(verifier, await rs256(standard({ exp: now() - 120 })), 'expired', /expired/);
    await expectRefused(verifier, await rs256(standard({ nbf: now() + 600 })), 'not_yet_valid', /not valid yet/);
    assert.equal((await verifier.verify(await rs256(standard({ nbf: now() + 5 })))).id, 'maria');
    const noExp = standard();
    delete noExp.exp;
    await expectRefused(verifier, await rs256(noExp), 'claims', /exp/);
  });

  test('wrong audience and wrong issuer are refused', async () => {
    await expectRefused(verifier, await rs256(standard({ aud: 'another-app' })), 'audience', /audience/);
    await expectRefused(verifier, await rs256(standard({ iss: 'https://idp.example/realms/other' })), 'issuer', /issuer/);
  });

  test('with an expected typ configured, a wrong or missing typ is refused', async () => {
    const typed = new OidcApproverVerifier({ issuer: ISSUER, jwksUrl, audience: AUDIENCE, typ: 'at+jwt' });
    assert.equal((await typed.verify(await rs256(standard(), { typ: 'at+jwt' }))).id, 'maria');
    await expectRefused(typed, await rs256(standard(), { typ: 'JWT' }), 'type', /typ.*at\+jwt/);
    const untyped = await new SignJWT(standard()).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).sign(rsaKey);
    await expectRefused(typed, untyped, 'type', /typ/);
  });

  test('a two-part token and a tampered payload are refused', async () => {
    const token = await rs256(standard());
    await expectRefused(verifier, token.split('.').slice(0, 2).join('.'), 'malformed', /malformed/);
    await expectRefused(
      verifier,
      tamper(token, (payload) => (payload.groups = ['admin'])),
      'signature',
      /signature verification failed/,
    );
  });

  test('missing or ill-typed identity claims are refused naming the claim', async () => {
    await expectRefused(verifier, await rs256(standard({ groups: undefined })), 'claims', /groups claim.*missing/);
    await expectRefused(verifier, await rs256(standard({ tenant: undefined })), 'claims', /tenant claim.*missing/);
    await expectRefused(verifier, await rs256(standard({ sub: undefined })), 'claims', /sub claim.*missing/);
    await expectRefused(verifier, await rs256(standard({ groups: [1, 2] })), 'claims', /groups claim.*array of strings/);
    await expectRefused(verifier, await rs256(standard({ groups: ['/Finance Team'] })), 'claims', /groups claim/);
  });

  test('claim mapping: nested groups path, space- or comma-separated groups, another subject claim', async () => {
    const keycloak = new OidcApproverVerifier({
      issuer: ISSUER,
      jwksUrl,
      audience: [AUDIENCE, 'account'],
      subjectClaim: 'preferred_username',
      groupsClaim: 'realm_access.roles',
      tenantClaim: 'org.id',
    });
    const token = await rs256(
      standard({ sub: 'f3b1c6e2', preferred_username: 'maria', realm_access: { roles: ['manager', 'support_lead'] }, org: { id: 'acme' } }),
    );
    assert.deepEqual(await keycloak.verify(token), { id: 'maria', tenant: 'acme', groups: ['manager', 'support_lead'] });
    await expectRefused(keycloak, await rs256(standard({ preferred_username: 'maria', org: { id: 'acme' } })), 'claims', /realm_access\.roles claim.*missing/);

    const spaced = new OidcApproverVerifier({ issuer: ISSUER, jwksUrl, audience: AUDIENCE, groupsClaim: 'scope', tenant: 'acme' });
    const scoped = await rs256(standard({ tenant: undefined, scope: 'manager  support_lead,auditor' }));
    assert.deepEqual(await spaced.verify(scoped), { id: 'maria', tenant: 'acme', groups: ['manager', 'support_lead', 'auditor'] });

    const namespaced = new OidcApproverVerifier({ issuer: ISSUER, jwksUrl, audience: AUDIENCE, groupsClaim: 'https://toolgate.example/groups' });
    const withUrlClaim = await rs256(standard({ groups: undefined, 'https://toolgate.example/groups': ['manager'] }));
    assert.deepEqual((await namespaced.verify(withUrlClaim)).groups, ['manager']);
  });

  test('a fixed tenant with an explicit tenant claim refuses a token naming another tenant', async () => {
    const pinned = new OidcApproverVerifier({ issuer: ISSUER, jwksUrl, audience: AUDIENCE, tenant: 'acme', tenantClaim: 'tenant' });
    assert.equal((await pinned.verify(await rs256(standard()))).tenant, 'acme');
    await expectRefused(pinned, await rs256(standard({ tenant: 'globex' })), 'claims', /another tenant/);
  });

  test('an unreachable JWKS is reported as unavailable keys, not as a bad token', async () => {
    const down = new OidcApproverVerifier({ issuer: ISSUER, jwksUrl: 'http://127.0.0.1:9/jwks', audience: AUDIENCE, jwksTimeoutMs: 1000 });
    await expectRefused(down, await rs256(standard()), 'key_unavailable', /cannot verify/);
  });
});

describe('agent tokens', () => {
  let privateKey: CryptoKey;
  let privateKeyPem: string;
  let verifier: AgentTokenVerifier;
  let approverVerifier: ApproverTokenVerifier;

  const claims = (extra: Partial<AgentClaims> = {}): AgentClaims => ({
    sub: 'triage-bot',
    tenant: 'acme',
    roles: ['agent_runtime'],
    environment: 'production',
    ...extra,
  });
  /** A token signed with the trusted key, claims written by hand (as a careless or hostile issuer might). */
  const sign = (payload: JWTPayload, header: Record<string, unknown> = {}) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: AGENT_TOKEN_TYP, ...header }).sign(privateKey);
  const standard = (extra: JWTPayload = {}): JWTPayload => ({
    sub: 'triage-bot',
    tenant: 'acme',
    roles: ['agent_runtime'],
    type: 'agent',
    environment: 'production',
    iss: DEFAULT_AGENT_ISSUER,
    aud: AGENT_AUDIENCE,
    iat: now(),
    exp: now() + 600,
    ...extra,
  });
  const issueRefused = async (given: AgentClaims, says: RegExp) =>
    assert.rejects(issueAgentToken(given, { privateKeyPem }), (err: unknown) => {
      assert.ok(err instanceof TokenError, `expected TokenError, got ${String(err)}`);
      assert.match(err.message, says);
      return true;
    });

  before(async () => {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    privateKey = pair.privateKey;
    privateKeyPem = await exportPKCS8(pair.privateKey);
    const publicKeyPem = await exportSPKI(pair.publicKey);
    verifier = await AgentTokenVerifier.fromPublicKeyPem(publicKeyPem);
    approverVerifier = await ApproverTokenVerifier.fromPublicKeyPem(publicKeyPem);
  });

  test('a token yields the whole identity: actor id, type, tenant, roles, environment, principals and tools', async () => {
    const token = await issueAgentToken(claims({ onBehalfOf: [{ id: 'maria', type: 'human' }], tools: ['read_kb', 'create_ticket'] }), { privateKeyPem });
    assert.deepEqual(await verifier.verify(token), {
      id: 'triage-bot',
      type: 'agent',
      tenant: 'acme',
      roles: ['agent_runtime'],
      environment: 'production',
      onBehalfOf: [{ id: 'maria', type: 'human' }],
      tools: ['read_kb', 'create_ticket'],
    });
    const plain = await verifier.verify(await issueAgentToken(claims(), { privateKeyPem }));
    assert.equal(plain.onBehalfOf, undefined);
    assert.equal(plain.tools, undefined, 'no tools claim: no narrowing');
  });

  test('the environment is required: issuing without it fails, and a token without it is refused', async () => {
    // A JavaScript caller can leave it out past the types: whatever the issuer does with that, the token is never usable.
    const withoutEnvironment: Partial<AgentClaims> = claims();
    delete withoutEnvironment.environment;
    const issued = await issueAgentToken(withoutEnvironment as AgentClaims, { privateKeyPem }).catch((err: unknown) => err);
    if (issued instanceof TokenError) assert.match(issued.message, /environment/);
    else await expectRefused(verifier, issued as string, 'claims', /environment claim/);
    await issueRefused(claims({ environment: 'prod env' }), /environment/);
    const missing = standard();
    delete missing.environment;
    await expectRefused(verifier, await sign(missing), 'claims', /environment claim/);
    await expectRefused(verifier, await sign(standard({ environment: '' })), 'claims', /environment claim/);
    await expectRefused(verifier, await sign(standard({ environment: ['production', 'staging'] })), 'claims', /environment claim/);
  });

  test('tenant and type are required; an agent token is only ever an agent', async () => {
    const noTenant = standard();
    delete noTenant.tenant;
    await expectRefused(verifier, await sign(noTenant), 'claims', /tenant claim/);
    await expectRefused(verifier, await sign(standard({ type: 'human' })), 'claims', /type claim/);
    await expectRefused(verifier, await sign(standard({ roles: ['has space'] })), 'claims', /roles/);
  });

  test('on_behalf_of is validated: a list of at most 8 principals with a known type and an id', async () => {
    const bad: [unknown, RegExp][] = [
      ['maria', /on_behalf_of claim must be a list/],
      [{ id: 'maria', type: 'human' }, /on_behalf_of claim must be a list/],
      [Array.from({ length: 9 }, (_, i) => ({ id: `p${i}`, type: 'human' })), /at most 8/],
      [[{ id: 'maria', type: 'robot' }], /on_behalf_of claim.*type/],
      [[{ id: 'maria' }], /on_behalf_of claim.*type/],
      [[{ type: 'human' }], /on_behalf_of claim.*id/],
      [[{ id: 'has space', type: 'human' }], /on_behalf_of claim.*id/],
      [[{ id: 'maria', type: 'human', admin: true }], /on_behalf_of claim/],
      [[null], /on_behalf_of claim/],
    ];
    for (const [value, says] of bad) {
      await expectRefused(verifier, await sign(standard({ on_behalf_of: value })), 'claims', says);
    }
    await issueRefused(claims({ onBehalfOf: [{ id: 'maria', type: 'robot' as 'human' }] }), /on_behalf_of/);
    // Principal ids are canonical too: the person behind the agent is one identity however spelled.
    const chain = await verifier.verify(
      await sign(
        standard({
          on_behalf_of: [
            { id: 'ＭＡＲＩＡ', type: 'human' },
            { id: 'Payroll', type: 'service' },
          ],
        }),
      ),
    );
    assert.deepEqual(chain.onBehalfOf, [
      { id: 'maria', type: 'human' },
      { id: 'payroll', type: 'service' },
    ]);
  });

  test('tools is validated: a list of at most 256 tool names', async () => {
    const bad: unknown[] = ['read_kb', [1], ['read kb'], [''], Array.from({ length: 257 }, (_, i) => `t${i}`), { read_kb: true }];
    for (const value of bad) {
      await expectRefused(verifier, await sign(standard({ tools: value })), 'claims', /tools claim/);
    }
    await issueRefused(claims({ tools: ['drop tables'] }), /tools claim/);
    assert.deepEqual((await verifier.verify(await sign(standard({ tools: [] })))).tools, [], 'an empty list grants no tool (it does not mean all)');
  });

  test('the actor id comes out canonical: case, width and compatibility variants are one agent', async () => {
    for (const sub of ['Bot', 'BOT', 'ｂｏｔ', 'Ｂｏｔ', '𝐛𝐨𝐭']) {
      assert.equal((await verifier.verify(await issueAgentToken(claims({ sub }), { privateKeyPem }))).id, 'bot', `issued ${sub}`);
      assert.equal((await verifier.verify(await sign(standard({ sub })))).id, 'bot', `hand-signed ${sub}`);
    }
    await expectRefused(verifier, await sign(standard({ sub: 'ｂｏｔ ｘ' })), 'claims', /sub/);
    await issueRefused(claims({ sub: 'two words' }), /actor\.id|sub/);
  });

  test('agent and approver tokens cannot stand in for each other, even signed with the same key', async () => {
    const agentToken = await issueAgentToken(claims(), { privateKeyPem });
    await expectRefused(approverVerifier, agentToken, 'type', /typ/);
    const approverToken = await issueApproverToken({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { privateKeyPem });
    await expectRefused(verifier, approverToken, 'type', /typ/);
    // With the agent typ but the approver audience, the audience still refuses it.
    await expectRefused(verifier, await sign(standard({ aud: APPROVER_AUDIENCE })), 'audience', /audience/);
  });

  test('expired, unsigned and foreign-issuer agent tokens are refused', async () => {
    await expectRefused(verifier, await issueAgentToken(claims(), { privateKeyPem, ttlSeconds: -120 }), 'expired', /expired/);
    await expectRefused(verifier, unsignedToken(standard(), { alg: 'none', typ: AGENT_TOKEN_TYP }), 'algorithm', /alg/);
    await expectRefused(verifier, await sign(standard({ iss: 'someone-else' })), 'issuer', /issuer/);
    const noExp = standard();
    delete noExp.exp;
    await expectRefused(verifier, await sign(noExp), 'claims', /exp/);
  });
});

describe('approver verifier configuration', () => {
  const base = {
    TOOLGATE_AUTH: 'oidc',
    TOOLGATE_OIDC_ISSUER: 'https://idp.example',
    TOOLGATE_OIDC_JWKS_URL: 'https://idp.example/jwks',
    TOOLGATE_OIDC_AUDIENCE: 'toolgate',
  };
  const config = { stateDir: '/nonexistent-state-dir' };

  async function expectConfigError(env: NodeJS.ProcessEnv, variable: string, says: RegExp): Promise<void> {
    await assert.rejects(createApproverVerifier(config, env), (err: unknown) => {
      assert.ok(err instanceof AuthConfigError, `expected AuthConfigError, got ${String(err)}`);
      assert.equal(err.setting, variable);
      assert.match(err.message, says);
      return true;
    });
  }

  test('HS256, none and unknown algorithms cannot be configured for OIDC', async () => {
    await expectConfigError({ ...base, TOOLGATE_OIDC_ALGORITHMS: 'RS256,HS256' }, 'TOOLGATE_OIDC_ALGORITHMS', /HS256 is refused/);
    await expectConfigError({ ...base, TOOLGATE_OIDC_ALGORITHMS: 'none' }, 'TOOLGATE_OIDC_ALGORITHMS', /none is refused/);
    await expectConfigError({ ...base, TOOLGATE_OIDC_ALGORITHMS: 'XY256' }, 'TOOLGATE_OIDC_ALGORITHMS', /not supported/);
    assert.throws(() => new OidcApproverVerifier({ issuer: 'i', jwksUrl: 'https://idp.example/jwks', audience: 'a', algorithms: ['HS512'] }), AuthConfigError);
  });

  test('missing OIDC settings and a plain-http JWKS are refused naming the variable', async () => {
    await expectConfigError({ ...base, TOOLGATE_OIDC_ISSUER: undefined }, 'TOOLGATE_OIDC_ISSUER', /required when TOOLGATE_AUTH=oidc/);
    await expectConfigError({ ...base, TOOLGATE_OIDC_AUDIENCE: '' }, 'TOOLGATE_OIDC_AUDIENCE', /required/);
    await expectConfigError({ ...base, TOOLGATE_OIDC_JWKS_URL: 'http://idp.example/jwks' }, 'TOOLGATE_OIDC_JWKS_URL', /https/);
    await expectConfigError({ ...base, TOOLGATE_OIDC_TENANT: 'not a tenant' }, 'TOOLGATE_OIDC_TENANT', /tenant id/);
    await expectConfigError({ TOOLGATE_AUTH: 'saml' }, 'TOOLGATE_AUTH', /local or oidc/);
  });

  test('a complete OIDC environment yields an OIDC verifier', async () => {
    assert.ok((await createApproverVerifier(config, { ...base, TOOLGATE_OIDC_ALGORITHMS: 'ES256' })) instanceof OidcApproverVerifier);
  });

  test('local mode verifies with the public key PEM from the environment', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const pem = (await exportSPKI(publicKey)).replace(/\n/g, '\\n'); // as it often arrives in an env file
    const verifier = await createApproverVerifier(config, { TOOLGATE_TOKEN_PUBLIC_KEY: pem });
    const token = await issueApproverToken({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { privateKeyPem: await exportPKCS8(privateKey) });
    assert.equal((await verifier.verify(token)).id, 'maria');
    await expectConfigError({ TOOLGATE_TOKEN_PUBLIC_KEY: pem, TOOLGATE_TOKEN_PUBLIC_KEY_FILE: '/x.pem' }, 'TOOLGATE_TOKEN_PUBLIC_KEY', /not both/);
    await expectConfigError({ TOOLGATE_TOKEN_PUBLIC_KEY_FILE: '/nonexistent/key.pem' }, 'TOOLGATE_TOKEN_PUBLIC_KEY_FILE', /cannot read/);
  });
});
