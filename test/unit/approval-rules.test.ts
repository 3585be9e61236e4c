/** The approval rules: who may decide at which tier, and when votes satisfy a plan. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  FailureTypes,
  eligibleGroups,
  isApprovalSatisfied,
  isRejected,
  refuseDecision,
  type ApprovalPlan,
  type ApprovalRecord,
  type PendingApproval,
} from '../../src/shared/index.js';

const plan = (overrides: Partial<ApprovalPlan> = {}): ApprovalPlan => ({
  name: 'p',
  groups: ['manager'],
  allOf: [],
  minApprovals: 1,
  rejectionsToDeny: 1,
  escalation: [{ afterMs: 1000, groups: ['director'] }],
  expiresAfterMs: 10_000,
  ...overrides,
});
const vote = (approverId: string, groups: string[], decision: 'approve' | 'reject' = 'approve'): ApprovalRecord => ({
  approverId,
  groups,
  decision,
  digest: 'd',
  at: '2026-01-01T00:00:00.000Z',
  tier: 0,
});
const digest = 'a'.repeat(64);
const pending = (overrides: Partial<PendingApproval> = {}): PendingApproval => ({
  pending: true,
  tenant: 'acme',
  requesterIds: ['bot', 'carol'],
  digest,
  plan: plan(),
  tier: 0,
  approvals: [],
  ...overrides,
});
const approver = (id: string, groups: string[], tenant = 'acme') => ({ id, groups, tenant });

describe('eligibleGroups', () => {
  test('escalation tiers add their groups cumulatively', () => {
    assert.deepEqual(eligibleGroups(plan(), 0), ['manager']);
    assert.deepEqual(eligibleGroups(plan(), 1), ['manager', 'director']);
  });
});

describe('refuseDecision', () => {
  const cases: [string, Partial<PendingApproval>, ReturnType<typeof approver>, string, string | undefined][] = [
    ['an eligible approver with the right digest', {}, approver('maria', ['manager']), digest, undefined],
    ['a closed request', { pending: false }, approver('maria', ['manager']), digest, FailureTypes.NotPending],
    ['a wrong digest', {}, approver('maria', ['manager']), 'b'.repeat(64), FailureTypes.DigestMismatch],
    ['another tenant', {}, approver('maria', ['manager'], 'globex'), digest, FailureTypes.WrongTenant],
    ['the requester', {}, approver('bot', ['manager']), digest, FailureTypes.SelfApproval],
    ['a principal the requester acts for', {}, approver('carol', ['manager']), digest, FailureTypes.SelfApproval],
    ['a group not yet reached', {}, approver('dora', ['director']), digest, FailureTypes.NotEligible],
    ['a group reached by escalation', { tier: 1 }, approver('dora', ['director']), digest, undefined],
    ['a second vote', { approvals: [{ ...vote('maria', ['manager']), digest }] }, approver('maria', ['manager']), digest, FailureTypes.DuplicateVote],
    ['a vote on an earlier round does not block a vote on the new digest', { approvals: [vote('maria', ['manager'])] }, approver('maria', ['manager']), digest, undefined],
  ];
  for (const [name, state, who, sent, expected] of cases) {
    test(name, () => {
      const refusal = refuseDecision(pending(state), { decision: 'approve', digest: sent, approver: who });
      assert.equal(refusal?.type, expected);
    });
  }
});

describe('refuseDecision: links and edits', () => {
  const who = approver('maria', ['manager']);
  test('a used link nonce is refused', () => {
    const refusal = refuseDecision(pending({ usedLinkNonces: ['n1'] }), { decision: 'approve', digest, approver: who, via: 'link', linkNonce: 'n1' });
    assert.equal(refusal?.type, FailureTypes.LinkReused);
    assert.equal(refuseDecision(pending({ usedLinkNonces: ['n1'] }), { decision: 'approve', digest, approver: who, via: 'link', linkNonce: 'n2' }), undefined);
  });
  test('a link decision without a nonce, or a link edit, is refused', () => {
    assert.equal(refuseDecision(pending(), { decision: 'approve', digest, approver: who, via: 'link' })?.type, FailureTypes.InvalidDecision);
    assert.equal(refuseDecision(pending(), { decision: 'edit', digest, approver: who, via: 'link', linkNonce: 'n', args: {} })?.type, FailureTypes.InvalidDecision);
  });
  test('edit needs args and args need edit', () => {
    assert.equal(refuseDecision(pending(), { decision: 'edit', digest, approver: who })?.type, FailureTypes.InvalidDecision);
    assert.equal(refuseDecision(pending(), { decision: 'approve', digest, approver: who, args: {} })?.type, FailureTypes.InvalidDecision);
    assert.equal(refuseDecision(pending(), { decision: 'edit', digest, approver: who, args: { a: 1 } }), undefined);
  });
});

describe('isRejected', () => {
  test('one rejection ends the request by default; a plan may ask for more', () => {
    const votes = [{ ...vote('a', ['manager'], 'reject'), digest }];
    assert.equal(isRejected(plan(), votes, digest), true);
    assert.equal(isRejected(plan({ rejectionsToDeny: 2 }), votes, digest), false);
    assert.equal(isRejected(plan({ rejectionsToDeny: 2 }), [...votes, { ...vote('b', ['manager'], 'reject'), digest }], digest), true);
    assert.equal(isRejected(plan(), votes, 'c'.repeat(64)), false, 'a rejection of an earlier round does not count');
  });
});

describe('isApprovalSatisfied', () => {
  test('a quorum counts distinct people', () => {
    const quorum = plan({ minApprovals: 2 });
    assert.equal(isApprovalSatisfied(quorum, [vote('a', ['manager'])]), false);
    assert.equal(isApprovalSatisfied(quorum, [vote('a', ['manager']), vote('a', ['manager'])]), false);
    assert.equal(isApprovalSatisfied(quorum, [vote('a', ['manager']), vote('b', ['manager'])]), true);
  });

  test('all_of needs a different person for each group', () => {
    const dual = plan({ groups: [], allOf: ['security', 'db_owner'], minApprovals: 2 });
    assert.equal(isApprovalSatisfied(dual, [vote('x', ['security', 'db_owner'])]), false);
    assert.equal(isApprovalSatisfied(dual, [vote('x', ['security', 'db_owner']), vote('y', ['security'])]), true);
    assert.equal(isApprovalSatisfied(dual, [vote('y', ['security']), vote('z', ['security'])]), false);
  });

  test('all_of matching does not depend on the order of votes', () => {
    const triple = plan({ groups: [], allOf: ['a', 'b', 'c'], minApprovals: 3 });
    const votes = [vote('p', ['a', 'b']), vote('q', ['a']), vote('r', ['b', 'c'])];
    for (const order of [votes, [...votes].reverse(), [votes[1]!, votes[0]!, votes[2]!]]) {
      assert.equal(isApprovalSatisfied(triple, order), true);
    }
  });

  test('rejections do not count as approvals', () => {
    assert.equal(isApprovalSatisfied(plan(), [vote('a', ['manager'], 'reject')]), false);
  });
});
