/**
 * The toolRequest workflow's state machine, driven without a server: admission, approval rounds
 * (quorum, rejection, the end user's answers, edits that count as approval), escalation and
 * reminders on a clock the test holds, kill orders, trust refreshes, the bounds on recorded
 * refusals, and the evidence the execution carries. Decisions are real signed decision
 * assertions, verified by the machine's DecisionBook as in the workflow.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { exportPKCS8, generateKeyPair } from 'jose';
import type { TrustAnchors } from '../../src/shared/assertions.js';
import { FailureTypes, HISTORY_BOUNDS, searchAttributes } from '../../src/shared/messages.js';
import type { ApprovalPlan, Evaluation, OverrideGrant } from '../../src/shared/policy-decisions.js';
import type { KillOrder } from '../../src/shared/request-status.js';
import type { ToolRequest } from '../../src/shared/requests.js';
import { signingKeyFromPem, type SigningKey } from '../../src/trust/keys.js';
import { DecisionSigner, RequestSigner, type DecisionStatement } from '../../src/trust/signers.js';
import { RequestMachine, type DecideResult } from '../../workflows/request-machine.js';
import {
  expiredOutcome,
  killedOutcome,
  outcomeBase,
  rejectedOutcome,
  stateAttributes,
  unadmittedOutcome,
  verifiedAttributes,
  waitingAttributes,
} from '../../workflows/request-views.js';

async function key(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  return signingKeyFromPem(await exportPKCS8(privateKey), 'test');
}

const requestKey = await key();
const decisionKey = await key();
const anchors: TrustAnchors = { requestKeys: [requestKey.trusted], decisionKeys: [decisionKey.trusted] };
const decisions = new DecisionSigner(decisionKey);
const workflowId = 'toolreq/acme/r-1';
const runId = 'run-1';
/** The test's clock: decision assertions are valid for minutes around the real time, so rounds run in milliseconds from here. */
const t0 = Date.now();
const digestA = 'a'.repeat(64);
const digestB = 'b'.repeat(64);
const request: ToolRequest = {
  requestId: 'r-1',
  actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] },
  tenant: 'acme',
  environment: 'production',
  tool: 'refund',
  args: { amount: 10 },
  onBehalfOf: [{ id: 'Erin', type: 'human' }],
};

const plan = (overrides: Partial<ApprovalPlan> = {}): ApprovalPlan => ({
  name: 'manager',
  groups: ['manager'],
  allOf: [],
  minApprovals: 1,
  rejectionsToDeny: 1,
  escalation: [],
  expiresAfterMs: 60_000,
  ...overrides,
});

const evaluation = (approval: ApprovalPlan, digest: string, overrides: Partial<Evaluation> = {}): Evaluation => ({
  decision: { outcome: 'approve', tool: 'refund', risk: 'high', rule: 'tool:refund', reasons: [], policyDigest: 'p', approval, toolDigest: 't', runAs: 'svc' },
  digest,
  ...overrides,
});

/** A machine whose policy asked for `approval` on `digestA`, with its round open at t0. */
function pendingMachine(approval: ApprovalPlan, options: { previews?: boolean; inboxVisible?: boolean; start?: unknown } = {}): RequestMachine {
  const m = new RequestMachine(options.start ?? { request, admission: 'unused' }, {
    workflowId,
    runId,
    inboxVisible: options.inboxVisible ?? true,
    previews: () => options.previews ?? false,
  });
  m.trust(anchors);
  m.evaluated(evaluation(approval, digestA));
  m.roundOpened(approval, digestA, t0);
  return m;
}

/** Signs `statement` (an approver of acme by default) and applies it at `at`. */
async function decide(m: RequestMachine, statement: Partial<DecisionStatement>, at = t0 + 10): Promise<{ result: DecideResult; token: string }> {
  const token = await decisions.sign({
    sub: 'maria',
    tenant: 'acme',
    groups: ['manager'],
    request_id: 'r-1',
    workflow_id: workflowId,
    run_id: runId,
    digest: digestA,
    decision: 'approve',
    channel: 'api',
    ...statement,
  });
  return { result: m.decide({ assertion: token }, at), token };
}

const refusalOf = (result: DecideResult) => (result.kind === 'refused' ? result.refusal.type : undefined);

describe('admission', () => {
  test('only the request the front door signed for this workflow is admitted', async () => {
    const admission = await new RequestSigner(requestKey).sign(request, workflowId);
    const options = { workflowId, runId, inboxVisible: true, previews: () => false };
    const admitted = new RequestMachine({ request, admission }, options);
    assert.equal(admitted.admit(admission, anchors, t0), undefined);
    assert.equal(admitted.admissionVerified, true);

    const forged = await new RequestSigner(await key()).sign(request, workflowId);
    const other = new RequestMachine({ request, admission: forged }, options);
    assert.match(other.admit(forged, anchors, t0) ?? '', /key/);
    assert.equal(other.admissionVerified, false);

    const elsewhere = new RequestMachine({ request, admission }, { ...options, workflowId: 'toolreq/acme/r-2' });
    assert.match(elsewhere.admit(admission, anchors, t0) ?? '', /workflow id is not the one/);

    const malformed = new RequestMachine({ request: { tool: 'refund' } }, options);
    const reason = malformed.admit(admission, anchors, t0);
    assert.match(reason ?? '', /not a tool request/);
    const outcome = unadmittedOutcome(malformed, reason as string);
    assert.equal(outcome.status === 'denied' && outcome.code, 'unverified_request');
    assert.equal(outcome.rule, 'check:request_assertion');
  });

  test('the starter-set search attributes that differ from the verified request are corrected, a missing link cleared', () => {
    const m = new RequestMachine({ request, admission: '' }, { workflowId, runId, inboxVisible: true, previews: () => false });
    const set = new Map<string, unknown>([
      [searchAttributes.tenant.name, 'acme'],
      [searchAttributes.tool.name, 'delete_everything'],
      [searchAttributes.actor.name, 'bot'],
      [searchAttributes.link.name, 'override:r-0'],
    ]);
    const changed = verifiedAttributes(m.request, { get: ((k: { name: string }) => set.get(k.name)) as never });
    assert.deepEqual(
      changed.map((pair) => [pair.key.name, pair.value]),
      [
        [searchAttributes.tool.name, 'refund'],
        [searchAttributes.link.name, null],
      ],
    );
  });
});

describe('an approval round', () => {
  test('approves by quorum: each approver counts once, and the round closes at the quorum', async () => {
    const m = pendingMachine(plan({ minApprovals: 2 }));
    assert.equal(m.status.state, 'pending_approval');
    const first = await decide(m, { sub: 'maria' });
    assert.equal(first.result.kind, 'voted');
    const waiting = first.result.kind === 'voted' ? first.result.waiting : [];
    assert.deepEqual(waiting.find((pair) => pair.key.name === searchAttributes.voters.name)?.value, ['maria']);
    assert.equal(m.roundSettled(), false);
    assert.equal(refusalOf((await decide(m, { sub: 'Maria' })).result), FailureTypes.DuplicateVote, 'one person is one identity');
    const second = await decide(m, { sub: 'fiona' });
    assert.equal(second.result.kind, 'voted');
    assert.equal(m.roundSettled(), true);
    assert.equal(refusalOf((await decide(m, { sub: 'gina' })).result), FailureTypes.NotPending, 'no vote counts after the quorum');
    m.roundClosed();
    assert.deepEqual(m.roundEnd(), { kind: 'approved' });
    assert.deepEqual(
      m.status.approvals.map((vote) => vote.approverId),
      ['maria', 'fiona'],
    );
    assert.deepEqual(
      m.status.refusals.map((refusal) => refusal.code),
      [FailureTypes.DuplicateVote, FailureTypes.NotPending],
    );
    const evidence = m.evidence('the-admission');
    assert.deepEqual(evidence, { admission: 'the-admission', approvals: [first.token, second.token] });
  });

  test('rejects: a rejection ends the round with who rejected and why', async () => {
    const m = pendingMachine(plan());
    await decide(m, { sub: 'maria', decision: 'reject', reason: 'not this month' });
    assert.equal(m.roundSettled(), true);
    m.roundClosed();
    const end = m.roundEnd();
    assert.deepEqual(end, { kind: 'rejected', by: 'maria', reason: 'not this month' });
    const outcome = rejectedOutcome(m, 'maria', 'not this month');
    assert.equal(outcome.status === 'rejected' && outcome.rejectedBy, 'maria');
    assert.deepEqual(m.evidence('a').approvals, [], 'a rejection is no evidence of approval');
  });

  test('refused attempts are recorded within the bounds per approver and per request, then only refused', async () => {
    const m = pendingMachine(plan());
    assert.equal(refusalOf((await decide(m, { sub: 'bot' })).result), FailureTypes.SelfApproval);
    assert.equal(refusalOf((await decide(m, { sub: 'erin' })).result), FailureTypes.SelfApproval, 'the end user is a requester for approvers');
    assert.equal(refusalOf((await decide(m, { digest: digestB })).result), FailureTypes.DigestMismatch);
    for (let i = 0; i < HISTORY_BOUNDS.refusalsPerPrincipal + 2; i += 1) {
      const { result } = await decide(m, { sub: 'sam', groups: ['support'] });
      assert.equal(refusalOf(result), FailureTypes.NotEligible);
    }
    const fromSam = m.status.refusals.filter((refusal) => refusal.approverId === 'sam');
    assert.equal(fromSam.length, HISTORY_BOUNDS.refusalsPerPrincipal, "beyond sam's share nothing is recorded");
    for (let person = 0; m.status.refusals.length < HISTORY_BOUNDS.refusalsPerRequest; person += 1) {
      await decide(m, { sub: `outsider-${person}`, groups: ['support'] });
    }
    const { result } = await decide(m, { sub: 'newcomer', groups: ['support'] });
    assert.equal(refusalOf(result), FailureTypes.NotEligible);
    assert.equal(m.status.refusals.length, HISTORY_BOUNDS.refusalsPerRequest, "beyond the request's share nothing is recorded");
    assert.equal(m.status.approvals.length, 0);
    assert.equal(m.roundSettled(), false, 'refusals never settle a round');
    // An assertion that does not verify is refused before anything is recorded.
    assert.equal(refusalOf(m.decide({ assertion: 'not.a.token' }, t0)), FailureTypes.UnverifiedDecision);
  });

  test('escalation adds tiers on time, and their groups may decide from then on', async () => {
    const m = pendingMachine(
      plan({
        escalation: [
          { afterMs: 1000, groups: ['director'] },
          { afterMs: 3000, groups: ['vp'] },
        ],
        expiresAfterMs: 10_000,
      }),
    );
    assert.equal(m.wakeAt(), t0 + 1000);
    assert.equal(m.escalate(t0 + 999), undefined);
    assert.equal(refusalOf((await decide(m, { sub: 'dora', groups: ['director'] }, t0 + 500)).result), FailureTypes.NotEligible);
    assert.deepEqual(m.escalate(t0 + 1000), ['director']);
    assert.equal(m.status.tier, 1);
    assert.deepEqual(m.status.eligibleGroups, ['manager', 'director']);
    assert.deepEqual(waitingAttributes(m).find((pair) => pair.key.name === searchAttributes.tier.name)?.value, 1);
    assert.equal(m.wakeAt(), t0 + 3000);
    assert.deepEqual(m.escalate(t0 + 3000), ['vp']);
    assert.equal(m.wakeAt(), t0 + 10_000, 'after the last tier only the expiry is left');
    assert.equal(m.escalate(t0 + 9000), undefined);
    assert.equal(m.isExpired(t0 + 9999), false);
    assert.equal(m.isExpired(t0 + 10_000), true);
    const { result } = await decide(m, { sub: 'dora', groups: ['director'] }, t0 + 3500);
    assert.equal(result.kind, 'voted');
    assert.equal(m.status.approvals[0]?.tier, 2);
    assert.equal(m.roundSettled(), true);
  });

  test('reminders are sent at their interval, at most HISTORY_BOUNDS.reminders times per round', () => {
    const m = pendingMachine(plan({ remindEveryMs: 100, expiresAfterMs: 1_000_000_000 }));
    assert.equal(m.remind(t0 + 99), undefined);
    let reminders = 0;
    for (let now = m.wakeAt(); now < t0 + 1_000_000_000; now = m.wakeAt()) {
      assert.deepEqual(m.remind(now), ['manager']);
      reminders += 1;
    }
    assert.equal(reminders, HISTORY_BOUNDS.reminders);
    assert.equal(m.wakeAt(), t0 + 1_000_000_000, 'after the last reminder only the expiry is left');
    assert.equal(m.remind(t0 + 999_999_999), undefined);
  });
});

describe("the end user's answers", () => {
  const endUserPlan = plan({ endUser: true });
  const endUser = { sub: 'erin', groups: [], channel: 'end_user' as const };

  test("the end user's confirmation settles the round, recorded apart from the votes", async () => {
    const m = pendingMachine(endUserPlan);
    const { result, token } = await decide(m, endUser);
    assert.equal(result.kind, 'confirmed');
    assert.deepEqual(m.status.approvals, []);
    assert.equal(m.status.confirmations?.[0]?.principal, 'erin');
    assert.equal(m.roundSettled(), true);
    m.roundClosed();
    assert.deepEqual(m.roundEnd(), { kind: 'approved' });
    assert.deepEqual(m.evidence('a'), { admission: 'a', approvals: [], confirmation: token });
    assert.equal(outcomeBase(m).confirmation?.principal, 'erin');
  });

  test("the end user's refusal rejects; a plan that does not accept them refuses their answer", async () => {
    const declined = pendingMachine(endUserPlan);
    await decide(declined, { ...endUser, decision: 'reject', reason: 'wrong amount' });
    declined.roundClosed();
    assert.deepEqual(declined.roundEnd(), { kind: 'rejected', by: 'erin', reason: 'wrong amount' });

    const approversOnly = pendingMachine(plan());
    assert.equal(refusalOf((await decide(approversOnly, endUser)).result), FailureTypes.NotEligible);
    assert.equal(approversOnly.status.refusals.length, 1);
    assert.equal(approversOnly.roundSettled(), false);
    assert.equal(refusalOf((await decide(pendingMachine(endUserPlan), { ...endUser, sub: 'mallory' })).result), FailureTypes.NotEligible);
  });

  test('an adjustment is judged again and counts as the confirmation of what policy made of it', async () => {
    const m = pendingMachine(endUserPlan);
    const { result, token } = await decide(m, { ...endUser, decision: 'edit', args: { amount: 8 } });
    assert.equal(result.kind, 'edited');
    assert.equal(m.editPending, true);
    assert.equal(m.roundSettled(), true);
    m.roundClosed();
    assert.deepEqual(m.roundEnd(), { kind: 'reevaluated' });
    assert.equal(m.status.state, 'reevaluating');
    m.takeEdit();
    assert.deepEqual(m.request.args, { amount: 8 });
    assert.deepEqual(m.editEvidence(), { edit: token, admitted: request });
    m.evaluated(evaluation(endUserPlan, digestB));
    m.edited(t0 + 20);
    assert.equal(m.editPending, false, "the adjustment's update gets its answer");
    assert.deepEqual(m.editors, ['erin']);
    assert.equal(m.status.edits[0]?.toDigest, digestB);
    m.roundOpened(endUserPlan, digestB, t0 + 20);
    assert.equal(m.roundSettled(), true, 'already confirmed: nobody else needs to answer');
    m.roundClosed();
    assert.deepEqual(m.roundEnd(), { kind: 'approved' });
    assert.deepEqual(m.evidence('a'), { admission: 'a', approvals: [], edit: token, admitted: request, confirmation: token });
  });
});

describe('edits', () => {
  test("an approver's edit counts as their approval of the new proposal", async () => {
    const m = pendingMachine(plan());
    const { result, token } = await decide(m, { decision: 'edit', args: { amount: 5 } });
    assert.equal(result.kind, 'edited');
    assert.equal(refusalOf((await decide(m, { sub: 'fiona' })).result), FailureTypes.NotPending, 'no decision applies while the edit is judged');
    m.roundClosed();
    m.roundEnd();
    m.takeEdit();
    m.evaluated(evaluation(plan(), digestB));
    m.edited(t0 + 20);
    assert.deepEqual(
      m.status.approvals.map((vote) => [vote.approverId, vote.via, vote.digest]),
      [['maria', 'edit', digestB]],
    );
    m.roundOpened(plan(), digestB, t0 + 20);
    assert.equal(m.roundSettled(), true);
    assert.deepEqual(m.evidence('a'), { admission: 'a', approvals: [], edit: token, admitted: request, editApprovals: [token] });
  });

  test('with a preview nobody has read yet, or a plan that needs more, the edit is not the whole approval', async () => {
    const previewed = pendingMachine(plan(), { previews: true });
    await decide(previewed, { decision: 'edit', args: { amount: 5 } });
    previewed.roundClosed();
    previewed.roundEnd();
    previewed.takeEdit();
    previewed.evaluated(evaluation(plan(), digestB, { previewTimeoutMs: 2000 }));
    previewed.edited(t0 + 20);
    assert.deepEqual(previewed.status.approvals, [], 'the editor approves after reading the preview, like everyone else');

    const two = pendingMachine(plan({ minApprovals: 2 }));
    await decide(two, { decision: 'edit', args: { amount: 5 } });
    two.roundClosed();
    two.roundEnd();
    two.takeEdit();
    two.evaluated(evaluation(plan({ minApprovals: 2 }), digestB));
    two.edited(t0 + 20);
    two.roundOpened(plan({ minApprovals: 2 }), digestB, t0 + 20);
    assert.equal(two.roundSettled(), false);
    assert.equal(refusalOf((await decide(two, { digest: digestB }, t0 + 30)).result), FailureTypes.DuplicateVote, 'the editor already counts');
    assert.equal((await decide(two, { sub: 'fiona', digest: digestB }, t0 + 30)).result.kind, 'voted');
    assert.equal(two.roundSettled(), true);
  });
});

describe('kill orders and trust refreshes', () => {
  const order: KillOrder = { switchId: 'ks-1', reason: 'incident', by: 'ops', at: new Date(t0).toISOString() };

  test('a kill order ends the round and denies the request; only its own fields are kept, and only the first', () => {
    const m = pendingMachine(plan());
    m.kill({ switchId: 'ks-0', reason: 'no by' });
    assert.equal(m.killed, undefined, 'a malformed order is ignored');
    m.kill({ ...order, extra: 'x'.repeat(10) });
    m.kill({ ...order, switchId: 'ks-2' });
    assert.deepEqual(m.killed, order);
    assert.deepEqual(m.status.killedBy, order);
    assert.equal(m.roundSettled(), true);
    m.roundClosed();
    assert.deepEqual(m.roundEnd(), { kind: 'killed' });
    const outcome = killedOutcome(m);
    assert.equal(outcome.status === 'denied' && outcome.code, 'kill_switch');
  });

  test('once the side effect started, no kill order applies', () => {
    const m = pendingMachine(plan());
    m.executing();
    m.kill(order);
    assert.equal(m.killed, undefined);
  });

  test('trusted keys are re-read only while the request waits, at most HISTORY_BOUNDS.trustRefreshes times', () => {
    const m = new RequestMachine({ request, admission: '' }, { workflowId, runId, inboxVisible: true, previews: () => false });
    m.wantTrustRefresh();
    assert.equal(m.trustRefreshWanted, false, 'not while policy evaluates');
    m.evaluated(evaluation(plan(), digestA));
    m.roundOpened(plan(), digestA, t0);
    let refreshes = 0;
    for (let i = 0; i < HISTORY_BOUNDS.trustRefreshes + 3; i += 1) {
      m.wantTrustRefresh();
      if (!m.trustRefreshWanted) continue;
      m.refreshingTrust();
      refreshes += 1;
    }
    assert.equal(refreshes, HISTORY_BOUNDS.trustRefreshes);
  });
});

describe('the end of a request', () => {
  test('whoever was notified hears the outcome, the groups of a break-glass rule too; an edit waiting for judgement is answered', async () => {
    const quiet = pendingMachine(plan());
    assert.equal(quiet.finished(expiredOutcome(quiet)), undefined, 'nobody was notified, nobody is told');

    const m = pendingMachine(plan());
    const override: OverrideGrant = {
      breakGlass: 'outage',
      deniedRule: 'tool:refund',
      deniedCode: 'rule_denied',
      deniedReasons: ['denied'],
      by: 'sam',
      reason: 'outage',
      notify: ['security'],
    };
    m.evaluated({ ...evaluation(plan(), digestA), decision: { ...evaluation(plan(), digestA).decision, override } });
    const requested = m.notification('requested', m.status.eligibleGroups, t0);
    assert.equal(requested.digest, digestA);
    assert.equal(requested.override, override);
    await decide(m, { decision: 'edit', args: { amount: 1 } });
    assert.equal(m.editPending, true);
    const outcome = expiredOutcome(m);
    assert.deepEqual(m.finished(outcome), ['manager', 'security']);
    assert.equal(m.editPending, false);
    assert.equal(m.status.state, 'expired');
    assert.equal(m.status.outcome, outcome);
    assert.deepEqual(
      stateAttributes(m).map((pair) => [pair.key.name, pair.value]),
      [
        [searchAttributes.status.name, 'expired'],
        [searchAttributes.eligibleGroups.name, []],
        [searchAttributes.voters.name, []],
      ],
    );
    const told = m.notification('outcome', ['manager'], t0 + 30);
    assert.equal(told.outcome, 'expired');
    assert.equal(told.args, undefined, 'the outcome message does not repeat the arguments');
  });

  test('runs from before the inbox patch keep no waiting attributes', () => {
    const m = pendingMachine(plan(), { inboxVisible: false });
    assert.deepEqual(waitingAttributes(m), []);
    assert.deepEqual(
      stateAttributes(m).map((pair) => pair.key.name),
      [searchAttributes.status.name],
    );
  });
});
