/**
 * Approvals as a security boundary, on a real Temporal server and real HTTP: self-approval (also
 * through an actor chain), cross-tenant, one person filling two all_of groups, double votes (also
 * under another spelling of the same name), forged and replayed tokens, one-click links, and edit
 * before approve. Requests enter through the front door; decisions go through the approval API.
 * No refused attempt leaves a side effect. An authenticated approver's refused attempt is recorded
 * in the request (within HISTORY_BOUNDS); anonymous and invalid attempts never enter a history:
 * they are logged and counted in `toolgate_refused_attempts_total`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT, base64url, exportPKCS8, generateKeyPair } from 'jose';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { canonicalDigest } from '../../src/approvals/digest.js';
import { AUDITED_MESSAGES } from '../../src/audit/record-audited.js';
import { issueApproverToken } from '../../src/auth/tokens.js';
import { ToolDenied } from '../../src/client/index.js';
import { FailureTypes, HISTORY_BOUNDS, type RequestStatus, type ToolRequestInput } from '../../src/shared/index.js';
import { refusedAtEdge, startGateway, startTemporal, waitForState, type GatewayEnv } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { startToolService, type ToolService } from '../helpers/tool-service.js';

/** The policy of these tests; the HTTP tools call the loopback test service (httpTool allows private egress). */
function policyYaml(url: string): string {
  return policy()
    .plan('manager', { groups: ['manager'] })
    .plan('finance', { groups: ['finance'] })
    .plan('security_and_owner', { allOf: ['security', 'db_owner'] })
    .plan('two_people', { groups: ['treasury'], minApprovals: 2 })
    .tool('refund', {
      risk: 'high',
      approval: 'manager',
      rules: [
        { name: 'no-huge-refunds', when: 'args.amount > 100000', effect: 'deny', reason: 'refunds above 100000 are never automated' },
        { name: 'large-refunds-need-finance', when: 'args.amount > 1000', approval: 'finance', risk: 'critical' },
      ],
    })
    .tool('db_migrate', { risk: 'critical', approval: 'security_and_owner' })
    .tool('payout', { risk: 'critical', approval: 'two_people' })
    .httpTool('refund', `${url}/refund`, {
      runAs: 'svc-payments',
      args: argsOf({ amount: { type: 'integer', minimum: 1 }, customer: 'string' }, { required: ['amount', 'customer'] }),
    })
    .httpTool('db_migrate', `${url}/migrate`, { runAs: 'svc-db', args: argsOf({ name: 'string' }) })
    .httpTool('payout', `${url}/payout`, { runAs: 'svc-treasury', args: argsOf({ amount: 'integer' }) })
    .yaml();
}

let seq = 0;
const bot = { id: 'refund-bot', type: 'agent' as const, roles: ['agent_runtime'] };
function request(tool: string, args: Record<string, unknown>, extra: Partial<ToolRequestInput> = {}): ToolRequestInput {
  seq += 1;
  return { requestId: `ap-${process.pid}-${Date.now()}-${seq}`, actor: bot, tenant: 'acme', environment: 'production', tool, args, ...extra };
}

describe('approvals that cannot be forged, replayed, cross-wired or self-granted', { timeout: 180_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let service: ToolService;

  const pendingStatus = (requestId: string, notDigest?: string): Promise<RequestStatus> => waitForState(gw, requestId, 'pending_approval', { notDigest });
  const effectsOf = (workflowId: string) => service.effects.filter((e) => e.key === `toolgate:${workflowId}`).length;
  const decide = async (requestId: string, token: string, body: Record<string, unknown>) =>
    gw.api('POST', `/v1/approvals/${requestId}/decision`, { token, body });
  /** Who tried what, as the request's record keeps it. */
  const refusalsOf = async (requestId: string) => (await gw.status(requestId)).refusals.map((r) => [r.approverId, r.code]);

  before(async () => {
    env = await startTemporal();
    service = await startToolService('ok');
    gw = await startGateway(env, { taskQueue: `approvals-${process.pid}`, policy: policyYaml(service.url) });
  });
  after(async () => {
    await gw?.close();
    await service?.close();
    await env?.teardown();
  });

  test('the requester, and the person the agent acts for, cannot approve, under any spelling; the attempts are recorded', async () => {
    const handle = await gw.gateway.start(request('refund', { amount: 50, customer: 'c-1' }, { onBehalfOf: [{ id: 'carol', type: 'human' }] }));
    const { digest } = await pendingStatus(handle.requestId);
    const attempts = [
      ['refund-bot', 'refund-bot'],
      ['carol', 'carol'],
      ['Refund-Bot', 'refund-bot'],
      ['CAROL', 'carol'],
    ] as const;
    for (const [sub] of attempts) {
      const res = await decide(handle.requestId, await gw.token({ sub, tenant: 'acme', groups: ['manager'] }), { decision: 'approve', digest });
      assert.equal(res.status, 403, sub);
      assert.equal(res.body.error.code, 'self_approval', sub);
    }
    // An identity provider may write any spelling into sub: a token signed as written, full width.
    const fullWidth = await gw.signWithTrustedKey(
      (jwt) =>
        jwt
          .setProtectedHeader({ alg: 'EdDSA', typ: 'toolgate-approver+jwt' })
          .setSubject('ＣＡＲＯＬ')
          .setIssuer('toolgate-local')
          .setAudience('toolgate-approvals')
          .setExpirationTime('10m'),
      { tenant: 'acme', groups: ['manager'] },
    );
    const asFullWidth = await decide(handle.requestId, fullWidth, { decision: 'approve', digest });
    assert.equal(asFullWidth.status, 403);
    assert.equal(asFullWidth.body.error.code, 'self_approval');
    const status = await gw.status(handle.requestId);
    assert.deepEqual(
      status.refusals.map((r) => [r.approverId, r.code, r.via]),
      [...attempts.map(([, id]) => [id, FailureTypes.SelfApproval, 'api']), ['carol', FailureTypes.SelfApproval, 'api']],
      'each attempt is recorded under the canonical id of who made it',
    );
    assert.equal(status.state, 'pending_approval');
    assert.equal(status.approvals.length, 0);
    assert.equal(effectsOf(handle.workflowId), 0);
  });

  test('an approver of another tenant finds no such request (404); nothing is recorded in it', async () => {
    const handle = await gw.gateway.start(request('refund', { amount: 60, customer: 'c-2' }));
    const { digest } = await pendingStatus(handle.requestId);
    const eve = await gw.token({ sub: 'eve', tenant: 'globex', groups: ['manager'] });
    const res = await decide(handle.requestId, eve, { decision: 'approve', digest });
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
    const read = await gw.api('GET', `/v1/approvals/${handle.requestId}`, { token: eve });
    assert.equal(read.status, 404, 'nor can she read it');
    // A refusal that is recorded, sent after hers: the record holds it and nothing of eve's.
    const viewer = await decide(handle.requestId, await gw.token({ sub: 'vic', tenant: 'acme', groups: ['viewer'] }), { decision: 'approve', digest });
    assert.equal(viewer.status, 403);
    const status = await gw.status(handle.requestId);
    assert.deepEqual(
      status.refusals.map((r) => [r.approverId, r.code]),
      [['vic', FailureTypes.NotEligible]],
    );
    assert.equal(status.state, 'pending_approval');
    assert.equal(status.approvals.length, 0);
    assert.equal(effectsOf(handle.workflowId), 0);
  });

  test('one person cannot fill both all_of groups; a second person completes dual control', async () => {
    const handle = await gw.gateway.start(request('db_migrate', { name: 'drop-legacy' }));
    const { digest } = await pendingStatus(handle.requestId);
    const both = await gw.token({ sub: 'sasha', tenant: 'acme', groups: ['security', 'db_owner'] });
    assert.equal((await decide(handle.requestId, both, { decision: 'approve', digest })).status, 200);
    const again = await decide(handle.requestId, both, { decision: 'approve', digest });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'duplicate_vote');
    // The same person under another spelling is the same approver: a duplicate, not a second person.
    const shouted = await decide(handle.requestId, await gw.token({ sub: 'SASHA', tenant: 'acme', groups: ['security', 'db_owner'] }), {
      decision: 'approve',
      digest,
    });
    assert.equal(shouted.status, 409);
    assert.equal(shouted.body.error.code, 'duplicate_vote');
    const status = await gw.status(handle.requestId);
    assert.equal(status.state, 'pending_approval', 'one person filled only one group');
    assert.deepEqual(
      status.approvals.map((a) => a.approverId),
      ['sasha'],
    );
    assert.deepEqual(
      status.refusals.map((r) => [r.approverId, r.code]),
      [
        ['sasha', FailureTypes.DuplicateVote],
        ['sasha', FailureTypes.DuplicateVote],
      ],
    );
    assert.equal(effectsOf(handle.workflowId), 0);
    const owner = await gw.token({ sub: 'omar', tenant: 'acme', groups: ['db_owner'] });
    assert.equal((await decide(handle.requestId, owner, { decision: 'approve', digest })).status, 200);
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed');
    assert.deepEqual(
      outcome.approvals.map((a) => a.approverId),
      ['sasha', 'omar'],
    );
    assert.equal(effectsOf(handle.workflowId), 1);
  });

  test('a quorum of two needs two distinct people', async () => {
    const handle = await gw.gateway.start(request('payout', { amount: 10 }));
    const { digest } = await pendingStatus(handle.requestId);
    const t1 = await gw.token({ sub: 'tia', tenant: 'acme', groups: ['treasury'] });
    const t2 = await gw.token({ sub: 'tom', tenant: 'acme', groups: ['treasury'] });
    assert.equal((await decide(handle.requestId, t1, { decision: 'approve', digest })).status, 200);
    assert.equal((await decide(handle.requestId, t1, { decision: 'approve', digest })).status, 409);
    assert.equal(
      (await decide(handle.requestId, await gw.token({ sub: 'Tia', tenant: 'acme', groups: ['treasury'] }), { decision: 'approve', digest })).status,
      409,
    );
    assert.equal((await gw.status(handle.requestId)).state, 'pending_approval', 'tia twice, under two spellings, is one approver');
    assert.equal(effectsOf(handle.workflowId), 0);
    assert.equal((await decide(handle.requestId, t2, { decision: 'approve', digest })).status, 200);
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed');
    assert.deepEqual(
      outcome.approvals.map((a) => a.approverId),
      ['tia', 'tom'],
    );
    assert.equal(effectsOf(handle.workflowId), 1);
  });

  describe('token matrix: every forged or broken token is refused, counted, kept out of the history, and acts on nothing', () => {
    let requestId: string;
    let workflowId: string;
    let digest: string;
    let countedBefore: { invalid: number; anonymous: number };
    before(async () => {
      const handle = await gw.gateway.start(request('refund', { amount: 70, customer: 'c-3' }));
      requestId = handle.requestId;
      workflowId = handle.workflowId;
      digest = (await pendingStatus(requestId)).digest ?? '';
      countedBefore = {
        invalid: await refusedAtEdge(gw.apiUrl, { surface: 'approvals', code: 'invalid_token' }),
        anonymous: await refusedAtEdge(gw.apiUrl, { surface: 'approvals', code: 'unauthenticated' }),
      };
    });

    const claims = { tenant: 'acme', groups: ['manager'] };
    const header = (h: object) => base64url.encode(JSON.stringify(h));
    const payload = (extra: object = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return base64url.encode(
        JSON.stringify({ sub: 'mallory', iss: 'toolgate-local', aud: 'toolgate-approvals', iat: now, nbf: now, exp: now + 600, ...claims, ...extra }),
      );
    };
    const trusted = (jwt: SignJWT, typ = 'toolgate-approver+jwt') =>
      jwt
        .setProtectedHeader({ alg: 'EdDSA', typ })
        .setSubject('mallory')
        .setIssuer('toolgate-local')
        .setAudience('toolgate-approvals')
        .setExpirationTime('10m');
    const sign = async (setup: (jwt: SignJWT) => SignJWT, key?: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']) => {
      const signingKey = key ?? (await generateKeyPair('EdDSA', { crv: 'Ed25519' })).privateKey;
      return setup(new SignJWT({ ...claims })).sign(signingKey);
    };
    const cases: [string, () => Promise<string>][] = [
      ['alg none', async () => `${header({ alg: 'none', typ: 'toolgate-approver+jwt' })}.${payload()}.`],
      [
        'wrong key',
        () =>
          sign((j) =>
            j
              .setProtectedHeader({ alg: 'EdDSA', typ: 'toolgate-approver+jwt' })
              .setSubject('mallory')
              .setIssuer('toolgate-local')
              .setAudience('toolgate-approvals')
              .setExpirationTime('10m'),
          ),
      ],
      [
        'HS256 signed with the public key',
        () =>
          new SignJWT({ ...claims })
            .setProtectedHeader({ alg: 'HS256', typ: 'toolgate-approver+jwt' })
            .setSubject('mallory')
            .setIssuer('toolgate-local')
            .setAudience('toolgate-approvals')
            .setExpirationTime('10m')
            .sign(new TextEncoder().encode(gw.approverPublicKeyPem)),
      ],
      ...(
        [
          ['wrong audience', (j: SignJWT) => trusted(j).setAudience('someone-else')],
          ['wrong issuer', (j: SignJWT) => trusted(j).setIssuer('evil-issuer')],
          ['wrong typ', (j: SignJWT) => trusted(j, 'JWT')],
          ['not yet valid', (j: SignJWT) => trusted(j).setNotBefore('10m')],
        ] as const
      ).map(([name, build]): [string, () => Promise<string>] => [name, () => gw.signWithTrustedKey(build, { ...claims })]),
      ['expired', async () => gw.token({ sub: 'mallory', ...claims }, { ttlSeconds: -120 })],
      ['missing signature', async () => `${header({ alg: 'EdDSA', typ: 'toolgate-approver+jwt' })}.${payload()}`],
      [
        'tampered payload',
        async () => {
          const good = await gw.token({ sub: 'mallory', tenant: 'acme', groups: ['viewer'] });
          const [h, , s] = good.split('.');
          return `${h}.${payload({ groups: ['manager'] })}.${s}`;
        },
      ],
    ];
    for (const [name, make] of cases) {
      test(name, async () => {
        const res = await decide(requestId, await make(), { decision: 'approve', digest });
        assert.equal(res.status, 401, JSON.stringify(res.body));
      });
    }

    test('no token at all', async () => {
      const res = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { body: { decision: 'approve', digest } });
      assert.equal(res.status, 401);
      assert.equal(res.body.error.code, 'unauthenticated');
    });

    test('every refusal is counted at the edge, none is in the history, and nothing ran', async () => {
      assert.equal(
        await refusedAtEdge(gw.apiUrl, { surface: 'approvals', code: 'invalid_token' }),
        countedBefore.invalid + cases.length,
        'each invalid token is counted',
      );
      assert.equal(
        await refusedAtEdge(gw.apiUrl, { surface: 'approvals', code: 'unauthenticated' }),
        countedBefore.anonymous + 1,
        'the anonymous attempt is counted',
      );
      // A recorded refusal after them all: the record has it, and nothing from the anonymous or invalid attempts.
      const viewer = await decide(requestId, await gw.token({ sub: 'vic', tenant: 'acme', groups: ['viewer'] }), { decision: 'approve', digest });
      assert.equal(viewer.status, 403);
      const status = await gw.status(requestId);
      assert.deepEqual(
        status.refusals.map((r) => [r.approverId, r.code]),
        [['vic', FailureTypes.NotEligible]],
      );
      assert.ok(
        status.refusals.every((r) => r.claimedId === undefined),
        'no unverified claim reaches the record',
      );
      assert.equal(status.state, 'pending_approval');
      assert.equal(status.approvals.length, 0);
      assert.equal(effectsOf(workflowId), 0);
    });
  });

  describe('one-click links', () => {
    test('GET shows the proposal and changes nothing; POST approves once; the link cannot be used again', async () => {
      const handle = await gw.gateway.start(request('refund', { amount: 80, customer: 'c-4' }));
      const status = await pendingStatus(handle.requestId);
      const link = await gw.links.mintLink({
        requestId: handle.requestId,
        digest: status.digest ?? '',
        approver: { id: 'maria', tenant: 'acme', groups: ['manager'] },
      });
      const url = `${gw.apiUrl}/v1/links/${link.token}`;
      for (let i = 0; i < 3; i++) {
        const page = await fetch(url);
        assert.equal(page.status, 200);
        const html = await page.text();
        assert.match(html, /refund for acme/);
        assert.match(html, /c-4/);
        assert.match(html, /<form method="post">/);
      }
      assert.equal((await gw.status(handle.requestId)).approvals.length, 0, 'GET must not decide');

      const post = (body: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      const approved = await post('decision=approve');
      assert.equal(approved.status, 200, await approved.text());
      assert.equal((await handle.outcome()).status, 'completed');
      const reused = await post('decision=approve');
      assert.equal(reused.status, 409);
      assert.equal(effectsOf(handle.workflowId), 1);
      assert.deepEqual(
        (await gw.status(handle.requestId)).approvals.map((a) => [a.approverId, a.via]),
        [['maria', 'link']],
      );
    });

    test('a used link cannot decide again or decide another request; an expired link is refused and counted, not recorded', async () => {
      const first = await gw.gateway.start(request('payout', { amount: 1 }));
      const second = await gw.gateway.start(request('payout', { amount: 2 }));
      const s1 = await pendingStatus(first.requestId);
      const s2 = await pendingStatus(second.requestId);
      const approver = { id: 'tia', tenant: 'acme', groups: ['treasury'] };
      const link = await gw.links.mintLink({ requestId: first.requestId, digest: s1.digest ?? '', approver });
      const form = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'decision=approve' };
      assert.equal((await fetch(`${gw.apiUrl}/v1/links/${link.token}`, form)).status, 200);
      assert.equal((await fetch(`${gw.apiUrl}/v1/links/${link.token}`, form)).status, 409, 'reused on the same request');
      assert.deepEqual(await refusalsOf(first.requestId), [['tia', FailureTypes.LinkReused]], 'the reuse by an authenticated approver is recorded');
      // The same token can only ever name its own request: presenting it for the second one fails the binding.
      const forSecond = await gw.api('POST', `/v1/approvals/${second.requestId}/decision`, {
        token: link.token,
        body: { decision: 'approve', digest: s2.digest },
      });
      assert.equal(forSecond.status, 401, 'a link token is not an approver token');

      const expired = await gw.links.mintLink({ requestId: second.requestId, digest: s2.digest ?? '', approver }, new Date(Date.now() - 3600_000));
      const counted = await refusedAtEdge(gw.apiUrl, { surface: 'link', code: 'invalid_link' });
      const res = await fetch(`${gw.apiUrl}/v1/links/${expired.token}`, form);
      assert.equal(res.status, 401);
      assert.equal(await refusedAtEdge(gw.apiUrl, { surface: 'link', code: 'invalid_link' }), counted + 1, 'the expired link is counted at the edge');
      // Opened in a browser, a genuine link that only expired leads to the inbox (sign-in, then the request), not a dead end.
      const opened = await fetch(`${gw.apiUrl}/v1/links/${expired.token}`, { redirect: 'manual' });
      assert.equal(opened.status, 303);
      assert.equal(opened.headers.get('location'), `/inbox/from-link/${expired.token}`);
      const forged = await fetch(`${gw.apiUrl}/v1/links/${expired.token.slice(0, -4)}AAAA`, { redirect: 'manual' });
      assert.equal(forged.status, 401, 'a link whose signature does not verify is not sent on');
      const status = await gw.status(second.requestId);
      assert.deepEqual(status.refusals, [], 'a link that does not verify authenticates nobody: nothing enters the history');
      assert.equal(status.approvals.length, 0);
      assert.equal(effectsOf(second.workflowId), 0);
    });
  });

  describe('edit before approve', () => {
    test('a preview tells the approver what policy would decide on edited arguments, and records nothing', async () => {
      const handle = await gw.gateway.start(request('refund', { amount: 90, customer: 'c-7' }));
      const { digest } = await pendingStatus(handle.requestId);
      const manager = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      const view = await gw.api('GET', `/v1/approvals/${handle.requestId}`, { token: manager });
      assert.equal(view.body.argsSchema?.properties?.amount?.type, 'integer', "the view carries the tool's argument schema for the edit form");
      const preview = (args: Record<string, unknown>, withDigest = digest) =>
        gw.api('POST', `/v1/approvals/${handle.requestId}/preview`, { token: manager, body: { digest: withDigest, args } });
      const huge = await preview({ amount: 500000, customer: 'c-7' });
      assert.equal(huge.status, 200, JSON.stringify(huge.body));
      assert.equal(huge.body.decision.outcome, 'deny');
      assert.equal(huge.body.decision.rule, 'refund/no-huge-refunds');
      const large = await preview({ amount: 5000, customer: 'c-7' });
      assert.equal(large.body.decision.outcome, 'approve');
      assert.deepEqual(large.body.eligibleGroups, ['finance'], 'a larger refund goes to finance');
      const invalid = await preview({ amount: 'lots', customer: 'c-7' });
      assert.equal(invalid.body.decision.outcome, 'deny');
      assert.equal(invalid.body.decision.code, 'invalid_arguments');
      assert.equal((await preview({ amount: 5, customer: 'c-7' }, 'f'.repeat(64))).status, 409, 'against a proposal the approver did not read');
      const outsider = await gw.token({ sub: 'olaf', tenant: 'acme', groups: ['support'] });
      assert.equal(
        (await gw.api('POST', `/v1/approvals/${handle.requestId}/preview`, { token: outsider, body: { digest, args: { amount: 5, customer: 'c-7' } } })).status,
        403,
      );
      const after = await gw.status(handle.requestId);
      assert.equal(after.state, 'pending_approval');
      assert.deepEqual([after.edits.length, after.approvals.length, after.digest], [0, 0, digest], 'a preview changes nothing');
    });

    test('an edit is judged by policy again: one that policy denies ends denied, without a side effect', async () => {
      const handle = await gw.gateway.start(request('refund', { amount: 90, customer: 'c-5' }));
      const { digest } = await pendingStatus(handle.requestId);
      const manager = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      const res = await decide(handle.requestId, manager, { decision: 'edit', digest, args: { amount: 500000, customer: 'c-5' }, reason: 'typo?' });
      assert.equal(res.status, 200);
      await assert.rejects(handle.result(), (err: unknown) => err instanceof ToolDenied && err.outcome.rule === 'refund/no-huge-refunds');
      const status = await gw.status(handle.requestId);
      assert.equal(status.edits[0]?.editorId, 'maria');
      assert.equal(effectsOf(handle.workflowId), 0);
    });

    test('an edit that needs another group waits for it, and the agent learns what ran and who changed it', async () => {
      const handle = await gw.gateway.start(request('refund', { amount: 100, customer: 'c-6' }));
      const first = await pendingStatus(handle.requestId);
      const manager = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      const edited = await decide(handle.requestId, manager, { decision: 'edit', digest: first.digest, args: { amount: 2500, customer: 'c-6' } });
      assert.equal(edited.status, 200);
      const second = await pendingStatus(handle.requestId, first.digest);
      assert.notEqual(second.digest, first.digest);
      assert.equal(second.decision?.rule, 'refund/large-refunds-need-finance');
      assert.deepEqual(second.eligibleGroups, ['finance']);
      // The old digest no longer applies, and the manager cannot finish the new plan.
      assert.equal((await decide(handle.requestId, manager, { decision: 'approve', digest: first.digest })).status, 409);
      assert.equal((await decide(handle.requestId, manager, { decision: 'approve', digest: second.digest })).status, 403);
      assert.deepEqual(await refusalsOf(handle.requestId), [
        ['maria', FailureTypes.DigestMismatch],
        ['maria', FailureTypes.NotEligible],
      ]);
      assert.equal(effectsOf(handle.workflowId), 0);
      const finance = await gw.token({ sub: 'fiona', tenant: 'acme', groups: ['finance'] });
      assert.equal((await decide(handle.requestId, finance, { decision: 'approve', digest: second.digest })).status, 200);
      const outcome = await handle.outcome();
      assert.ok(outcome.status === 'completed');
      assert.deepEqual(outcome.args, { amount: 2500, customer: 'c-6' });
      assert.deepEqual(outcome.editedBy, ['maria']);
      assert.equal(outcome.digest, second.digest);
      assert.ok(outcome.proposal);
      assert.equal(canonicalDigest(outcome.proposal), outcome.digest, 'the executed proposal hashes to the approved digest');
      const effect = service.effects.find((e) => e.key === `toolgate:${handle.workflowId}`);
      assert.deepEqual((effect?.body as { args: unknown }).args, { amount: 2500, customer: 'c-6' });
    });
  });

  test('a token from a key that is not trusted cannot be turned into an approval even with the right digest', async () => {
    const handle = await gw.gateway.start(request('refund', { amount: 95, customer: 'c-7' }));
    const { digest } = await pendingStatus(handle.requestId);
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const forged = await issueApproverToken({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { privateKeyPem: await exportPKCS8(other.privateKey) });
    assert.equal((await decide(handle.requestId, forged, { decision: 'approve', digest })).status, 401);
    const status = await gw.status(handle.requestId);
    assert.equal(status.approvals.length, 0);
    assert.deepEqual(status.refusals, []);
    assert.equal(effectsOf(handle.workflowId), 0);
  });

  test(`refused attempts are recorded within bounds: ${HISTORY_BOUNDS.refusalsPerPrincipal} per approver, ${HISTORY_BOUNDS.refusalsPerRequest} per request; beyond them still refused`, async () => {
    const handle = await gw.gateway.start(request('refund', { amount: 97, customer: 'c-8' }));
    const { digest } = await pendingStatus(handle.requestId);
    const perApprover = HISTORY_BOUNDS.refusalsPerPrincipal + 2;
    const approvers = Math.ceil(HISTORY_BOUNDS.refusalsPerRequest / HISTORY_BOUNDS.refusalsPerPrincipal) + 2;
    for (let a = 0; a < approvers; a++) {
      const viewer = await gw.token({ sub: `viewer-${a}`, tenant: 'acme', groups: ['viewer'] });
      for (let i = 0; i < perApprover; i++) {
        const res = await decide(handle.requestId, viewer, { decision: 'approve', digest });
        assert.equal(res.status, 403, `viewer-${a} attempt ${i}`);
        assert.equal(res.body.error.code, 'not_eligible', 'refused with the same answer, recorded or not');
      }
    }
    const status = await gw.status(handle.requestId);
    assert.equal(status.refusals.length, HISTORY_BOUNDS.refusalsPerRequest);
    const perId = new Map<string, number>();
    for (const r of status.refusals) perId.set(String(r.approverId), (perId.get(String(r.approverId)) ?? 0) + 1);
    assert.ok(
      [...perId.values()].every((n) => n === HISTORY_BOUNDS.refusalsPerPrincipal),
      JSON.stringify([...perId]),
    );
    assert.ok(status.refusals.every((r) => r.code === FailureTypes.NotEligible));
    // The record is full; a valid approval still applies.
    const manager = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    assert.equal((await decide(handle.requestId, manager, { decision: 'approve', digest })).status, 200);
    assert.equal((await handle.outcome()).status, 'completed');
    assert.equal(effectsOf(handle.workflowId), 1);
  });

  test('every signal and update a waiting request accepts is one its audit record reads', async () => {
    const handle = await gw.gateway.start(request('refund', { amount: 98, customer: 'c-9' }));
    await pendingStatus(handle.requestId);
    // The SDK's built-in query lists the handlers the workflow registered, by their real names.
    const metadata = await gw.ops.workflow
      .getHandle(handle.workflowId)
      .query<{ definition?: { signalDefinitions?: { name?: string }[]; updateDefinitions?: { name?: string }[] } }>('__temporal_workflow_metadata');
    const names = (defs: { name?: string }[] | undefined) => (defs ?? []).map((d) => d.name ?? '').filter((n) => !n.startsWith('__'));
    const signals = names(metadata.definition?.signalDefinitions);
    const updates = names(metadata.definition?.updateDefinitions);
    assert.ok(signals.length > 0 && updates.length > 0, JSON.stringify(metadata));
    for (const name of signals) assert.ok(Object.hasOwn(AUDITED_MESSAGES.signals, name), `signal ${name} is not read by the audit record`);
    for (const name of updates) assert.ok(Object.hasOwn(AUDITED_MESSAGES.updates, name), `update ${name} is not read by the audit record`);
  });
});
