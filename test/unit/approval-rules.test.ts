/** The approval rules: who may decide at which tier, and when votes satisfy a plan. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  FailureTypes,
  canonicalId,
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
    [
      'a vote on an earlier round does not block a vote on the new digest',
      { approvals: [vote('maria', ['manager'])] },
      approver('maria', ['manager']),
      digest,
      undefined,
    ],
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
    assert.equal(
      refuseDecision(pending(), { decision: 'edit', digest, approver: who, via: 'link', linkNonce: 'n', args: {} })?.type,
      FailureTypes.InvalidDecision,
    );
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

describe('one person is one identity: case, width and compatibility variants of an id', () => {
  // Each spelling is a different string that canonicalId folds to `maria` (or `kate`, `fiona`,
  // `strasse`): upper case, full width, mathematical letters, circled letters, the Kelvin sign
  // (U+212A), a ligature, sharp s. A token issuer or an identity provider may hand out any of them.
  const MARIA = ['maria', 'Maria', 'MARIA', 'ＭＡＲＩＡ', 'ｍａｒｉａ', '𝐦𝐚𝐫𝐢𝐚', '𝕄𝔸ℝ𝕀𝔸', 'Ⓜⓐⓡⓘⓐ'];
  const OTHERS: [string, string][] = [
    ['kate', '\u212Aate'], // Kelvin sign
    ['fiona', '\uFB01ona'], // fi ligature
    ['strasse', 'straße'],
  ];
  const onDigest = (record: ApprovalRecord): ApprovalRecord => ({ ...record, digest });

  test('canonicalId folds every spelling to one id, and keeps different people apart', () => {
    for (const spelling of MARIA) assert.equal(canonicalId(spelling), 'maria', spelling);
    for (const [plain, variant] of OTHERS) assert.equal(canonicalId(variant), plain, variant);
    assert.notEqual(canonicalId('mario'), canonicalId('maria'));
    assert.notEqual(canonicalId('mariá'), canonicalId('maria'), 'an accent is a different letter, not a variant');
  });

  test('min_approvals: two spellings of one person are one approver; a second person completes the quorum', () => {
    const quorum = plan({ minApprovals: 2 });
    for (const first of MARIA) {
      for (const second of MARIA) {
        assert.equal(isApprovalSatisfied(quorum, [vote(first, ['manager']), vote(second, ['manager'])]), false, `${first} + ${second}`);
      }
      assert.equal(isApprovalSatisfied(quorum, [vote(first, ['manager']), vote('tom', ['manager'])]), true, `${first} + tom`);
    }
    assert.equal(
      isApprovalSatisfied(
        plan({ minApprovals: 3 }),
        MARIA.map((id) => vote(id, ['manager'])),
      ),
      false,
      'eight spellings are still one person',
    );
    for (const [plain, variant] of OTHERS) {
      assert.equal(isApprovalSatisfied(quorum, [vote(plain, ['manager']), vote(variant, ['manager'])]), false, `${plain} + ${variant}`);
    }
  });

  test('all_of: one person under two spellings cannot fill two groups', () => {
    const dual = plan({ groups: [], allOf: ['security', 'db_owner'], minApprovals: 2 });
    for (const variant of MARIA.slice(1)) {
      assert.equal(isApprovalSatisfied(dual, [vote('maria', ['security']), vote(variant, ['db_owner'])]), false, variant);
      assert.equal(isApprovalSatisfied(dual, [vote(variant, ['security', 'db_owner']), vote('maria', ['security', 'db_owner'])]), false, variant);
    }
    assert.equal(isApprovalSatisfied(dual, [vote('\u212Aate', ['security']), vote('kate', ['db_owner'])]), false, 'Kelvin sign');
    assert.equal(isApprovalSatisfied(dual, [vote('Maria', ['security']), vote('omar', ['db_owner'])]), true, 'two people do fill both');
  });

  test('rejections_to_deny counts people, not spellings', () => {
    const two = plan({ rejectionsToDeny: 2 });
    const rejections = ['maria', 'ＭＡＲＩＡ', '𝐦𝐚𝐫𝐢𝐚'].map((id) => onDigest(vote(id, ['manager'], 'reject')));
    assert.equal(isRejected(two, rejections, digest), false);
    assert.equal(isRejected(two, [...rejections, onDigest(vote('tom', ['manager'], 'reject'))], digest), true);
  });

  test('a second vote under another spelling is refused as a duplicate vote', () => {
    for (const first of MARIA) {
      const state = pending({ approvals: [onDigest(vote(first, ['manager']))] });
      for (const second of MARIA) {
        assert.equal(
          refuseDecision(state, { decision: 'approve', digest, approver: approver(second, ['manager']) })?.type,
          FailureTypes.DuplicateVote,
          `${first} then ${second}`,
        );
        assert.equal(
          refuseDecision(state, { decision: 'reject', digest, approver: approver(second, ['manager']) })?.type,
          FailureTypes.DuplicateVote,
          `${first} then ${second} rejecting`,
        );
      }
    }
    const kelvin = pending({ approvals: [onDigest(vote('kate', ['manager']))] });
    assert.equal(refuseDecision(kelvin, { decision: 'approve', digest, approver: approver('\u212Aate', ['manager']) })?.type, FailureTypes.DuplicateVote);
    assert.equal(refuseDecision(kelvin, { decision: 'approve', digest, approver: approver('tom', ['manager']) }), undefined, 'another person may still vote');
  });

  test("the requester's or a principal's variant is refused as self-approval, whichever side is spelled differently", () => {
    for (const variant of ['Bot', 'BOT', 'ｂｏｔ', 'Ｂｏｔ', '𝐛𝐨𝐭']) {
      assert.equal(
        refuseDecision(pending(), { decision: 'approve', digest, approver: approver(variant, ['manager']) })?.type,
        FailureTypes.SelfApproval,
        variant,
      );
    }
    for (const variant of ['Carol', 'ＣＡＲＯＬ', '𝕔𝕒𝕣𝕠𝕝']) {
      assert.equal(
        refuseDecision(pending(), { decision: 'reject', digest, approver: approver(variant, ['manager']) })?.type,
        FailureTypes.SelfApproval,
        variant,
      );
    }
    // The requester's id spelled differently from the approver's.
    const maria = pending({ requesterIds: ['ｍａｒｉａ'] });
    for (const variant of MARIA) {
      assert.equal(refuseDecision(maria, { decision: 'approve', digest, approver: approver(variant, ['manager']) })?.type, FailureTypes.SelfApproval, variant);
    }
    const kelvin = pending({ requesterIds: ['\u212Aate'] });
    assert.equal(refuseDecision(kelvin, { decision: 'approve', digest, approver: approver('kate', ['manager']) })?.type, FailureTypes.SelfApproval);
    assert.equal(refuseDecision(maria, { decision: 'approve', digest, approver: approver('mario', ['manager']) }), undefined, 'someone else may approve');
  });
});
