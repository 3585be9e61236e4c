/**
 * Rollbacks end to end, on a real Temporal server and real HTTP: `POST /v1/approvals/:id/rollback`
 * on a completed request starts the undo tool its manifest names, with arguments derived (CEL)
 * from what the original ran and returned, as a new request linked to it and asked by the person
 * (a human actor, who cannot approve it). Someone else approves; the undo runs once with the
 * derived arguments. Only completed requests of tools with an undo can be rolled back, once.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { before, describe, test } from 'node:test';
import { createApiApp } from '../../src/api/app.js';
import { FrontDoor } from '../../src/api/front-door.js';
import { ApproverTokenVerifier } from '../../src/auth/tokens.js';
import { silentLogger } from '../../src/logger.js';
import { linkAttributeValue, searchAttributes, workflowIdFor, type ToolOutcome, type ToolRequestInput } from '../../src/shared/index.js';
import type { ToolContext } from '../../src/tools/types.js';
import { waitForState, type GatewayEnv } from '../helpers/gateway-env.js';
import { decide, refusal } from '../helpers/http.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { callApi } from '../helpers/processes.js';
import { useGateway } from '../helpers/use-gateway.js';

const POLICY = policy()
  .plan('support_review', { groups: ['support'] })
  .tool('close_ticket', { rules: [{ name: 'locked', when: 'args.ticket_id == "LOCKED"', effect: 'deny', reason: 'locked tickets stay open' }] })
  .tool('reopen_ticket', { risk: 'medium', approval: 'support_review', roles: ['support'] })
  .tool('read_ticket')
  .codeTool('close_ticket', {
    runAs: 'svc-tickets',
    args: argsOf({ ticket_id: 'string' }, { required: ['ticket_id'] }),
    undo: { tool: 'reopen_ticket', args: { ticket_id: 'args.ticket_id', note: '"rolled back " + request_id', closed_at: 'result.closed_at' } },
  })
  .codeTool('reopen_ticket', { runAs: 'svc-tickets', args: argsOf({ ticket_id: 'string', note: 'string', closed_at: 'string' }) })
  .codeTool('read_ticket', { runAs: 'svc-tickets', args: argsOf({ ticket_id: 'string' }) })
  .yaml();

let seq = 0;
const bot = { id: 'support-bot', type: 'agent' as const, roles: ['agent_runtime'] };
function request(tool: string, args: Record<string, unknown>): ToolRequestInput {
  seq += 1;
  return { requestId: `rb-${process.pid}-${Date.now()}-${seq}`, actor: bot, tenant: 'acme', environment: 'production', tool, args };
}

/**
 * An API like the harness's but holding no policy (an API whose policy has not loaded): the
 * harness's API always has one, so the 503 test serves this one on the harness's client and keys.
 */
async function startPolicylessApi(gw: GatewayEnv, taskQueue: string): Promise<{ url: string; close(): Promise<void> }> {
  const app = createApiApp({
    client: gw.ops,
    verifier: await ApproverTokenVerifier.fromPublicKeyPem(gw.approverPublicKeyPem),
    decisions: gw.keys.decisionSigner,
    logger: silentLogger(),
    frontDoor: new FrontDoor(gw.ops, gw.keys.requestSigner, taskQueue),
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('rollbacks', { timeout: 180_000 }, () => {
  const taskQueue = `rollback-${process.pid}`;
  const runs: ToolContext[] = [];
  const runsOf = (requestId: string) => runs.filter((run) => run.requestId === requestId);
  let sam = ''; // support: asks for the rollback
  let lee = ''; // support: approves it

  const rollback = (requestId: string, token: string, body: unknown = { reason: 'closed by mistake' }) =>
    gw.api('POST', `/v1/approvals/${encodeURIComponent(requestId)}/rollback`, { token, body });
  const outcomeOf = async (requestId: string): Promise<ToolOutcome> =>
    (await gw.ops.workflow.getHandle(workflowIdFor('acme', requestId)).result()) as ToolOutcome;
  const completed = async (tool: string, args: Record<string, unknown>) => {
    const handle = await gw.gateway.start(request(tool, args));
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    return { requestId: handle.requestId, outcome };
  };

  const { gw } = useGateway({
    taskQueue,
    policy: POLICY,
    notifier: { notify: async () => {} },
    tools: {
      async close_ticket(context) {
        runs.push(context);
        // A ticket closed without an answer gives the undo nothing to derive closed_at from.
        return context.args.ticket_id === 'T-SILENT' ? null : { closed_at: `2030-01-01T00:00:00Z#${String(context.args.ticket_id)}` };
      },
      async reopen_ticket(context) {
        runs.push(context);
        return { reopened: context.args.ticket_id };
      },
      async read_ticket(context) {
        runs.push(context);
        return { ticket: context.args.ticket_id };
      },
    },
  });

  before(async () => {
    sam = await gw.token({ sub: 'Sam', tenant: 'acme', groups: ['support'] });
    lee = await gw.token({ sub: 'lee', tenant: 'acme', groups: ['support'] });
  });

  test('a completed request is rolled back with the undo tool and derived arguments, approved by someone else, once', async () => {
    const original = await completed('close_ticket', { ticket_id: 'T-1' });
    const asked = await rollback(original.requestId, sam, { reason: 'closed by mistake' });
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    const id = `${original.requestId}.rollback-1`;
    const link = { kind: 'rollback', requestId: original.requestId, tool: 'close_ticket', by: { id: 'sam', groups: ['support'] }, reason: 'closed by mistake' };
    assert.deepEqual(asked.body, { requestId: id, link, state: asked.body.state, statusUrl: `/v1/approvals/${id}` });

    const pending = await waitForState(gw, id, 'pending_approval');
    assert.deepEqual(pending.link, link, 'the link is in its status');
    assert.equal(pending.tool, 'reopen_ticket');
    assert.deepEqual(pending.actor, { id: 'sam', type: 'human', roles: ['support'] }, 'the person is the actor');
    const derived = { ticket_id: 'T-1', note: `rolled back ${original.requestId}`, closed_at: '2030-01-01T00:00:00Z#T-1' };
    assert.deepEqual(pending.proposal?.args, derived);
    const description = await gw.ops.workflow.getHandle(workflowIdFor('acme', id)).describe();
    assert.equal(description.typedSearchAttributes.get(searchAttributes.link), linkAttributeValue('rollback', original.requestId));

    // A second rollback while this one waits: refused, naming it.
    const second = await rollback(original.requestId, lee);
    assert.equal(second.status, 409, JSON.stringify(second.body));
    assert.equal(second.body.error.code, 'already_linked');
    assert.equal(second.body.error.requestId, id);

    // The person who asked cannot approve their own rollback.
    const self = await decide(gw, id, sam, { decision: 'approve', digest: pending.digest ?? '' });
    assert.equal(self.status, 403, JSON.stringify(self.body));
    assert.equal(refusal(self).code, 'self_approval');

    const approved = await decide(gw, id, lee, { decision: 'approve', digest: pending.digest ?? '' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const outcome = await outcomeOf(id);
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    assert.deepEqual(outcome.status === 'completed' && outcome.result, { reopened: 'T-1' });
    assert.equal(runsOf(id).length, 1, 'the undo ran once');
    assert.equal(runsOf(id)[0]?.tool, 'reopen_ticket');
    assert.deepEqual(runsOf(id)[0]?.args, derived);
    assert.equal(runsOf(original.requestId).length, 1, 'the original did not run again');

    // Completed: no second rollback of the same request.
    const again = await rollback(original.requestId, lee);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'already_linked');
    assert.equal(again.body.error.requestId, id);
  });

  test('only completed requests are rolled back: a denied one is 409 not_completed', async () => {
    const handle = await gw.gateway.start(request('close_ticket', { ticket_id: 'LOCKED' }));
    assert.equal((await handle.outcome()).status, 'denied');
    const refused = await rollback(handle.requestId, sam);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'not_completed');
  });

  test('a tool without undo is 409 no_undo; an undo argument that cannot be derived is 422 undo_failed naming it', async () => {
    const read = await completed('read_ticket', { ticket_id: 'T-2' });
    const noUndo = await rollback(read.requestId, sam);
    assert.equal(noUndo.status, 409, JSON.stringify(noUndo.body));
    assert.equal(noUndo.body.error.code, 'no_undo');

    const silent = await completed('close_ticket', { ticket_id: 'T-SILENT' });
    const failed = await rollback(silent.requestId, sam);
    assert.equal(failed.status, 422, JSON.stringify(failed.body));
    assert.equal(failed.body.error.code, 'undo_failed');
    assert.deepEqual(failed.body.error.fields, ['undo.args.closed_at']);
    assert.match(failed.body.error.message, /closed_at/);
    // Nothing started for either.
    for (const requestId of [read.requestId, silent.requestId]) {
      const started = await gw.ops.workflow
        .getHandle(workflowIdFor('acme', `${requestId}.rollback-1`))
        .describe()
        .catch(() => undefined);
      assert.equal(started, undefined);
    }
  });

  test('without a policy the API cannot derive an undo: 503 policy_unavailable', async () => {
    const original = await completed('close_ticket', { ticket_id: 'T-3' });
    const bare = await startPolicylessApi(gw, taskQueue);
    try {
      const refused = await callApi(bare.url, 'POST', `/v1/approvals/${original.requestId}/rollback`, { token: sam, body: { reason: 'x' } });
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'policy_unavailable');
    } finally {
      await bare.close();
    }
  });
});
