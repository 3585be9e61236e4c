/**
 * What runs is what was approved, and the outcome says what happened: a manifest changed between
 * approval and execution runs nothing (`manifest_changed`, both digests named); a tool that acted
 * but whose result may not leave completes with its result withheld; a non-idempotent tool that
 * certainly received nothing is tried again, and one that stays unreachable fails as "did not
 * act"; a code handler gets an AbortSignal and a deadline; a trace id no header can carry is
 * refused at the front door. Real Temporal server, real worker, requests through the front door.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ToolExecutionFailed, ToolResultWithheld } from '../../src/client/index.js';
import { PolicyStore } from '../../src/policy/store.js';
import { EXECUTION_BOUNDS, type ToolRequestInput } from '../../src/shared/index.js';
import { ToolNotReachedError, type ToolContext } from '../../src/tools/types.js';
import { waitForState } from '../helpers/gateway-env.js';
import { decide, postJson, type ApiErrorBody } from '../helpers/http.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { useGateway } from '../helpers/use-gateway.js';

/** The policy of this test; `runAs` of `refund` is what the "redeploy" changes. */
const policyFor = (refundRunAs: string) =>
  policy()
    .plan('manager', { groups: ['manager'] })
    .tool('refund', { risk: 'high', approval: 'manager' })
    .tool('lookup')
    .tool('charge', { risk: 'medium' })
    .tool('charge_down', { risk: 'medium' })
    .tool('probe')
    .codeTool('refund', { runAs: refundRunAs, idempotent: true, args: argsOf({ amount: 'integer' }) })
    .codeTool('lookup', { runAs: 'svc-lookup', idempotent: true, args: argsOf({ q: 'string' }) })
    .codeTool('charge', { runAs: 'svc-payments', args: argsOf({ amount: 'integer' }) })
    .codeTool('charge_down', { runAs: 'svc-payments', args: argsOf({ amount: 'integer' }) })
    .codeTool('probe', { runAs: 'svc-probe', idempotent: true })
    .yaml();

let seq = 0;
const request = (tool: string, args: Record<string, unknown>, extra: Partial<ToolRequestInput> = {}): ToolRequestInput => ({
  requestId: `exec-${process.pid}-${Date.now()}-${++seq}`,
  actor: { id: 'bot', type: 'agent', roles: ['agent_runtime'] },
  tenant: 'acme',
  environment: 'production',
  tool,
  args,
  ...extra,
});

describe('execution: what was approved, and honest outcomes', { timeout: 180_000 }, () => {
  let dir: string;
  let store: PolicyStore;
  const calls: Record<string, number> = {};
  const contexts: ToolContext[] = [];
  let chargeFailuresLeft = 0;
  const count = (tool: string) => (calls[tool] = (calls[tool] ?? 0) + 1);

  const { gw } = useGateway(async ({ defer }) => {
    dir = await mkdtemp(join(tmpdir(), 'toolgate-exec-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'policy.yaml'), policyFor('svc-payments'));
    store = new PolicyStore();
    const loaded = await store.load([join(dir, 'policy.yaml')]);
    assert.equal(loaded.error, undefined);
    return {
      taskQueue: `exec-${process.pid}`,
      policy: '',
      policyStore: store,
      tools: {
        async refund() {
          count('refund');
          return { refunded: true };
        },
        async lookup() {
          count('lookup');
          // Another tenant's record: the tool acted (it ran), but this may not go back to acme's agent.
          return {
            rows: [
              { id: 1, tenant: 'acme' },
              { id: 2, tenant: 'globex' },
            ],
          };
        },
        async charge() {
          count('charge');
          if (chargeFailuresLeft > 0) {
            chargeFailuresLeft -= 1;
            throw new ToolNotReachedError('payments: connection refused');
          }
          return { charged: true };
        },
        async charge_down() {
          count('charge_down');
          throw new ToolNotReachedError('payments: connection refused');
        },
        async probe(context) {
          contexts.push(context);
          return { aborted: context.signal.aborted, deadline: context.deadline.toISOString() };
        },
      },
    };
  });

  test('a manifest changed between approval and execution: nothing runs, the outcome names both digests', async () => {
    const handle = await gw.gateway.start(request('refund', { amount: 30 }));
    const status = await waitForState(gw, handle.requestId, 'pending_approval');
    const approvedDigest = store.current().policy?.manifest('refund')?.digest;
    assert.ok(approvedDigest);

    // A redeploy re-points the tool to another identity while the request waits.
    await writeFile(join(dir, 'policy.yaml'), policyFor('svc-payments-v2'));
    const reloaded = await store.load([join(dir, 'policy.yaml')]);
    assert.equal(reloaded.error, undefined);
    const inForce = reloaded.policy?.manifest('refund')?.digest;
    assert.ok(inForce && inForce !== approvedDigest, 'the change alters the manifest digest');

    const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
    const decided = await decide(gw, handle.requestId, token, { decision: 'approve', digest: status.digest ?? '' });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'denied', JSON.stringify(outcome));
    assert.equal(outcome.status === 'denied' && outcome.code, 'manifest_changed');
    const reason = outcome.status === 'denied' ? outcome.reasons.join(' ') : '';
    assert.ok(reason.includes(approvedDigest) && reason.includes(inForce), reason);
    assert.match(reason, /nothing was executed/);
    assert.equal(calls.refund, undefined, 'the tool never ran');

    // Under the manifest in force, a new request runs.
    const again = await gw.gateway.start(request('refund', { amount: 30 }));
    const pending = await waitForState(gw, again.requestId, 'pending_approval');
    await decide(gw, again.requestId, token, { decision: 'approve', digest: pending.digest ?? '' });
    const done = await again.outcome();
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.equal(done.status === 'completed' && done.execution.runAs, 'svc-payments-v2');
    assert.equal(calls.refund, 1);
  });

  test('a tool that acted but whose result may not leave: completed, result withheld with the reason', async () => {
    const handle = await gw.gateway.start(request('lookup', { q: 'x' }));
    const outcome = await handle.outcome();
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    if (outcome.status !== 'completed') return;
    assert.equal(outcome.result, null);
    assert.equal(outcome.withheld?.code, 'tenant_mismatch');
    assert.match(outcome.withheld?.reason ?? '', /globex/);
    assert.ok(!JSON.stringify(outcome).includes('"id":2'), 'the foreign record is not in the outcome');
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof ToolResultWithheld);
      const forModel = err.toToolResult();
      assert.equal(forModel.status, 'result_withheld');
      assert.match(forModel.message, /acted/);
      return true;
    });
    assert.equal(calls.lookup, 1);
  });

  test('a non-idempotent tool that certainly received nothing is tried again, not reported as outcome unknown', async () => {
    chargeFailuresLeft = 2;
    const outcome = await (await gw.gateway.start(request('charge', { amount: 5 }))).outcome();
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    assert.equal(calls.charge, 3, 'two refused connections, then the call');
    assert.equal(outcome.status === 'completed' && outcome.execution.attempts, 1, 'all inside the first activity attempt');

    const down = await gw.gateway.start(request('charge_down', { amount: 5 }));
    const failed = await down.outcome();
    assert.equal(failed.status, 'failed', JSON.stringify(failed));
    assert.equal(failed.status === 'failed' && failed.error.type, 'ToolUnreachable');
    assert.match(failed.status === 'failed' ? failed.error.message : '', /nothing was sent: the tool did not act/);
    assert.equal(calls.charge_down, EXECUTION_BOUNDS.notReachedTries);
    await assert.rejects(down.result(), (err: unknown) => err instanceof ToolExecutionFailed && /did not act/.test(err.toToolResult().message));
  });

  test('a code handler gets an AbortSignal and a deadline within the adapter bound', async () => {
    const before = Date.now();
    const result = (await gw.gateway.call(request('probe', {}))) as { aborted: boolean; deadline: string };
    assert.equal(result.aborted, false);
    const context = contexts.at(-1);
    assert.ok(context?.signal instanceof AbortSignal);
    const deadline = Date.parse(result.deadline);
    assert.ok(deadline > before && deadline <= Date.now() + EXECUTION_BOUNDS.maxToolTimeoutMs, result.deadline);
  });

  test('a trace id that no HTTP header can carry is refused at the front door, naming the field', async () => {
    const agent = await gw.agentToken({ sub: 'bot', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] });
    for (const traceId of ['abc\r\nx-injected: 1', 'tab\there', 'space here', '']) {
      const { status, body } = await postJson<ApiErrorBody>(gw, '/v1/tool-requests', { tool: 'probe', args: {}, traceId }, { token: agent });
      assert.equal(status, 400, JSON.stringify(body));
      assert.match(JSON.stringify(body), /traceId/);
    }
  });
});
