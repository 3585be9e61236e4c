/**
 * End-user confirmation on the policy side: an approval plan's `end_user: true` becomes
 * `ApprovalPlan.endUser`, lets the plan list no group, and is absent otherwise, so the plans (and
 * the proposal digests approvers sign) of existing policies keep their shape.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildProposal, proposalDigest } from '../../src/approvals/digest.js';
import { decide, parsePolicy, PolicyLoadError, type LoadedPolicy, type PolicyIssue } from '../../src/policy/index.js';
import type { ToolRequest } from '../../src/shared/index.js';
import { argsOf, policy, type PlanSpec, type PolicyBuilder } from '../helpers/policy-builder.js';

/** A low-risk tool whose every call needs the plan `confirm` (each test adds the plan). */
function setPriority(): PolicyBuilder {
  return policy()
    .tool('set_priority', { approval: 'confirm' })
    .codeTool('set_priority', { runAs: 'svc-tickets', args: argsOf({ priority: { enum: ['low', 'urgent'] } }) });
}

/** The policy with `plan` as `confirm`, built. */
function load(plan: PlanSpec): LoadedPolicy {
  return parsePolicy([{ file: 'confirm.yaml', text: setPriority().plan('confirm', plan).yaml() }]);
}

/**
 * The load errors of the plan `confirm` written as YAML (lines indented 4): these tests are about
 * the fields as written, including values the typed builder cannot hold (`end_user: yes please`).
 */
function policyWith(plan: string): string {
  return `${setPriority().yaml()}approvals:\n  confirm:\n${plan}`;
}

function issueAt(plan: string, path: string): PolicyIssue {
  try {
    parsePolicy([{ file: 'confirm.yaml', text: policyWith(plan) }]);
  } catch (error) {
    assert.ok(error instanceof PolicyLoadError, `expected PolicyLoadError, got ${String(error)}`);
    const issue = error.issues.find((candidate) => candidate.path === path);
    assert.ok(issue, `no issue at ${path}; issues: ${JSON.stringify(error.issues, null, 2)}`);
    return issue;
  }
  assert.fail('the policy loaded, but it should have failed');
}

const request: ToolRequest = {
  requestId: 'req-1',
  actor: { id: 'support-bot', type: 'agent', roles: ['agent_runtime'] },
  onBehalfOf: [{ id: 'customer:ana', type: 'human' }],
  tenant: 'acme',
  environment: 'production',
  tool: 'set_priority',
  args: { priority: 'urgent' },
};

describe('approval plans: end_user', () => {
  test('end_user: true with no groups loads, and only the end user can satisfy it', () => {
    const plan = load({ endUser: true, expiresAfter: '10m' }).plans.get('confirm');
    assert.deepEqual(plan, {
      name: 'confirm',
      groups: [],
      allOf: [],
      minApprovals: 1,
      rejectionsToDeny: 1,
      escalation: [],
      expiresAfterMs: 600_000,
      endUser: true,
    });
  });

  test('end_user: true with groups: [] and with groups as a fallback', () => {
    assert.deepEqual(load({ endUser: true, groups: [], expiresAfter: '10m' }).plans.get('confirm')?.groups, []);
    const withLeads = load({ endUser: true, groups: ['support_lead'], minApprovals: 1, expiresAfter: '10m' }).plans.get('confirm');
    assert.equal(withLeads?.endUser, true);
    assert.deepEqual(withLeads?.groups, ['support_lead']);
  });

  test('without end_user (or with end_user: false) the plan has no endUser key', () => {
    const expected = { name: 'confirm', groups: ['support_lead'], allOf: [], minApprovals: 1, rejectionsToDeny: 1, escalation: [], expiresAfterMs: 600_000 };
    const absent = load({ groups: ['support_lead'], expiresAfter: '10m' }).plans.get('confirm');
    assert.deepEqual(absent, expected);
    assert.equal(Object.hasOwn(absent ?? {}, 'endUser'), false);
    const off = load({ endUser: false, groups: ['support_lead'], expiresAfter: '10m' }).plans.get('confirm');
    assert.deepEqual(off, expected);
    assert.equal(Object.hasOwn(off ?? {}, 'endUser'), false);
  });

  test('without end_user, a plan must still list groups or all_of', () => {
    const issue = issueAt('    expires_after: 10m\n', 'approvals.confirm');
    assert.match(issue.message, /must list groups or all_of \(or set end_user: true\): nobody could approve this plan/);
    assert.match(issueAt('    end_user: false\n    groups: []\n    expires_after: 10m\n', 'approvals.confirm').message, /nobody could approve this plan/);
  });

  test('min_approvals stays at least 1, and end_user must be a boolean', () => {
    assert.match(
      issueAt('    end_user: true\n    min_approvals: 0\n    expires_after: 10m\n', 'approvals.confirm.min_approvals').message,
      /must be at least 1/,
    );
    assert.match(issueAt('    end_user: yes please\n    expires_after: 10m\n', 'approvals.confirm.end_user').message, /must be true or false/);
  });

  test('decide() hands the plan with endUser to the workflow', () => {
    const decision = decide(load({ endUser: true, expiresAfter: '10m' }), request);
    assert.equal(decision.outcome, 'approve');
    assert.equal(decision.risk, 'low');
    assert.deepEqual(decision.approval, {
      name: 'confirm',
      groups: [],
      allOf: [],
      minApprovals: 1,
      rejectionsToDeny: 1,
      escalation: [],
      expiresAfterMs: 600_000,
      endUser: true,
    });
  });

  test('proposal digests: unchanged shape without end_user, and end_user is signed when set', () => {
    const plain = decide(load({ groups: ['support_lead'], expiresAfter: '10m' }), request);
    const confirmed = decide(load({ groups: ['support_lead'], endUser: true, expiresAfter: '10m' }), request);
    const proposal = buildProposal(request, 'toolreq/acme/req-1', plain);
    assert.deepEqual(proposal.approval, {
      name: 'confirm',
      groups: ['support_lead'],
      allOf: [],
      minApprovals: 1,
      rejectionsToDeny: 1,
      escalation: [],
      expiresAfterMs: 600_000,
    });
    // Same decision but for the plan's endUser (policy digests differ with the documents): the digest must differ.
    const other = buildProposal(request, 'toolreq/acme/req-1', { ...confirmed, policyDigest: plain.policyDigest });
    assert.notEqual(proposalDigest(other), proposalDigest(proposal));
    const stripped = { ...other, approval: { ...other.approval, endUser: undefined } };
    delete stripped.approval.endUser;
    assert.equal(proposalDigest(stripped as typeof proposal), proposalDigest(proposal));
  });
});
