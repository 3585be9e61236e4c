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

function policyWith(plan: string): string {
  return `version: 1
tools:
  set_priority:
    risk: low
    approval: confirm
    allowed_roles: [agent_runtime]
approvals:
  confirm:
${plan}manifest:
  set_priority:
    run_as: svc-tickets
    adapter: { type: code }
    args: { type: object, properties: { priority: { enum: [low, urgent] } } }
`;
}

function load(plan: string): LoadedPolicy {
  return parsePolicy([{ file: 'confirm.yaml', text: policyWith(plan) }]);
}

function issueAt(plan: string, path: string): PolicyIssue {
  try {
    load(plan);
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
    const plan = load('    end_user: true\n    expires_after: 10m\n').plans.get('confirm');
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
    assert.deepEqual(load('    end_user: true\n    groups: []\n    expires_after: 10m\n').plans.get('confirm')?.groups, []);
    const withLeads = load('    end_user: true\n    groups: [support_lead]\n    min_approvals: 1\n    expires_after: 10m\n').plans.get('confirm');
    assert.equal(withLeads?.endUser, true);
    assert.deepEqual(withLeads?.groups, ['support_lead']);
  });

  test('without end_user (or with end_user: false) the plan has no endUser key', () => {
    const expected = { name: 'confirm', groups: ['support_lead'], allOf: [], minApprovals: 1, rejectionsToDeny: 1, escalation: [], expiresAfterMs: 600_000 };
    const absent = load('    groups: [support_lead]\n    expires_after: 10m\n').plans.get('confirm');
    assert.deepEqual(absent, expected);
    assert.equal(Object.hasOwn(absent ?? {}, 'endUser'), false);
    const off = load('    end_user: false\n    groups: [support_lead]\n    expires_after: 10m\n').plans.get('confirm');
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
    const decision = decide(load('    end_user: true\n    expires_after: 10m\n'), request);
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
    const plain = decide(load('    groups: [support_lead]\n    expires_after: 10m\n'), request);
    const confirmed = decide(load('    groups: [support_lead]\n    end_user: true\n    expires_after: 10m\n'), request);
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
