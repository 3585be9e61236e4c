/**
 * End-user confirmation end to end, on a real Temporal server and real HTTP: a request waiting
 * under a plan with `end_user: true` shows the agent what to ask its end user
 * (`endUserConfirmation`: digest, arguments, preview, plan), and the agent relays the answer
 * through `POST /v1/tool-requests/:id/confirmation` (SDK: `ToolRequestHandle.confirm`), which the
 * API signs as the end user (the token's first on-behalf-of principal). A confirmation runs the
 * tool and is recorded as `outcome.confirmation`, never as an approval; a decline rejects; an
 * adjustment opens a new proposal that runs with the adjusted arguments. Wrong digests, requests
 * made for nobody and plans that do not accept the end user are refused; approver groups still
 * decide plans that also list them.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { AgentClaims } from '../../src/auth/agent-tokens.js';
import { GatewayRequestError, type ToolGateway, type ToolRequestHandle } from '../../src/client/index.js';
import type { AgentRequestView } from '../../src/shared/index.js';
import type { ToolContext } from '../../src/tools/types.js';
import { waitForState } from '../helpers/gateway-env.js';
import { decide, getJson, postJson, type ApiErrorBody } from '../helpers/http.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { useGateway } from '../helpers/use-gateway.js';

const POLICY = policy()
  .plan('quick_confirm', { endUser: true, minApprovals: 1, expiresAfter: '10m' })
  .plan('confirm_or_support', { endUser: true, groups: ['support'], expiresAfter: '10m' })
  .plan('support_only', { groups: ['support'], expiresAfter: '10m' })
  .tool('set_priority', { approval: 'quick_confirm' })
  .tool('bulk_close', { risk: 'medium', approval: 'quick_confirm' })
  .tool('refund_small', { risk: 'medium', approval: 'confirm_or_support' })
  .tool('escalate', { risk: 'medium', approval: 'support_only' })
  .codeTool('set_priority', { runAs: 'svc-tickets', args: argsOf({ ticket: 'string', priority: { enum: ['low', 'normal', 'urgent'] } }) })
  .codeTool('bulk_close', {
    runAs: 'svc-tickets',
    preview: { adapter: { type: 'code', handler: 'bulk_close' }, timeout: '2s' },
    args: argsOf({ older_than_days: 'integer' }),
  })
  .codeTool('refund_small', { runAs: 'svc-payments', args: argsOf({ amount: 'integer' }) })
  .codeTool('escalate', { runAs: 'svc-tickets', args: argsOf({ ticket: 'string' }) })
  .yaml();

let seq = 0;
const nextId = () => `eu-${process.pid}-${Date.now()}-${++seq}`;

describe('end-user confirmation', { timeout: 180_000 }, () => {
  const taskQueue = `end-user-${process.pid}`;
  const runs: ToolContext[] = [];
  const runsOf = (requestId: string) => runs.filter((run) => run.requestId === requestId && !run.preview);
  /** The support agent acting for the end user Ana (spelled as her identity provider does). */
  let forAna: ToolGateway;
  /** The same agent acting for nobody. */
  let forNobody: ToolGateway;
  let support = '';

  /** The SDK of an agent of acme's production runtime, acting for `onBehalfOf` (or for nobody). */
  const agent = (id: string, onBehalfOf?: AgentClaims['onBehalfOf']): Promise<ToolGateway> =>
    gw.gateway.as({ id, roles: ['agent_runtime'], tenant: 'acme', environment: 'production', ...(onBehalfOf ? { onBehalfOf } : {}) });

  /** Starts a request as `agent` and waits until it waits for a decision; the view the agent then reads. */
  const pendingAs = async (agent: ToolGateway, tool: string, args: Record<string, unknown>): Promise<{ handle: ToolRequestHandle; view: AgentRequestView }> => {
    const handle = await agent.start({ requestId: nextId(), tool, args });
    await waitForState(gw, handle.requestId, 'pending_approval');
    return { handle, view: await handle.status() };
  };
  const refusal = async (promise: Promise<unknown>): Promise<GatewayRequestError> => {
    try {
      await promise;
    } catch (err) {
      assert.ok(err instanceof GatewayRequestError, String(err));
      return err;
    }
    assert.fail('expected a refusal');
  };
  const tool = async (context: ToolContext) => {
    runs.push(context);
    if (context.preview) return { would_close: 12 };
    return { done: context.tool, args: context.args };
  };
  const { gw } = useGateway({
    taskQueue,
    policy: POLICY,
    notifier: { notify: async () => {} },
    tools: { set_priority: tool, bulk_close: tool, refund_small: tool, escalate: tool },
  });

  before(async () => {
    forAna = await agent('support-bot', [{ type: 'human', id: 'Ana' }]);
    forNobody = await agent('support-bot');
    support = await gw.token({ sub: 'sue', tenant: 'acme', groups: ['support'] });
  });

  test('the agent view carries what to confirm; a confirmation runs the tool and is no approval', async () => {
    const { handle, view } = await pendingAs(forAna, 'set_priority', { ticket: 'T-1', priority: 'urgent' });
    const status = await gw.status(handle.requestId);
    assert.equal(view.state, 'pending_approval');
    assert.deepEqual(view.endUserConfirmation, { digest: status.digest, args: { ticket: 'T-1', priority: 'urgent' }, plan: 'quick_confirm' });

    // A digest the end user was not shown is refused, and nothing runs.
    const stale = await refusal(handle.confirm({ decision: 'confirm', digest: 'f'.repeat(64) }));
    assert.equal(stale.status, 409);
    assert.equal(stale.code, 'digest_mismatch');
    assert.equal(runsOf(handle.requestId).length, 0);

    const answered = await handle.confirm({ decision: 'confirm', digest: view.endUserConfirmation?.digest ?? '', reason: 'yes, urgent' });
    assert.equal(answered.requestId, handle.requestId);
    assert.ok(['executing', 'completed'].includes(answered.state), answered.state);
    assert.equal(answered.endUserConfirmation, undefined, 'no longer waiting for the end user');
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    assert.equal(runsOf(handle.requestId).length, 1, 'the tool ran once');
    assert.equal(outcome.confirmation?.principal, 'ana', "the end user's canonical id");
    assert.equal(outcome.confirmation?.decision, 'approve');
    assert.equal(outcome.confirmation?.digest, status.digest);
    assert.deepEqual(outcome.approvals, [], 'a confirmation is never an approval');

    // Answered: a second answer finds nothing waiting.
    const late = await refusal(handle.confirm({ decision: 'confirm', digest: status.digest as string }));
    assert.equal(late.status, 409);
    assert.equal(late.code, 'not_pending');
  });

  test('a decline rejects the request', async () => {
    const { handle, view } = await pendingAs(forAna, 'set_priority', { ticket: 'T-2', priority: 'low' });
    const answered = await handle.confirm({ decision: 'decline', digest: view.endUserConfirmation?.digest ?? '', reason: 'not now' });
    assert.equal(answered.state, 'rejected');
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'rejected', JSON.stringify(outcome));
    assert.equal(outcome.status === 'rejected' && outcome.rejectedBy, 'ana');
    assert.equal(runsOf(handle.requestId).length, 0);
  });

  test('an adjustment gets a new digest and runs with the adjusted arguments', async () => {
    const { handle, view } = await pendingAs(forAna, 'set_priority', { ticket: 'T-3', priority: 'urgent' });
    const first = view.endUserConfirmation?.digest as string;
    await handle.confirm({ decision: 'adjust', digest: first, args: { ticket: 'T-3', priority: 'normal' }, reason: 'normal is enough' });
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    assert.notEqual(outcome.digest, first, 'the adjusted call is a new proposal');
    assert.equal(runsOf(handle.requestId).length, 1);
    assert.deepEqual(runsOf(handle.requestId)[0]?.args, { ticket: 'T-3', priority: 'normal' });
    assert.equal(outcome.confirmation?.principal, 'ana');
    assert.equal(outcome.confirmation?.digest, outcome.digest, 'confirmed: the adjusted proposal');
    assert.deepEqual(outcome.approvals, []);
  });

  test('a preview is part of what the end user is shown', async () => {
    const { handle, view } = await pendingAs(forAna, 'bulk_close', { older_than_days: 30 });
    assert.equal(view.endUserConfirmation?.plan, 'quick_confirm');
    assert.equal(view.endUserConfirmation?.preview?.status, 'ok', JSON.stringify(view.endUserConfirmation));
    assert.match(JSON.stringify(view.endUserConfirmation?.preview), /would_close/);
    await handle.confirm({ decision: 'confirm', digest: view.endUserConfirmation?.digest ?? '' });
    assert.equal((await handle.outcome()).status, 'completed');
  });

  test('a request made for nobody has no end user: 403 no_end_user', async () => {
    const { handle, view } = await pendingAs(forNobody, 'set_priority', { ticket: 'T-4', priority: 'low' });
    const status = await gw.status(handle.requestId);
    assert.equal(view.endUserConfirmation?.digest, status.digest, 'the plan accepts an end user; this request has none');
    const refused = await refusal(handle.confirm({ decision: 'confirm', digest: status.digest as string }));
    assert.equal(refused.status, 403);
    assert.equal(refused.code, 'no_end_user');
    assert.equal((await gw.status(handle.requestId)).state, 'pending_approval');
  });

  test('a plan without end_user does not accept the end user: 403 not_eligible, and the view offers nothing', async () => {
    const { handle, view } = await pendingAs(forAna, 'escalate', { ticket: 'T-5' });
    assert.equal(view.endUserConfirmation, undefined);
    const status = await gw.status(handle.requestId);
    const refused = await refusal(handle.confirm({ decision: 'confirm', digest: status.digest as string }));
    assert.equal(refused.status, 403);
    assert.equal(refused.code, 'not_eligible');
    assert.equal(runsOf(handle.requestId).length, 0);
  });

  test('an approver group still decides a plan that also accepts the end user', async () => {
    const { handle, view } = await pendingAs(forAna, 'refund_small', { amount: 20 });
    assert.ok(view.endUserConfirmation, 'the end user may confirm');
    assert.deepEqual(view.eligibleGroups, ['support']);
    const voted = await decide(gw, handle.requestId, support, { decision: 'approve', digest: view.endUserConfirmation?.digest ?? '' });
    assert.equal(voted.status, 200, JSON.stringify(voted.body));
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    assert.deepEqual(
      outcome.approvals.map((vote) => vote.approverId),
      ['sue'],
    );
    assert.equal(outcome.confirmation, undefined);
  });

  test('the body is checked field by field; only the agent that made the request may answer', async () => {
    const { handle, view } = await pendingAs(forAna, 'set_priority', { ticket: 'T-6', priority: 'low' });
    const token = await gw.agentToken({
      sub: 'support-bot',
      tenant: 'acme',
      environment: 'production',
      roles: ['agent_runtime'],
      onBehalfOf: [{ type: 'human', id: 'ana' }],
    });
    const path = `/v1/tool-requests/${handle.requestId}/confirmation`;
    const bad = await postJson<ApiErrorBody>(gw, path, { decision: 'approve', digest: 'nope' }, { token });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_body');
    assert.deepEqual(bad.body.error.fields?.sort(), ['decision', 'digest']);
    const noArgs = await postJson<ApiErrorBody>(gw, path, { decision: 'adjust', digest: view.endUserConfirmation?.digest }, { token });
    assert.equal(noArgs.status, 400);
    assert.deepEqual(noArgs.body.error.fields, ['args']);

    // Another agent (or the same agent acting for someone else) does not see the request at all.
    const stranger = await agent('other-bot', [{ type: 'human', id: 'ana' }]);
    const notFound = await refusal((await stranger.get(handle.requestId)).confirm({ decision: 'confirm', digest: view.endUserConfirmation?.digest ?? '' }));
    assert.equal(notFound.status, 404);
    const forBob = await agent('support-bot', [{ type: 'human', id: 'bob' }]);
    const notHis = await refusal((await forBob.get(handle.requestId)).confirm({ decision: 'confirm', digest: view.endUserConfirmation?.digest ?? '' }));
    assert.equal(notHis.status, 404);
    assert.equal((await gw.status(handle.requestId)).state, 'pending_approval');
    assert.equal(runsOf(handle.requestId).length, 0);

    // The agent view through GET carries it too (the POST answers above did not change anything).
    const read = await getJson<AgentRequestView>(gw, `/v1/tool-requests/${handle.requestId}`, { token });
    assert.equal(read.status, 200);
    assert.ok(read.body.endUserConfirmation, JSON.stringify(read.body));
    assert.equal(read.body.endUserConfirmation.digest, view.endUserConfirmation?.digest);
    assert.deepEqual((await gw.status(handle.requestId)).confirmations ?? [], [], 'no answer was recorded');
  });
});
