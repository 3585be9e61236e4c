/**
 * One-click approval links: a link binds one approver to one request digest for a short time, is
 * signed with its own key, and cannot stand in for an approver token (nor the other way round).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8 } from 'jose';
import { createLinkSigner, createLinkVerifier } from '../../src/auth/config.js';
import { AuthConfigError, TokenError, type TokenRefusal } from '../../src/auth/errors.js';
import { LINK_AUDIENCE, LINK_TOKEN_TYP, LinkSigner, LinkVerifier, defaultLinkKeyPaths } from '../../src/approvals/links.js';
import { ApproverTokenVerifier, defaultKeyPaths, ensureLocalKeyPair, issueApproverToken } from '../../src/auth/tokens.js';

const DIGEST = 'a'.repeat(64);
const maria = { id: 'maria', tenant: 'acme', groups: ['manager'] };

async function expectRefused(promise: Promise<unknown>, reason: TokenRefusal, says: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof TokenError, `expected TokenError, got ${String(err)}`);
    assert.equal(err.reason, reason, `reason of: ${err.message}`);
    assert.match(err.message, says);
    return true;
  });
}

describe('signed one-click links', () => {
  let linkPrivatePem: string;
  let signer: LinkSigner;
  let verifier: LinkVerifier;
  let approverPrivatePem: string;
  let approverVerifier: ApproverTokenVerifier;
  let strangerSigner: LinkSigner;

  before(async () => {
    const link = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    linkPrivatePem = await exportPKCS8(link.privateKey);
    signer = await LinkSigner.fromPrivateKeyPem(linkPrivatePem);
    verifier = await LinkVerifier.fromPublicKeyPem(await exportSPKI(link.publicKey));
    const approver = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    approverPrivatePem = await exportPKCS8(approver.privateKey);
    approverVerifier = await ApproverTokenVerifier.fromPublicKeyPem(await exportSPKI(approver.publicKey));
    const stranger = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    strangerSigner = await LinkSigner.fromPrivateKeyPem(await exportPKCS8(stranger.privateKey));
  });

  test('a minted link verifies to its request, digest, approver, decision, nonce and expiry', async () => {
    const minted = await signer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria, decision: 'approve' });
    const link = await verifier.verifyLink(minted.token, { requestId: 'req-1' });
    assert.deepEqual(link, { jti: minted.jti, requestId: 'req-1', digest: DIGEST, approver: maria, decision: 'approve', expiresAt: minted.expiresAt });
    const ttl = Date.parse(link.expiresAt) - Date.now();
    assert.ok(ttl > 14 * 60_000 && ttl <= 15 * 60_000, `default life is 15 minutes, got ${ttl} ms`);
    const undecided = await verifier.verifyLink((await signer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria })).token);
    assert.equal(undecided.decision, undefined);
  });

  test('every link gets its own random nonce', async () => {
    const jtis = new Set<string>();
    for (let i = 0; i < 20; i += 1) jtis.add((await signer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria })).jti);
    assert.equal(jtis.size, 20);
  });

  test('a link never outlives the request it is for', async () => {
    const requestExpiresAt = new Date(Date.now() + 60_000);
    const minted = await signer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria, requestExpiresAt });
    assert.ok(Date.parse(minted.expiresAt) <= requestExpiresAt.getTime());
    await expectRefused(
      signer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria, requestExpiresAt: new Date(Date.now() - 1000) }),
      'claims',
      /already expired/,
    );
  });

  test('an expired link is refused', async () => {
    const minted = await signer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria }, new Date(Date.now() - 16 * 60_000));
    await expectRefused(verifier.verifyLink(minted.token), 'expired', /expired/);
  });

  test('a link for another request is refused', async () => {
    const minted = await signer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria });
    await expectRefused(verifier.verifyLink(minted.token, { requestId: 'req-2' }), 'wrong_request', /for request req-1, not req-2/);
  });

  test('a link signed with another key is refused', async () => {
    const minted = await strangerSigner.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria });
    await expectRefused(verifier.verifyLink(minted.token), 'signature', /signature verification failed/);
  });

  test('an approver token presented as a link is refused, even when signed with the link key', async () => {
    const approverToken = await issueApproverToken({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { privateKeyPem: approverPrivatePem });
    await expectRefused(verifier.verifyLink(approverToken), 'signature', /signature verification failed/);
    const sameKey = await issueApproverToken({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { privateKeyPem: linkPrivatePem });
    await expectRefused(verifier.verifyLink(sameKey), 'type', /typ/);
  });

  test('a link presented as an approver token is refused, even when signed with the approver key', async () => {
    const minted = await signer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria });
    await assert.rejects(approverVerifier.verify(minted.token), TokenError);
    const sameKeySigner = await LinkSigner.fromPrivateKeyPem(approverPrivatePem);
    const crossSigned = await sameKeySigner.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria });
    await expectRefused(approverVerifier.verify(crossSigned.token), 'type', /typ/);
    // Only the typ stands in the way here; with the approver typ, the audience still refuses it.
    const key = await importPKCS8(approverPrivatePem, 'EdDSA');
    const retyped = await new SignJWT({ tenant: 'acme', groups: ['manager'], request_id: 'req-1', digest: DIGEST })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'toolgate-approver+jwt' })
      .setIssuer('toolgate-local')
      .setAudience(LINK_AUDIENCE)
      .setSubject('maria')
      .setExpirationTime('5m')
      .sign(key);
    await expectRefused(approverVerifier.verify(retyped), 'audience', /audience/);
  });

  test('a link with the right typ but missing bindings or a non-EdDSA algorithm is refused', async () => {
    const key = await importPKCS8(linkPrivatePem, 'EdDSA');
    const base = () =>
      new SignJWT({ tenant: 'acme', groups: ['manager'], request_id: 'req-1' })
        .setProtectedHeader({ alg: 'EdDSA', typ: LINK_TOKEN_TYP })
        .setIssuer('toolgate-local')
        .setAudience(LINK_AUDIENCE)
        .setSubject('maria')
        .setJti('0123456789abcdef0123')
        .setExpirationTime('5m');
    await expectRefused(verifier.verifyLink(await base().sign(key)), 'claims', /digest/);
    const noJti = await new SignJWT({ tenant: 'acme', groups: ['manager'], request_id: 'req-1', digest: DIGEST })
      .setProtectedHeader({ alg: 'EdDSA', typ: LINK_TOKEN_TYP })
      .setIssuer('toolgate-local')
      .setAudience(LINK_AUDIENCE)
      .setSubject('maria')
      .setExpirationTime('5m')
      .sign(key);
    await expectRefused(verifier.verifyLink(noJti), 'claims', /jti/);
    const hs = await new SignJWT({ tenant: 'acme', groups: ['manager'], request_id: 'req-1', digest: DIGEST })
      .setProtectedHeader({ alg: 'HS256', typ: LINK_TOKEN_TYP })
      .setIssuer('toolgate-local')
      .setAudience(LINK_AUDIENCE)
      .setSubject('maria')
      .setJti('0123456789abcdef0123')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(linkPrivatePem));
    await expectRefused(verifier.verifyLink(hs), 'algorithm', /alg/);
  });

  test('minting refuses a grant that is not bound to a real request digest', async () => {
    await expectRefused(signer.mintLink({ requestId: 'req-1', digest: 'abc', approver: maria }), 'claims', /digest/);
    await expectRefused(signer.mintLink({ requestId: 'req 1', digest: DIGEST, approver: maria }), 'claims', /request_id/);
  });
});

describe('link keys from the state directory and the environment', () => {
  let stateDir: string;

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'toolgate-links-'));
  });
  after(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  test('a local link key pair is created once, privately, apart from the approver key, and signer and verifier agree', async () => {
    await ensureLocalKeyPair(defaultKeyPaths(stateDir));
    const [signer, verifier, again] = await Promise.all([
      createLinkSigner({ stateDir }, {}),
      createLinkVerifier({ stateDir }, {}),
      createLinkSigner({ stateDir }, {}),
    ]);
    const paths = defaultLinkKeyPaths(stateDir);
    assert.equal((await stat(paths.privateKeyFile)).mode & 0o777, 0o600);
    assert.notEqual(await readFile(paths.publicKeyFile, 'utf8'), await readFile(defaultKeyPaths(stateDir).publicKeyFile, 'utf8'));
    for (const s of [signer, again]) {
      const minted = await s.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria });
      assert.equal((await verifier.verifyLink(minted.token)).jti, minted.jti);
    }
  });

  test('using the approver-token key for links is refused', async () => {
    const approverKeyFile = defaultKeyPaths(stateDir).privateKeyFile;
    await assert.rejects(createLinkSigner({ stateDir }, { TOOLGATE_LINK_PRIVATE_KEY_FILE: approverKeyFile }), (err: unknown) => {
      assert.ok(err instanceof AuthConfigError);
      assert.equal(err.setting, 'TOOLGATE_LINK_PRIVATE_KEY_FILE');
      assert.match(err.message, /must not be the approver-token key/);
      return true;
    });
  });

  test('a link private key from the environment signs, and its public key from the environment verifies', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const env = { TOOLGATE_LINK_PRIVATE_KEY: await exportPKCS8(privateKey), TOOLGATE_LINK_ISSUER: 'toolgate-prod', TOOLGATE_LINK_TTL_SECONDS: '120' };
    const signer = await createLinkSigner({ stateDir }, env);
    const verifier = await createLinkVerifier({ stateDir }, { TOOLGATE_LINK_PUBLIC_KEY: await exportSPKI(publicKey), TOOLGATE_LINK_ISSUER: 'toolgate-prod' });
    const minted = await signer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria });
    assert.ok(Date.parse(minted.expiresAt) - Date.now() <= 120_000);
    assert.equal((await verifier.verifyLink(minted.token)).requestId, 'req-1');
    const otherIssuer = await createLinkSigner({ stateDir }, { TOOLGATE_LINK_ISSUER: 'toolgate-staging' });
    const localVerifier = await createLinkVerifier({ stateDir }, {});
    const foreign = await otherIssuer.mintLink({ requestId: 'req-1', digest: DIGEST, approver: maria });
    await expectRefused(localVerifier.verifyLink(foreign.token), 'issuer', /issuer/);
    await assert.rejects(createLinkSigner({ stateDir }, { TOOLGATE_LINK_TTL_SECONDS: '0' }), /TOOLGATE_LINK_TTL_SECONDS/);
  });
});
