/**
 * The trust boundary's pure parts, without a server: the assertion verifier the workflow runs
 * (against tokens Node's side signs), the decision book's verdicts and history bounds, and the
 * execution activity's own evidence check.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SignJWT, exportPKCS8, generateKeyPair } from 'jose';
import {
  ASSERTION_AUDIENCE,
  AssertionError,
  DECISION_ASSERTION_TYP,
  FailureTypes,
  HISTORY_BOUNDS,
  canonicalId,
  endUserDecline,
  isApprovalSatisfied,
  isConfirmedByEndUser,
  verifyAssertion,
  verifyDecisionAssertion,
  verifyRequestAssertion,
  type ApprovalPlan,
  type EndUserConfirmation,
  type PolicyDecision,
  type RefusalRecord,
  type ToolRequest,
  type TrustAnchors,
} from '../../src/shared/index.js';
import { signingKeyFromPem, type SigningKey } from '../../src/trust/keys.js';
import { EvaluationSealer } from '../../src/trust/seal.js';
import { DecisionSigner, RequestSigner, type DecisionStatement } from '../../src/trust/signers.js';
import { EvidenceError, verifyExecution } from '../../src/trust/evidence.js';
import { DecisionBook, type BookContext } from '../../workflows/decision-book.js';

async function key(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  return signingKeyFromPem(await exportPKCS8(privateKey), 'test');
}

const requestKey = await key();
const decisionKey = await key();
const anchors: TrustAnchors = { requestKeys: [requestKey.trusted], decisionKeys: [decisionKey.trusted] };
const requests = new RequestSigner(requestKey);
const decisions = new DecisionSigner(decisionKey);
const request: ToolRequest = {
  requestId: 'r-1',
  actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] },
  tenant: 'acme',
  environment: 'production',
  tool: 'refund',
  args: { amount: 10 },
};
const workflowId = 'toolreq/acme/r-1';
const runId = 'run-1';
const now = Date.now();
const statement: DecisionStatement = {
  sub: 'maria',
  tenant: 'acme',
  groups: ['manager'],
  request_id: 'r-1',
  workflow_id: workflowId,
  run_id: runId,
  digest: 'a'.repeat(64),
  decision: 'approve',
  channel: 'api',
};

describe('request assertions', () => {
  test("the front door's signature verifies in the workflow's verifier, bound to workflow and body", async () => {
    const token = await requests.sign(request, workflowId);
    const claims = verifyRequestAssertion(token, request, anchors, { workflowId, startedAtMs: now });
    assert.equal(claims.sub, 'bot');
    assert.throws(
      () => verifyRequestAssertion(token, request, anchors, { workflowId: 'toolreq/acme/r-2', startedAtMs: now }),
      (e: unknown) => e instanceof AssertionError && e.problem === 'mismatch',
    );
    assert.throws(
      () => verifyRequestAssertion(token, { ...request, args: { amount: 11 } }, anchors, { workflowId, startedAtMs: now }),
      (e: unknown) => e instanceof AssertionError && e.problem === 'mismatch',
    );
    assert.throws(
      () => verifyRequestAssertion(token, { ...request, actor: { ...request.actor, roles: ['admin'] } }, anchors, { workflowId, startedAtMs: now }),
      (e: unknown) => e instanceof AssertionError && e.problem === 'mismatch',
    );
    assert.throws(
      () => verifyRequestAssertion(token, request, anchors, { workflowId, startedAtMs: now + 3_600_000 }),
      (e: unknown) => e instanceof AssertionError && e.problem === 'expired',
    );
  });

  test('a request assertion is never a decision assertion, and keys of one kind do not sign the other', async () => {
    const token = await requests.sign(request, workflowId);
    assert.throws(
      () => verifyDecisionAssertion(token, anchors, { requestId: 'r-1', workflowId, runId, nowMs: now }),
      (e: unknown) => e instanceof AssertionError,
    );
    const crossSigned = await new RequestSigner(decisionKey).sign(request, workflowId);
    assert.throws(
      () => verifyRequestAssertion(crossSigned, request, anchors, { workflowId, startedAtMs: now }),
      (e: unknown) => e instanceof AssertionError && e.problem === 'unknown_key',
    );
  });

  test('any single changed character of a signed assertion is refused', async () => {
    const token = await requests.sign(request, workflowId);
    fc.assert(
      fc.property(
        fc.nat({ max: token.length - 1 }),
        fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.'),
        (index, replacement) => {
          fc.pre(token[index] !== replacement);
          const changed = token.slice(0, index) + replacement + token.slice(index + 1);
          assert.throws(() => verifyRequestAssertion(changed, request, anchors, { workflowId, startedAtMs: now }), AssertionError);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('alg none, a missing kid, crit headers and a wrong audience are refused', async () => {
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const payload = b64({ aud: ASSERTION_AUDIENCE, iat: now / 1000, exp: now / 1000 + 60, jti: 'x', iss: 'x' });
    assert.throws(
      () =>
        verifyAssertion(`${b64({ alg: 'none', typ: DECISION_ASSERTION_TYP })}.${payload}.`, anchors.decisionKeys, { typ: DECISION_ASSERTION_TYP, nowMs: now }),
      /alg/,
    );
    assert.throws(
      () =>
        verifyAssertion(`${b64({ alg: 'EdDSA', typ: DECISION_ASSERTION_TYP })}.${payload}.AAAA`, anchors.decisionKeys, {
          typ: DECISION_ASSERTION_TYP,
          nowMs: now,
        }),
      /key/,
    );
    const crit = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', typ: DECISION_ASSERTION_TYP, kid: decisionKey.kid, crit: ['b64'], b64: true })
      .sign(decisionKey.privateKey)
      .catch(() => undefined);
    if (crit) assert.throws(() => verifyAssertion(crit, anchors.decisionKeys, { typ: DECISION_ASSERTION_TYP, nowMs: now }), /critical/);
    const wrongAudience = await new SignJWT({ jti: 'x' })
      .setProtectedHeader({ alg: 'EdDSA', typ: DECISION_ASSERTION_TYP, kid: decisionKey.kid })
      .setAudience('toolgate-approvals')
      .setIssuer('x')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(decisionKey.privateKey);
    assert.throws(
      () => verifyAssertion(wrongAudience, anchors.decisionKeys, { typ: DECISION_ASSERTION_TYP, nowMs: now }),
      (e: unknown) => e instanceof AssertionError && e.problem === 'wrong_audience',
    );
  });
});

describe('canonical identity', () => {
  test('every code point folds to a fixed point, and every id made of ASCII letters is found again from any case of it', () => {
    for (let cp = 0; cp <= 0x2ffff; cp += 1) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const once = canonicalId(String.fromCodePoint(cp));
      assert.equal(canonicalId(once), once, `U+${cp.toString(16)}`);
    }
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9._:@-]{0,40}$/), fc.array(fc.boolean(), { minLength: 41, maxLength: 41 }), (id, upper) => {
        const mixed = [...id].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('');
        const wide = [...mixed].map((c) => (/[A-Za-z0-9]/.test(c) ? String.fromCodePoint(c.codePointAt(0)! + 0xfee0) : c)).join('');
        assert.equal(canonicalId(mixed), id);
        assert.equal(canonicalId(wide), id);
      }),
    );
  });
});

describe('the decision book', () => {
  const plan: ApprovalPlan = {
    name: 'managers',
    groups: ['manager'],
    allOf: [],
    minApprovals: 2,
    rejectionsToDeny: 1,
    escalation: [],
    expiresAfterMs: 3_600_000,
  };
  const context = (refusals: RefusalRecord[] = []): BookContext => ({
    requestId: 'r-1',
    workflowId,
    runId,
    nowMs: now,
    refusals,
    pending: { pending: true, tenant: 'acme', requesterIds: ['bot'], digest: statement.digest, plan, tier: 0, approvals: [] },
  });

  test('before the keys are known nothing applies; an unverifiable decision is refused without a record', async () => {
    const book = new DecisionBook();
    assert.equal(book.judge({ assertion: await decisions.sign(statement) }, context()).kind, 'refuse');
    book.trust(anchors);
    const forged = await new DecisionSigner(await key()).sign(statement);
    const verdict = book.judge({ assertion: forged }, context());
    assert.equal(verdict.kind, 'refuse');
    assert.equal(verdict.kind === 'refuse' && verdict.refusal.type, FailureTypes.UntrustedSigningKey);
    const other = book.judge({ assertion: await decisions.sign({ ...statement, run_id: 'run-2' }) }, context());
    assert.equal(other.kind === 'refuse' && other.refusal.type, FailureTypes.UnverifiedDecision);
  });

  test('an accepted assertion cannot be used again, and a link nonce decides once', async () => {
    const book = new DecisionBook();
    book.trust(anchors);
    const token = await decisions.sign({ ...statement, channel: 'link', link_nonce: 'n-1' });
    const first = book.judge({ assertion: token }, context());
    assert.equal(first.kind, 'accept');
    if (first.kind === 'accept') book.apply(first);
    const replay = book.judge({ assertion: token }, context());
    assert.equal(replay.kind === 'refuse' && replay.refusal.type, FailureTypes.UnverifiedDecision);
    const sameLink = book.judge({ assertion: await decisions.sign({ ...statement, sub: 'sam', channel: 'link', link_nonce: 'n-1' }) }, context());
    assert.equal(sameLink.kind, 'record');
    assert.equal(sameLink.kind === 'record' && sameLink.refusal.type, FailureTypes.LinkReused);
  });

  test('refusals of authenticated approvers are recorded up to the bounds per approver and per request, then only refused', async () => {
    const book = new DecisionBook();
    book.trust(anchors);
    const refusals: RefusalRecord[] = [];
    const attempt = async (sub: string) => book.judge({ assertion: await decisions.sign({ ...statement, sub, groups: ['support'] }) }, context(refusals));
    for (let i = 0; i < HISTORY_BOUNDS.refusalsPerPrincipal + 3; i += 1) {
      const verdict = await attempt('sam');
      const expected = i < HISTORY_BOUNDS.refusalsPerPrincipal ? 'record' : 'refuse';
      assert.equal(verdict.kind, expected, `attempt ${i + 1} of sam`);
      if (verdict.kind === 'record') {
        book.apply(verdict);
        refusals.push({ approverId: verdict.input.approver.id, via: 'api', code: verdict.refusal.type, message: verdict.refusal.message, at: '' });
      }
    }
    for (let person = 0; refusals.length < HISTORY_BOUNDS.refusalsPerRequest; person += 1) {
      const verdict = await attempt(`outsider-${person}`);
      assert.equal(verdict.kind, 'record');
      if (verdict.kind === 'record') refusals.push({ approverId: verdict.input.approver.id, via: 'api', code: verdict.refusal.type, message: '', at: '' });
    }
    assert.equal((await attempt('newcomer')).kind, 'refuse', "the request's share is used up");
  });

  test('the approver id is taken in canonical form from the assertion', async () => {
    const book = new DecisionBook();
    book.trust(anchors);
    const verdict = book.judge({ assertion: await decisions.sign({ ...statement, sub: 'ＭＡＲＩＡ' }) }, context());
    assert.equal(verdict.kind === 'accept' && verdict.input.approver.id, canonicalId('maria'));
  });
});

describe("the execution activity's evidence", () => {
  const sealer = new EvaluationSealer(randomBytes(32));
  const context = { workflowId, runId, anchors };
  const plan: ApprovalPlan = { name: 'manager', groups: ['manager'], allOf: [], minApprovals: 1, rejectionsToDeny: 1, escalation: [], expiresAfterMs: 1000 };
  const decision: PolicyDecision = {
    outcome: 'approve',
    tool: 'refund',
    risk: 'high',
    rule: 'tool:refund',
    reasons: [],
    policyDigest: 'p',
    approval: plan,
    runAs: 'svc',
  };
  const evaluation = { decision, digest: statement.digest };

  test('an admitted, sealed and approved request may act; each missing piece stops it', async () => {
    const admission = await requests.sign(request, workflowId);
    const approval = await decisions.sign(statement);
    const seal = sealer.seal({ workflowId, runId, request, evaluation });
    const evidence = { admission, admitted: request, request, evaluation, seal, approvals: [approval] };
    await verifyExecution(evidence, context, sealer);
    const refused = async (change: Partial<typeof evidence>, what: RegExp) =>
      assert.rejects(verifyExecution({ ...evidence, ...change }, context, sealer), (e: unknown) => e instanceof EvidenceError && what.test(e.message));
    await refused({ approvals: [] }, /do not satisfy/);
    await refused({ seal: sealer.seal({ workflowId, runId, request, evaluation: { ...evaluation, decision: { ...decision, outcome: 'allow' } } }) }, /seal/);
    await refused({ seal: sealer.seal({ workflowId, runId: 'another-run', request, evaluation }) }, /seal/);
    await refused({ evaluation: { ...evaluation, decision: { ...decision, outcome: 'allow' } } }, /seal/);
    await refused({ request: { ...request, args: { amount: 1_000_000 } } }, /differs|seal/);
    await refused({ approvals: [await decisions.sign({ ...statement, sub: 'bot' })] }, /requester/);
    await refused({ approvals: [await decisions.sign({ ...statement, run_id: 'other-run' })] }, /another request or run/);
    await refused({ approvals: [await decisions.sign({ ...statement, groups: ['support'] })] }, /do not satisfy/);
    await refused({ admission: await new RequestSigner(await key()).sign(request, workflowId) }, /does not trust/);
    await assert.rejects(verifyExecution(evidence, { ...context, workflowId: 'toolreq/acme/other' }, sealer), EvidenceError);
    await assert.rejects(verifyExecution(evidence, context, new EvaluationSealer(randomBytes(32))), /seal/);
  });

  test('a group of an escalation tier counts only for an approval signed after the tier could open', async () => {
    const tiered: ApprovalPlan = { ...plan, escalation: [{ afterMs: 3_600_000, groups: ['director'] }] };
    const tieredEvaluation = { decision: { ...decision, approval: tiered }, digest: statement.digest };
    const admission = await requests.sign(request, workflowId);
    const seal = sealer.seal({ workflowId, runId, request, evaluation: tieredEvaluation });
    const base = { admission, admitted: request, request, evaluation: tieredEvaluation, seal };
    const early = await decisions.sign({ ...statement, sub: 'dana', groups: ['director'] });
    await assert.rejects(verifyExecution({ ...base, approvals: [early] }, context, sealer), /do not satisfy/);
    const iat = Math.floor(Date.now() / 1000) + 3600;
    const late = await new SignJWT({ ...statement, sub: 'dana', groups: ['director'] })
      .setProtectedHeader({ alg: 'EdDSA', typ: DECISION_ASSERTION_TYP, kid: decisionKey.kid })
      .setIssuer('toolgate-approvals')
      .setAudience(ASSERTION_AUDIENCE)
      .setIssuedAt(iat + 5)
      .setExpirationTime(iat + 300)
      .setJti('late')
      .sign(decisionKey.privateKey);
    await verifyExecution({ ...base, approvals: [late] }, context, sealer);
  });

  test("edits count as their editors' approvals only for the arguments they set", async () => {
    const edited: ToolRequest = { ...request, args: { amount: 20 } };
    const two: ApprovalPlan = { ...plan, minApprovals: 2 };
    const twoEvaluation = { decision: { ...decision, approval: two }, digest: 'b'.repeat(64) };
    const admission = await requests.sign(request, workflowId);
    const editBy = (sub: string, args: Record<string, unknown>) => decisions.sign({ ...statement, sub, decision: 'edit', args });
    const seal = sealer.seal({ workflowId, runId, request: edited, evaluation: twoEvaluation });
    const base = { admission, admitted: request, request: edited, evaluation: twoEvaluation, seal, approvals: [] as string[] };
    await assert.rejects(verifyExecution({ ...base, edit: await editBy('bob', { amount: 20 }) }, context, sealer), /do not satisfy/);
    await verifyExecution({ ...base, edit: await editBy('alice', { amount: 20 }), editApprovals: [await editBy('bob', { amount: 20 })] }, context, sealer);
    await assert.rejects(
      verifyExecution({ ...base, edit: await editBy('alice', { amount: 20 }), editApprovals: [await editBy('bob', { amount: 30 })] }, context, sealer),
      /edited arguments/,
    );
  });
});

describe("the end user's confirmation (channel end_user)", () => {
  const sealer = new EvaluationSealer(randomBytes(32));
  const evidenceContext = { workflowId, runId, anchors };
  const confirmable: ApprovalPlan = {
    name: 'confirm',
    groups: [],
    allOf: [],
    minApprovals: 1,
    rejectionsToDeny: 1,
    escalation: [],
    expiresAfterMs: 1000,
    endUser: true,
  };
  const forMaria: ToolRequest = { ...request, onBehalfOf: [{ id: 'maria', type: 'human' }] };
  const endUserStatement: DecisionStatement = { ...statement, sub: 'maria', groups: [], channel: 'end_user' };
  const bookContext = (plan: ApprovalPlan, endUser: string | undefined, confirmations: EndUserConfirmation[] = []): BookContext => ({
    requestId: 'r-1',
    workflowId,
    runId,
    nowMs: now,
    refusals: [],
    pending: {
      pending: true,
      tenant: 'acme',
      requesterIds: ['bot', 'maria'],
      digest: statement.digest,
      plan,
      tier: 0,
      approvals: [],
      ...(endUser === undefined ? {} : { endUser }),
      confirmations,
    },
  });

  test('only the plan that accepts it, and only from the request’s own end user, once per proposal', async () => {
    const judge = async (claims: Partial<DecisionStatement>, context: BookContext) => {
      const book = new DecisionBook();
      book.trust(anchors);
      return book.judge({ assertion: await decisions.sign({ ...endUserStatement, ...claims }) }, context);
    };
    const accepted = await judge({}, bookContext(confirmable, 'maria'));
    assert.equal(accepted.kind, 'accept');
    assert.equal(accepted.kind === 'accept' && accepted.input.via, 'end_user');
    const refusal = async (claims: Partial<DecisionStatement>, context: BookContext) => {
      const verdict = await judge(claims, context);
      return verdict.kind === 'accept' ? undefined : verdict.refusal.type;
    };
    // A requester's own answer, though: never an approver's vote on a plan that does not take it.
    assert.equal(await refusal({}, bookContext({ ...confirmable, endUser: undefined, groups: ['manager'] }, 'maria')), FailureTypes.NotEligible);
    assert.equal(await refusal({}, bookContext(confirmable, undefined)), FailureTypes.NotEligible);
    assert.equal(await refusal({ sub: 'mallory' }, bookContext(confirmable, 'maria')), FailureTypes.NotEligible);
    assert.equal(await refusal({ digest: 'b'.repeat(64) }, bookContext(confirmable, 'maria')), FailureTypes.DigestMismatch);
    const answered: EndUserConfirmation = { principal: 'maria', decision: 'reject', digest: statement.digest, at: '' };
    assert.equal(await refusal({}, bookContext(confirmable, 'maria', [answered])), FailureTypes.DuplicateVote);
    // An end-user assertion with groups is malformed: it can never count as a group's vote.
    assert.equal(await refusal({ groups: ['manager'] }, bookContext(confirmable, 'maria')), FailureTypes.UnverifiedDecision);
  });

  test('a confirmation satisfies an end-user plan; declines reject; votes of approvers still count', () => {
    const confirmed: EndUserConfirmation = { principal: 'maria', decision: 'approve', digest: 'd', at: '' };
    assert.equal(isConfirmedByEndUser(confirmable, [confirmed], 'd'), true);
    assert.equal(isConfirmedByEndUser(confirmable, [confirmed], 'e'), false, 'bound to the digest');
    assert.equal(isConfirmedByEndUser({ ...confirmable, endUser: undefined }, [confirmed], 'd'), false, 'only where the plan accepts it');
    assert.equal(isApprovalSatisfied(confirmable, [], 'd'), false, 'an end-user-only plan is never satisfied by nobody');
    assert.equal(endUserDecline(confirmable, [{ ...confirmed, decision: 'reject' }], 'd')?.principal, 'maria');
    assert.equal(endUserDecline(confirmable, [confirmed], 'd'), undefined);
  });

  test("the execution activity takes the end user's confirmation only where the plan accepts it", async () => {
    const decision: PolicyDecision = {
      outcome: 'approve',
      tool: 'refund',
      risk: 'low',
      rule: 'tool:refund',
      reasons: [],
      policyDigest: 'p',
      approval: confirmable,
    };
    const evaluation = { decision, digest: statement.digest };
    const admission = await requests.sign(forMaria, workflowId);
    const seal = sealer.seal({ workflowId, runId, request: forMaria, evaluation });
    const base = { admission, admitted: forMaria, request: forMaria, evaluation, seal, approvals: [] as string[] };
    await verifyExecution({ ...base, confirmation: await decisions.sign(endUserStatement) }, evidenceContext, sealer);
    await assert.rejects(verifyExecution(base, evidenceContext, sealer), /do not satisfy/);
    const refused = async (token: string, what: RegExp) => assert.rejects(verifyExecution({ ...base, confirmation: token }, evidenceContext, sealer), what);
    await refused(await decisions.sign({ ...endUserStatement, digest: 'b'.repeat(64) }), /confirmation/);
    await refused(await decisions.sign({ ...endUserStatement, decision: 'reject' }), /confirmation/);
    await refused(await decisions.sign({ ...endUserStatement, sub: 'mallory' }), /end user/);
    // An approver's ordinary approval is no end user's confirmation, and cannot stand in for one.
    await refused(await decisions.sign({ ...statement, sub: 'alice' }), /confirmation/);
    const strict: PolicyDecision = { ...decision, approval: { ...confirmable, endUser: undefined } };
    const strictEvaluation = { decision: strict, digest: statement.digest };
    const strictSeal = sealer.seal({ workflowId, runId, request: forMaria, evaluation: strictEvaluation });
    await assert.rejects(
      verifyExecution(
        { ...base, evaluation: strictEvaluation, seal: strictSeal, confirmation: await decisions.sign(endUserStatement) },
        evidenceContext,
        sealer,
      ),
      /does not accept/,
    );
    // The end user's approval sent as an approver's vote counts for nothing (no groups).
    await assert.rejects(verifyExecution({ ...base, approvals: [await decisions.sign(endUserStatement)] }, evidenceContext, sealer), /do not satisfy/);
  });

  test('the person who asked for a linked request cannot be its second person', async () => {
    const plan: ApprovalPlan = {
      name: 'break_glass:freeze',
      groups: ['sre'],
      allOf: [],
      minApprovals: 1,
      rejectionsToDeny: 1,
      escalation: [],
      expiresAfterMs: 1000,
    };
    const linked: ToolRequest = {
      ...request,
      link: { kind: 'override', requestId: 'r-0', tool: 'refund', by: { id: 'olga', groups: ['sre'] }, reason: 'outage' },
    };
    const decision: PolicyDecision = {
      outcome: 'approve',
      tool: 'refund',
      risk: 'high',
      rule: 'break_glass:freeze',
      reasons: [],
      policyDigest: 'p',
      approval: plan,
    };
    const evaluation = { decision, digest: statement.digest };
    const admission = await requests.sign(linked, workflowId);
    const seal = sealer.seal({ workflowId, runId, request: linked, evaluation });
    const base = { admission, admitted: linked, request: linked, evaluation, seal };
    await verifyExecution({ ...base, approvals: [await decisions.sign({ ...statement, sub: 'sven', groups: ['sre'] })] }, evidenceContext, sealer);
    await assert.rejects(
      verifyExecution({ ...base, approvals: [await decisions.sign({ ...statement, sub: 'OLGA', groups: ['sre'] })] }, evidenceContext, sealer),
      /requester cannot approve/,
    );
  });
});
