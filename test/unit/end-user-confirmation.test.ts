/**
 * The pure parts of end-user confirmation on the API and SDK side: the decision an end user's
 * answer stands for (signed as them, channel end_user, no groups), the agent view's
 * `endUserConfirmation` (only while pending under a plan that accepts the end user), the decision
 * statement both the approval API and the front door sign, and `ToolRequestHandle.confirm`
 * (its route and body, every refusal a GatewayRequestError, and no blind resend).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { confirmationDecision, pendingDetails } from '../../src/api/agents.js';
import { decisionStatement } from '../../src/api/decisions.js';
import { GatewayRequestError, ToolGateway } from '../../src/client/index.js';
import { ConfirmationBodySchema, type ApprovalPlan, type Proposal, type RequestStatus } from '../../src/shared/index.js';

const DIGEST = 'a'.repeat(64);

const plan = (extra: Partial<ApprovalPlan> = {}): ApprovalPlan => ({
  name: 'quick_confirm',
  groups: [],
  allOf: [],
  minApprovals: 1,
  rejectionsToDeny: 1,
  escalation: [],
  expiresAfterMs: 600_000,
  ...extra,
});

function status(state: RequestStatus['state'], approval: ApprovalPlan | null, extra: Partial<Proposal> = {}): RequestStatus {
  const proposal: Proposal = {
    requestId: 'r1',
    workflowId: 'toolreq/acme/r1',
    tenant: 'acme',
    environment: 'production',
    actor: { id: 'support-bot', type: 'agent', roles: ['agent_runtime'] },
    actorChain: [],
    tool: { name: 'set_priority', digest: 'd' },
    args: { priority: 'urgent' },
    policyDigest: 'p',
    decision: { outcome: 'approve', risk: 'low', rule: 'tool:set_priority' },
    approval,
    ...extra,
  };
  return {
    requestId: 'r1',
    workflowId: 'toolreq/acme/r1',
    state,
    tenant: 'acme',
    environment: 'production',
    tool: 'set_priority',
    actor: proposal.actor,
    proposal,
    digest: DIGEST,
    expiresAt: '2030-01-01T00:00:00.000Z',
    tier: 0,
    eligibleGroups: approval?.groups ?? [],
    approvals: [],
    refusals: [],
    refusalsDropped: 0,
    edits: [],
    notifications: [],
  };
}

describe("an end user's answer as a decision", () => {
  const ana = { id: 'customer:ana', tenant: 'acme' };
  test('confirm approves, decline rejects, adjust edits with the new arguments; no groups', () => {
    assert.deepEqual(confirmationDecision(ConfirmationBodySchema.parse({ decision: 'confirm', digest: DIGEST }), ana), {
      decision: 'approve',
      digest: DIGEST,
      approver: { id: 'customer:ana', tenant: 'acme', groups: [] },
      via: 'end_user',
    });
    assert.deepEqual(confirmationDecision(ConfirmationBodySchema.parse({ decision: 'decline', digest: DIGEST, reason: 'not now' }), ana), {
      decision: 'reject',
      digest: DIGEST,
      approver: { id: 'customer:ana', tenant: 'acme', groups: [] },
      via: 'end_user',
      reason: 'not now',
    });
    assert.deepEqual(confirmationDecision(ConfirmationBodySchema.parse({ decision: 'adjust', digest: DIGEST, args: { priority: 'low' } }), ana), {
      decision: 'edit',
      digest: DIGEST,
      approver: { id: 'customer:ana', tenant: 'acme', groups: [] },
      via: 'end_user',
      args: { priority: 'low' },
    });
  });

  test('is signed as the end user, channel end_user, groups empty, bound to the run', () => {
    const input = confirmationDecision(ConfirmationBodySchema.parse({ decision: 'confirm', digest: DIGEST }), ana);
    assert.deepEqual(decisionStatement('r1', 'toolreq/acme/r1', 'run-1', input), {
      sub: 'customer:ana',
      tenant: 'acme',
      groups: [],
      request_id: 'r1',
      workflow_id: 'toolreq/acme/r1',
      run_id: 'run-1',
      digest: DIGEST,
      decision: 'approve',
      channel: 'end_user',
    });
  });
});

describe("the agent view's endUserConfirmation", () => {
  test('is there while pending under a plan with endUser: digest, args, preview, plan', () => {
    const preview = { status: 'ok', result: { diff: '+urgent' }, at: '2030-01-01T00:00:00.000Z' } as unknown as Proposal['preview'];
    const details = pendingDetails(status('pending_approval', plan({ endUser: true }), { preview }));
    assert.deepEqual(details.endUserConfirmation, { digest: DIGEST, args: { priority: 'urgent' }, preview, plan: 'quick_confirm' });
    assert.match(details.message ?? '', /end user's confirmation/);
  });

  test('is absent under a plan without endUser, and when not pending', () => {
    assert.equal(pendingDetails(status('pending_approval', plan({ groups: ['support'] }))).endUserConfirmation, undefined);
    assert.deepEqual(pendingDetails(status('executing', plan({ endUser: true }))), {});
    assert.deepEqual(pendingDetails(status('evaluating', null)), {});
  });
});

describe('ToolRequestHandle.confirm', () => {
  function gatewayAnswering(answers: { status: number; body: unknown }[]) {
    const calls: { url: string; method: string; body: unknown }[] = [];
    const fetch = (async (url: string, init: RequestInit) => {
      calls.push({ url, method: String(init.method), body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined });
      const next = answers.shift() ?? { status: 500, body: {} };
      return new Response(JSON.stringify(next.body), { status: next.status, headers: { 'retry-after': '0' } });
    }) as typeof globalThis.fetch;
    return { gateway: new ToolGateway({ url: 'http://gw.test', token: 't', fetch }), calls };
  }

  test('posts the answer to the confirmation route and returns the agent view', async () => {
    const view = { requestId: 'r 1', state: 'executing', tool: 'set_priority' };
    const { gateway, calls } = gatewayAnswering([{ status: 200, body: view }]);
    const handle = await gateway.get('r 1');
    assert.deepEqual(await handle.confirm({ decision: 'confirm', digest: DIGEST, reason: 'yes' }), view);
    assert.deepEqual(calls, [
      { url: 'http://gw.test/v1/tool-requests/r%201/confirmation', method: 'POST', body: { decision: 'confirm', digest: DIGEST, reason: 'yes' } },
    ]);
  });

  test('every refusal is a GatewayRequestError with status, code and fields', async () => {
    const cases = [
      { status: 409, code: 'digest_mismatch' },
      { status: 403, code: 'no_end_user' },
      { status: 403, code: 'not_eligible' },
      { status: 400, code: 'invalid_body', fields: ['args'] },
      { status: 409, code: 'conflict' },
    ];
    for (const refusal of cases) {
      const { gateway } = gatewayAnswering([{ status: refusal.status, body: { error: { code: refusal.code, message: 'no', fields: refusal.fields } } }]);
      const handle = await gateway.get('r1');
      await assert.rejects(handle.confirm({ decision: 'confirm', digest: DIGEST }), (err: unknown) => {
        assert.ok(err instanceof GatewayRequestError, `${refusal.code}: ${String(err)}`);
        assert.equal(err.status, refusal.status);
        assert.equal(err.code, refusal.code);
        assert.deepEqual(err.fields, refusal.fields);
        return true;
      });
    }
  });

  test('is sent again only after an answer that says it was not taken', async () => {
    const busy = gatewayAnswering([
      { status: 503, body: { error: { code: 'busy', message: 'retry' } } },
      { status: 200, body: { requestId: 'r1', state: 'executing' } },
    ]);
    await (await busy.gateway.get('r1')).confirm({ decision: 'confirm', digest: DIGEST });
    assert.equal(busy.calls.length, 2, 'busy: not taken, sent again');

    // The worker did not answer in time: the decision may still be taken, so it is not resent blindly.
    const slow = gatewayAnswering([
      { status: 503, body: { error: { code: 'worker_unavailable', message: 'retry' } } },
      { status: 200, body: { requestId: 'r1', state: 'executing' } },
    ]);
    await assert.rejects((await slow.gateway.get('r1')).confirm({ decision: 'confirm', digest: DIGEST }), { name: 'GatewayRequestError', status: 503 });
    assert.equal(slow.calls.length, 1);
  });
});
