/**
 * Break-glass overrides end to end, on a real Temporal server and real HTTP: a request policy
 * denied is overridden through `POST /v1/approvals/:id/override` — a new request linked to the
 * denied one (whose history stays closed), started with the front door's signature. Someone
 * outside the break-glass groups is refused by the workflow (override_refused); a member opens a
 * round that they cannot approve themselves, a second member approves, the tool runs once, the
 * outcome carries the grant, the request carries `ToolgateLink`, and the rule's notify groups are
 * told. One override at a time per original; only denials can be overridden; an unanswered round expires.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { buildAuditRecord } from '../../src/audit/record.js';
import type { ApprovalNotification, Notifier } from '../../src/notify/notifier.js';
import { linkAttributeValue, searchAttributes, workflowIdFor, type ToolOutcome, type ToolRequestInput } from '../../src/shared/index.js';
import type { ToolContext } from '../../src/tools/types.js';
import { eventually, waitForState } from '../helpers/gateway-env.js';
import { decide, getJson, refusal, type ApprovalAnswer } from '../helpers/http.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { useGateway } from '../helpers/use-gateway.js';

const SERVICE_ARGS = argsOf({ service: 'string' });
const POLICY = policy()
  .plan('release', { groups: ['release_managers'] })
  .tool('deploy_service', {
    risk: 'high',
    approval: 'release',
    roles: ['deployer'],
    rules: [{ name: 'change_freeze', when: 'has(args.frozen) && args.frozen == true', effect: 'deny', risk: 'critical', reason: 'deploys are frozen' }],
  })
  .tool('restart_service', {
    risk: 'high',
    approval: 'release',
    roles: ['deployer'],
    rules: [{ name: 'no_restarts', when: 'true', effect: 'deny', reason: 'restarts are manual this week' }],
  })
  .tool('read_logs', { roles: ['deployer'] })
  .breakGlass('change_freeze', { tools: ['deploy_service'], groups: ['sre-oncall'], notify: ['security'], expiresAfter: '15m' })
  // The shortest window the product allows (BREAK_GLASS_BOUNDS): the expiry test waits it out.
  .breakGlass('quick_window', { tools: ['restart_service'], groups: ['sre-oncall'], notify: ['security'], expiresAfter: '1m' })
  .codeTool('deploy_service', { runAs: 'svc-deployer', args: argsOf({ service: 'string', frozen: 'boolean' }, { required: ['service'] }) })
  .codeTool('restart_service', { runAs: 'svc-deployer', args: SERVICE_ARGS })
  .codeTool('read_logs', { runAs: 'svc-logs', args: SERVICE_ARGS })
  .yaml();

let seq = 0;
const bot = { id: 'deploy-bot', type: 'agent' as const, roles: ['deployer'] };
function request(tool: string, args: Record<string, unknown>): ToolRequestInput {
  seq += 1;
  return { requestId: `bg-${process.pid}-${Date.now()}-${seq}`, actor: bot, tenant: 'acme', environment: 'prod', tool, args };
}

describe('break-glass overrides', { timeout: 300_000 }, () => {
  const taskQueue = `break-glass-${process.pid}`;
  const runs: ToolContext[] = [];
  const notes: ApprovalNotification[] = [];
  const notifier: Notifier = {
    notify: async (notification) => {
      notes.push(notification);
    },
  };
  const runsOf = (requestId: string) => runs.filter((run) => run.requestId === requestId);
  let sam = ''; // sre-oncall: asks for overrides
  let lee = ''; // sre-oncall: the second person
  let dev = ''; // not in any break-glass group
  let other = ''; // another tenant's sre-oncall
  /** The request that ends expired: started first, checked last (its rule allows one minute). */
  let expiring: Promise<string> | undefined;

  const denied = async (tool: string, args: Record<string, unknown>): Promise<string> => {
    const handle = await gw.gateway.start(request(tool, args));
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'denied', JSON.stringify(outcome));
    return handle.requestId;
  };
  const override = (requestId: string, token: string, body: unknown = { reason: 'prod is down; the fix must ship' }) =>
    gw.api('POST', `/v1/approvals/${encodeURIComponent(requestId)}/override`, { token, body });
  const outcomeOf = async (requestId: string): Promise<ToolOutcome> =>
    (await gw.ops.workflow.getHandle(workflowIdFor('acme', requestId)).result()) as ToolOutcome;

  const tool = async (context: ToolContext) => {
    runs.push(context);
    return { done: context.tool, service: context.args.service };
  };
  const { gw } = useGateway({
    taskQueue,
    policy: POLICY,
    notifier,
    tools: { deploy_service: tool, restart_service: tool, read_logs: tool },
  });

  before(async () => {
    sam = await gw.token({ sub: 'sam', tenant: 'acme', groups: ['sre-oncall'] });
    lee = await gw.token({ sub: 'lee', tenant: 'acme', groups: ['sre-oncall'] });
    dev = await gw.token({ sub: 'dana', tenant: 'acme', groups: ['developers'] });
    other = await gw.token({ sub: 'omar', tenant: 'globex', groups: ['sre-oncall'] });
    // Started now so that its one-minute window runs out while the other tests run.
    expiring = (async () => {
      const original = await denied('restart_service', { service: 'web' });
      const asked = await override(original, sam);
      assert.equal(asked.status, 202, JSON.stringify(asked.body));
      await waitForState(gw, asked.body.requestId, 'pending_approval');
      return asked.body.requestId as string;
    })();
    expiring.catch(() => undefined);
  });

  test('a denied request is overridden by one member of the break-glass groups and approved by a second', async () => {
    const original = await denied('deploy_service', { service: 'web', frozen: true });
    const originalEvents = (await gw.ops.workflow.getHandle(workflowIdFor('acme', original)).fetchHistory()).events?.length;

    // Someone outside the rule's groups may ask, and the workflow refuses it: nothing runs.
    const refused = await override(original, dev);
    assert.equal(refused.status, 202, JSON.stringify(refused.body));
    assert.equal(refused.body.requestId, `${original}.override-1`);
    const refusedOutcome = await outcomeOf(refused.body.requestId);
    assert.equal(refusedOutcome.status, 'denied');
    assert.equal(refusedOutcome.status === 'denied' && refusedOutcome.code, 'override_refused');
    assert.equal(runsOf(refused.body.requestId).length, 0);

    // A member asks: the refused one does not count against them; the id says it is the second.
    const asked = await override(original, sam, { reason: 'prod is down; the fix must ship' });
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    const id = `${original}.override-2`;
    assert.deepEqual(asked.body, {
      requestId: id,
      link: {
        kind: 'override',
        requestId: original,
        tool: 'deploy_service',
        by: { id: 'sam', groups: ['sre-oncall'] },
        reason: 'prod is down; the fix must ship',
      },
      state: asked.body.state,
      statusUrl: `/v1/approvals/${id}`,
    });
    assert.ok(['evaluating', 'pending_approval'].includes(asked.body.state), asked.body.state);

    const pending = await waitForState(gw, id, 'pending_approval');
    assert.deepEqual(pending.link, asked.body.link);
    assert.deepEqual(pending.eligibleGroups, ['sre-oncall']);
    assert.equal(pending.decision?.rule, 'break_glass:change_freeze');
    assert.deepEqual(pending.actor, bot, "the override is the original agent's call");
    assert.deepEqual(pending.proposal?.args, { service: 'web', frozen: true });

    // The approval API's view of it is where statusUrl points.
    const view = await getJson<ApprovalAnswer>(gw, asked.body.statusUrl, { token: lee });
    assert.equal(view.status, 200, JSON.stringify(view.body));
    assert.equal(view.body.requestId, id);

    // The linked request is signed by the front door like any other.
    assert.equal((await buildAuditRecord(gw.ops, 'acme', id)).admission.verified, true);

    // One override at a time: a second one while this one waits is refused, naming it.
    const second = await override(original, lee);
    assert.equal(second.status, 409, JSON.stringify(second.body));
    assert.equal(second.body.error.code, 'already_linked');
    assert.equal(second.body.error.requestId, id);

    // The person who asked is not the second person.
    const self = await decide(gw, id, sam, { decision: 'approve', digest: pending.digest ?? '' });
    assert.equal(self.status, 403, JSON.stringify(self.body));
    assert.equal(refusal(self).code, 'self_approval');
    assert.equal(runsOf(id).length, 0);

    const approved = await decide(gw, id, lee, { decision: 'approve', digest: pending.digest ?? '' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const outcome = await outcomeOf(id);
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    assert.equal(runsOf(id).length, 1, 'the tool ran once');
    assert.deepEqual(runsOf(id)[0]?.args, { service: 'web', frozen: true });
    assert.equal(outcome.override?.breakGlass, 'change_freeze');
    assert.equal(outcome.override?.by, 'sam');
    assert.equal(outcome.override?.deniedRule, (await outcomeOf(original)).rule, "the grant names the original's denying rule");
    assert.equal(outcome.override?.deniedCode, 'rule_denied');
    assert.deepEqual(outcome.override?.notify, ['security']);
    assert.equal(outcome.override?.reason, 'prod is down; the fix must ship');
    assert.deepEqual(
      outcome.approvals.map((vote) => vote.approverId),
      ['lee'],
    );

    const description = await gw.ops.workflow.getHandle(workflowIdFor('acme', id)).describe();
    assert.equal(description.typedSearchAttributes.get(searchAttributes.link), linkAttributeValue('override', original));

    // Security heard of it when the round opened, and of how it ended.
    const told = await eventually(async () => {
      const security = notes.filter((note) => note.requestId === id && note.groups.includes('security'));
      return security.some((note) => note.kind === 'outcome') ? security : undefined;
    }, 'security to hear of the override and its outcome');
    assert.ok(
      told.some((note) => note.kind !== 'outcome'),
      `notified when the round opened: ${JSON.stringify(told.map((n) => n.kind))}`,
    );

    // Completed: no further override of the same denial; the original's history never changed.
    const again = await override(original, lee);
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'already_linked');
    assert.equal(again.body.error.requestId, id);
    assert.equal((await gw.ops.workflow.getHandle(workflowIdFor('acme', original)).fetchHistory()).events?.length, originalEvents);
    assert.equal(runsOf(original).length, 0);
  });

  test('only a denial can be overridden: a completed request is 409 not_denied', async () => {
    const handle = await gw.gateway.start(request('read_logs', { service: 'web' }));
    assert.equal((await handle.outcome()).status, 'completed');
    const refused = await override(handle.requestId, sam);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'not_denied');
    assert.equal(runsOf(`${handle.requestId}.override-1`).length, 0);
  });

  test('the body needs a reason; the route needs a token; another tenant does not see the request', async () => {
    const original = await denied('deploy_service', { service: 'api', frozen: true });
    const noReason = await override(original, sam, {});
    assert.equal(noReason.status, 400);
    assert.equal(noReason.body.error.code, 'invalid_body');
    assert.deepEqual(noReason.body.error.fields, ['reason']);
    const tooLong = await override(original, sam, { reason: 'x'.repeat(2001) });
    assert.equal(tooLong.status, 400);
    assert.deepEqual(tooLong.body.error.fields, ['reason']);
    const anonymous = await gw.api('POST', `/v1/approvals/${original}/override`, { body: { reason: 'x' } });
    assert.equal(anonymous.status, 401);
    const elsewhere = await override(original, other);
    assert.equal(elsewhere.status, 404, JSON.stringify(elsewhere.body));
    assert.equal(elsewhere.body.error.code, 'not_found');
    const missing = await override(`${original}-nope`, sam);
    assert.equal(missing.status, 404);
    // Nothing was started by any of these.
    const linked = await gw.ops.workflow
      .getHandle(workflowIdFor('acme', `${original}.override-1`))
      .describe()
      .catch(() => undefined);
    assert.equal(linked, undefined);
  });

  test("the original's agent does not read the override through the front door", async () => {
    const original = await denied('deploy_service', { service: 'db', frozen: true });
    const asked = await override(original, sam);
    assert.equal(asked.status, 202);
    const agent = await gw.gateway.as({ id: bot.id, roles: bot.roles, tenant: 'acme', environment: 'prod' });
    await assert.rejects((await agent.get(asked.body.requestId)).status(), { name: 'GatewayRequestError', status: 404 });
  });

  test('an override nobody approves expires', async () => {
    const id = await (expiring as Promise<string>);
    const outcome = await eventually(
      async () => {
        const status = await gw.status(id);
        return status.outcome;
      },
      'the one-minute break-glass window to run out',
      120_000,
    );
    assert.equal(outcome.status, 'expired', JSON.stringify(outcome));
    assert.equal(runsOf(id).length, 0);
    assert.ok(notes.some((note) => note.requestId === id && note.kind === 'outcome' && note.groups.includes('security')));
  });
});
