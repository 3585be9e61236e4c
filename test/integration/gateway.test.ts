/**
 * The gateway end to end on a real Temporal dev server: allow, deny, approval (approved, rejected,
 * escalated, expired), exactly-once execution, and the approval API's contract.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createApiApp } from '../../src/api/app.js';
import { ApproverTokenVerifier } from '../../src/auth/tokens.js';
import type { DecisionSigner } from '../../src/trust/signers.js';
import {
  ApprovalExpired,
  ApprovalRejected,
  InvalidToolRequest,
  RequestConflict,
  ToolDenied,
  ToolExecutionFailed,
  type ToolOutcome,
} from '../../src/client/index.js';
import type { ToolRequestInput } from '../../src/shared/index.js';
import { eventually, startGateway, startTemporal, type GatewayEnv, waitForState } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';
import { startToolService, startWebhookReceiver, type ToolService } from '../helpers/tool-service.js';

/** The gateway's tools; the HTTP ones call the loopback test services (httpTool allows private egress). */
function policyYaml(ticketsUrl: string, flakyUrl: string, fragileUrl: string): string {
  const valueArgs = () => argsOf({ value: 'string' });
  return policy()
    .plan('manager', { groups: ['manager'] })
    .plan('security_and_owner', { allOf: ['security', 'db_owner'] })
    .plan('escalating', { groups: ['manager'], escalation: [{ after: '1s', groups: ['director'] }] })
    .plan('quick_expiry', { groups: ['manager'], expiresAfter: '2s' })
    .tool('read_kb')
    .tool('create_ticket', { risk: 'medium', approval: 'manager' })
    .tool('prod_db_write', { risk: 'critical', approval: 'security_and_owner', roles: [], environments: ['staging'] })
    .tool('flaky_write')
    .tool('fragile_write')
    .tool('escalating_write', { risk: 'high', approval: 'escalating' })
    .tool('expiring_write', { risk: 'high', approval: 'quick_expiry' })
    .tool('shell', {
      risk: 'high',
      approval: 'manager',
      environments: ['production', 'staging'],
      rules: [
        {
          name: 'destructive-delete',
          when: 'args.command.matches("rm\\\\s+-(rf|fr)")',
          effect: 'deny',
          reason: 'recursive forced deletion is never allowed',
        },
        { name: 'listing', when: 'args.command == "ls"', effect: 'allow', risk: 'low' },
      ],
    })
    .codeTool('read_kb', { runAs: 'svc-kb-reader', args: argsOf({ query: { type: 'string', minLength: 1 } }, { required: ['query'] }) })
    .httpTool('create_ticket', `${ticketsUrl}/tickets`, {
      runAs: 'svc-ticketing',
      args: argsOf({ title: { type: 'string', minLength: 1 }, priority: { enum: ['low', 'normal', 'urgent'] } }, { required: ['title', 'priority'] }),
    })
    .httpTool('prod_db_write', `${ticketsUrl}/db`, { runAs: 'svc-db-writer', args: argsOf({ statement: 'string' }) })
    .httpTool('flaky_write', `${flakyUrl}/write`, {
      runAs: 'svc-flaky',
      // The flaky service keeps one effect per Idempotency-Key, so retrying it is safe.
      idempotent: true,
      args: valueArgs(),
    })
    .httpTool('fragile_write', `${fragileUrl}/write`, { runAs: 'svc-fragile', idempotent: false, timeout: '2s', args: valueArgs() })
    .httpTool('escalating_write', `${ticketsUrl}/escalating`, { runAs: 'svc-escalating', args: valueArgs() })
    .httpTool('expiring_write', `${ticketsUrl}/expiring`, { runAs: 'svc-expiring', args: valueArgs() })
    .codeTool('shell', { runAs: 'svc-shell', args: argsOf({ command: 'string' }, { required: ['command'] }) })
    .yaml();
}

let seq = 0;
const agent = { id: 'triage-bot', type: 'agent' as const, roles: ['agent_runtime'] };
function request(tool: string, args: Record<string, unknown>, extra: Partial<ToolRequestInput> = {}): ToolRequestInput {
  seq += 1;
  return { requestId: `it-${process.pid}-${Date.now()}-${seq}`, actor: agent, tenant: 'acme', environment: 'production', tool, args, ...extra };
}

describe('toolgate gateway on a real Temporal server', { timeout: 180_000 }, () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let tickets: ToolService;
  let flaky: ToolService;
  let fragile: ToolService;
  let hooks: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const kbCalls: string[] = [];

  before(async () => {
    env = await startTemporal();
    tickets = await startToolService('ok');
    flaky = await startToolService('fail-after-act');
    fragile = await startToolService('drop-after-act');
    hooks = await startWebhookReceiver();
    gw = await startGateway(env, {
      taskQueue: `gateway-${process.pid}`,
      policy: policyYaml(tickets.url, flaky.url, fragile.url),
      webhooks: [hooks.url],
      tools: {
        async read_kb({ args, runAs }) {
          kbCalls.push(String(args.query));
          return { articles: [{ id: 'KB-1', title: `about ${String(args.query)}` }], runAs };
        },
        async shell({ args }) {
          return { ran: args.command };
        },
      },
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([tickets?.close(), flaky?.close(), fragile?.close(), hooks?.close()]);
    await env?.teardown();
  });

  describe('policy decides', () => {
    test('an auto-allowed call runs once under its manifest identity', async () => {
      const handle = await gw.gateway.start(request('read_kb', { query: 'password reset' }));
      const outcome = await handle.outcome();
      assert.equal(outcome.status, 'completed');
      assert.ok(outcome.status === 'completed');
      assert.deepEqual(outcome.result, { articles: [{ id: 'KB-1', title: 'about password reset' }], runAs: 'svc-kb-reader' });
      assert.equal(outcome.execution.runAs, 'svc-kb-reader');
      assert.equal(outcome.execution.idempotencyKey, `toolgate:${handle.workflowId}`);
      assert.equal(outcome.rule, 'tool:read_kb');
      assert.equal(kbCalls.filter((q) => q === 'password reset').length, 1);
    });

    test('an unknown tool is denied', async () => {
      await assert.rejects(gw.gateway.call(request('drop_tables', {})), (err: unknown) => {
        assert.ok(err instanceof ToolDenied);
        assert.equal(err.outcome.code, 'unknown_tool');
        const forModel = err.toToolResult();
        assert.equal(forModel.status, 'denied');
        assert.match(forModel.message, /not executed/);
        return true;
      });
    });

    test('a caller without an allowed role is denied', async () => {
      const call = gw.gateway.call(request('read_kb', { query: 'x' }, { actor: { id: 'intern', type: 'human', roles: ['viewer'] } }));
      await assert.rejects(call, (err: unknown) => err instanceof ToolDenied && err.outcome.code === 'role_not_allowed');
    });

    test('a tool outside its environments is denied, whatever the role', async () => {
      const call = gw.gateway.call(request('prod_db_write', { statement: 'DELETE FROM users' }));
      await assert.rejects(call, (err: unknown) => err instanceof ToolDenied && err.outcome.code === 'environment_not_allowed');
      assert.equal(tickets.effects.filter((e) => (e.body as { tool: string }).tool === 'prod_db_write').length, 0);
    });

    test('invalid and unknown arguments are refused before anything else', async () => {
      await assert.rejects(gw.gateway.call(request('create_ticket', { title: 'x', priority: 'whenever' })), (err: unknown) => {
        assert.ok(err instanceof ToolDenied);
        assert.equal(err.outcome.code, 'invalid_arguments');
        assert.match(err.outcome.reasons.join(' '), /priority/);
        return true;
      });
      await assert.rejects(gw.gateway.call(request('read_kb', { query: 'x', sudo: true })), (err: unknown) => {
        assert.ok(err instanceof ToolDenied);
        assert.equal(err.outcome.code, 'invalid_arguments');
        assert.match(err.outcome.reasons.join(' '), /sudo/);
        return true;
      });
    });

    test('a CEL rule denies on the arguments and another lets the harmless form through', async () => {
      await assert.rejects(gw.gateway.call(request('shell', { command: 'rm -rf /' })), (err: unknown) => {
        assert.ok(err instanceof ToolDenied);
        assert.equal(err.outcome.code, 'rule_denied');
        assert.equal(err.outcome.rule, 'shell/destructive-delete');
        return true;
      });
      assert.deepEqual(await gw.gateway.call(request('shell', { command: 'ls' })), { ran: 'ls' });
    });

    test('a malformed request is refused at the edge, naming the field', async () => {
      await assert.rejects(
        gw.gateway.call(request('read kb!', { query: 'x' })),
        (err: unknown) => err instanceof InvalidToolRequest && /^tool:/.test(err.issues[0] ?? ''),
      );
      await assert.rejects(
        gw.gateway.call(request('read_kb', ['not', 'an', 'object'] as never)),
        (err: unknown) => err instanceof InvalidToolRequest && /args/.test(err.message),
      );
    });
  });

  describe('approvals', () => {
    test('a manager approves over HTTP and the ticket is created once', async () => {
      const handle = await gw.gateway.start(request('create_ticket', { title: 'Outage at ACME', priority: 'urgent' }));
      const pending = await waitForState(gw, handle.requestId, 'pending_approval');
      assert.match(pending.digest ?? '', /^[a-f0-9]{64}$/);
      const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });

      const view = await gw.api('GET', `/v1/approvals/${handle.requestId}`, { token });
      assert.equal(view.status, 200);
      assert.equal(view.body.digest, pending.digest);
      assert.deepEqual(view.body.args, { title: 'Outage at ACME', priority: 'urgent' });
      assert.equal(view.body.risk, 'medium');
      assert.equal(view.body.canDecide, true);

      const listed = await eventually(async () => {
        const list = await gw.api('GET', '/v1/approvals?status=pending', { token });
        return list.body.items.some((item: { requestId: string }) => item.requestId === handle.requestId) ? list : undefined;
      }, 'the request to be listed as pending');
      assert.equal(listed.status, 200);

      const decided = await gw.api('POST', `/v1/approvals/${handle.requestId}/decision`, {
        token,
        body: { decision: 'approve', digest: pending.digest, reason: 'customer impact confirmed' },
      });
      assert.equal(decided.status, 200);
      assert.equal(decided.body.approvals.length, 1);

      const outcome = await handle.outcome();
      assert.equal(outcome.status, 'completed');
      assert.ok(outcome.status === 'completed');
      assert.equal(outcome.execution.runAs, 'svc-ticketing');
      assert.equal(outcome.approvals[0]?.approverId, 'maria');
      const effects = tickets.effects.filter((e) => e.key === `toolgate:${handle.workflowId}`);
      assert.equal(effects.length, 1);
      assert.equal(effects[0]?.headers['x-toolgate-run-as'], 'svc-ticketing');
      assert.ok(hooks.received.some((n) => n.requestId === handle.requestId && n.type === 'toolgate.approval.requested'));
    });

    test('a rejection ends the request without a side effect', async () => {
      const handle = await gw.gateway.start(request('create_ticket', { title: 'Refund everyone', priority: 'low' }));
      const pending = await waitForState(gw, handle.requestId, 'pending_approval');
      const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      const decided = await gw.api('POST', `/v1/approvals/${handle.requestId}/decision`, {
        token,
        body: { decision: 'reject', digest: pending.digest, reason: 'not our policy' },
      });
      assert.equal(decided.status, 200);
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof ApprovalRejected);
        assert.equal(err.outcome.rejectedBy, 'maria');
        assert.deepEqual(err.toToolResult().reasons, ['not our policy']);
        return true;
      });
      assert.equal(tickets.effects.filter((e) => e.key === `toolgate:${handle.workflowId}`).length, 0);
    });

    test('an escalation tier fires on its timer, notifies the next group, which may then approve', async () => {
      const handle = await gw.gateway.start(request('escalating_write', { value: 'v' }));
      const pending = await waitForState(gw, handle.requestId, 'pending_approval');
      const director = await gw.token({ sub: 'dora', tenant: 'acme', groups: ['director'] });
      const early = await gw.api('POST', `/v1/approvals/${handle.requestId}/decision`, {
        token: director,
        body: { decision: 'approve', digest: pending.digest },
      });
      assert.equal(early.status, 403, 'the director may not approve before the tier is reached');

      const escalated = await eventually(async () => {
        const status = await gw.status(handle.requestId);
        return status.tier === 1 ? status : undefined;
      }, 'the escalation tier');
      assert.deepEqual(
        escalated.notifications.map((n) => n.kind),
        ['requested', 'escalated'],
      );
      assert.ok(escalated.eligibleGroups.includes('director'));
      await eventually(
        async () => hooks.received.find((n) => n.requestId === handle.requestId && n.type === 'toolgate.approval.escalated'),
        'the escalation webhook',
      );

      const approved = await gw.api('POST', `/v1/approvals/${handle.requestId}/decision`, {
        token: director,
        body: { decision: 'approve', digest: pending.digest },
      });
      assert.equal(approved.status, 200);
      const outcome = await handle.outcome();
      assert.equal(outcome.status, 'completed');
      assert.equal(outcome.approvals[0]?.tier, 1);
    });

    test('expiry denies: the request ends expired and nothing runs', async () => {
      const handle = await gw.gateway.start(request('expiring_write', { value: 'too late' }));
      const pending = await waitForState(gw, handle.requestId, 'pending_approval');
      await assert.rejects(handle.result(), (err: unknown) => err instanceof ApprovalExpired);
      assert.equal(tickets.effects.filter((e) => e.key === `toolgate:${handle.workflowId}`).length, 0);
      const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      const late = await gw.api('POST', `/v1/approvals/${handle.requestId}/decision`, {
        token,
        body: { decision: 'approve', digest: pending.digest },
      });
      assert.equal(late.status, 409);
    });
  });

  describe('exactly once', () => {
    test('a tool that acted and then failed is retried with the same key and acts once', async () => {
      const handle = await gw.gateway.start(request('flaky_write', { value: 'once' }));
      const outcome = await handle.outcome();
      assert.equal(outcome.status, 'completed');
      assert.ok(outcome.status === 'completed');
      assert.ok(outcome.execution.attempts >= 2, `expected a retry, saw ${outcome.execution.attempts} attempt(s)`);
      const key = `toolgate:${handle.workflowId}`;
      assert.equal(flaky.effects.filter((e) => e.key === key).length, 1);
      assert.deepEqual(outcome.result, { effect: flaky.effects.findIndex((e) => e.key === key) + 1, key });
    });

    test('a tool that cannot deduplicate and went silent is recorded as outcome unknown, not retried', async () => {
      const before = fragile.calls;
      await assert.rejects(gw.gateway.call(request('fragile_write', { value: 'maybe' })), (err: unknown) => {
        assert.ok(err instanceof ToolExecutionFailed);
        assert.equal(err.outcome.status, 'outcome_unknown');
        return true;
      });
      assert.equal(fragile.calls - before, 1);
    });

    test('the same requestId twice is one workflow and one execution', async () => {
      const input = request('create_ticket', { title: 'Duplicate?', priority: 'normal' });
      const first = await gw.gateway.start(input);
      const second = await gw.gateway.start(input);
      assert.equal(first.workflowId, second.workflowId);
      const pending = await waitForState(gw, first.requestId, 'pending_approval');
      const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      await gw.api('POST', `/v1/approvals/${first.requestId}/decision`, { token, body: { decision: 'approve', digest: pending.digest } });
      const [a, b] = await Promise.all([first.outcome(), second.outcome()]);
      assert.deepEqual(a, b);
      const third: ToolOutcome = await (await gw.gateway.start(input)).outcome();
      assert.deepEqual(third, a, 'a completed request answers with its recorded outcome');
      assert.equal(tickets.effects.filter((e) => e.key === `toolgate:${first.workflowId}`).length, 1);
      await assert.rejects(gw.gateway.start({ ...input, args: { title: 'Something else', priority: 'normal' } }), RequestConflict);
    });
  });

  describe('approval API contract', () => {
    let requestId: string;
    let digest: string;
    before(async () => {
      const handle = await gw.gateway.start(
        request('create_ticket', { title: 'Contract', priority: 'normal' }, { actor: { id: 'bob', type: 'human', roles: ['agent_runtime'] } }),
      );
      requestId = handle.requestId;
      digest = (await waitForState(gw, requestId, 'pending_approval')).digest ?? '';
    });

    test('GET /healthz answers 200 without a token, and 503 naming Temporal when the namespace cannot be described', async () => {
      const res = await gw.api('GET', '/healthz');
      assert.equal(res.status, 200);
      assert.match(res.body.temporal, /namespace default described/);
      // The same API code over a namespace that does not exist: not able to serve, and it says why.
      const app = createApiApp({
        client: new Client({ connection: env.client.connection, namespace: 'no-such-namespace' }),
        verifier: await ApproverTokenVerifier.fromPublicKeyPem(gw.approverPublicKeyPem),
        decisions: undefined as unknown as DecisionSigner, // never reached by /healthz
        logger: pino({ level: 'silent' }),
      });
      const server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const answer = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`);
        assert.equal(answer.status, 503);
        assert.match(((await answer.json()) as { temporal: string }).temporal, /no-such-namespace/);
      } finally {
        server.close();
      }
    });

    test('the dev UI trust of the codec holds only for a direct loopback call: not through a proxy or tunnel', async () => {
      const ui = 'http://127.0.0.1:8233';
      const app = createApiApp({
        client: env.client,
        verifier: await ApproverTokenVerifier.fromPublicKeyPem(gw.approverPublicKeyPem),
        decisions: undefined as unknown as DecisionSigner, // never reached by /codec
        logger: pino({ level: 'silent' }),
        codec: { codec: { encode: async (p) => p, decode: async (p) => p }, uiOrigins: [ui], devTrustedUiOrigins: [ui] },
      });
      const server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const port = (server.address() as AddressInfo).port;
        // node:http, not fetch: fetch may not set Host, which a tunnel does.
        const decode = (headers: Record<string, string>) =>
          new Promise<number | undefined>((resolve, reject) => {
            const body = JSON.stringify({ payloads: [] });
            const req = httpRequest(
              {
                host: '127.0.0.1',
                port,
                path: '/codec/decode',
                method: 'POST',
                headers: { 'content-type': 'application/json', 'content-length': String(body.length), origin: ui, ...headers },
              },
              (res) => {
                res.resume();
                resolve(res.statusCode);
              },
            );
            req.on('error', reject);
            req.end(body);
          });
        assert.equal(await decode({}), 200, 'the local UI, directly');
        assert.equal(await decode({ 'x-forwarded-for': '192.0.2.2' }), 401, 'through a proxy that says so');
        assert.equal(await decode({ via: '1.1 tunnel' }), 401);
        assert.equal(await decode({ forwarded: 'for=192.0.2.2' }), 401);
        assert.equal(await decode({ host: 'dev.example.net' }), 401, 'published under another name (a tunnel)');
        assert.equal(await decode({ origin: 'http://evil.example' }), 401, 'another origin');
      } finally {
        server.close();
      }
    });

    test('401 without a token, with a malformed one, and with one from another key', async () => {
      assert.equal((await gw.api('GET', '/v1/approvals?status=pending')).status, 401);
      assert.equal((await gw.api('GET', `/v1/approvals/${requestId}`, { token: 'not-a-jwt' })).status, 401);
      const { exportPKCS8, generateKeyPair } = await import('jose');
      const { issueApproverToken } = await import('../../src/auth/tokens.js');
      const other = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      const forged = await issueApproverToken({ sub: 'mallory', tenant: 'acme', groups: ['manager'] }, { privateKeyPem: await exportPKCS8(other.privateKey) });
      const res = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token: forged, body: { decision: 'approve', digest } });
      assert.equal(res.status, 401);
      const expired = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { ttlSeconds: -60 });
      assert.equal((await gw.api('GET', `/v1/approvals/${requestId}`, { token: expired })).status, 401);
    });

    test('400 names the field of a bad body', async () => {
      const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      const res = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token, body: { decision: 'maybe', digest } });
      assert.equal(res.status, 400);
      assert.match(res.body.error.message, /decision/);
      const broken = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token, rawBody: '{"decision":' });
      assert.equal(broken.status, 400);
    });

    test('403 for an approver outside the group and for self-approval', async () => {
      const outsider = await gw.token({ sub: 'sam', tenant: 'acme', groups: ['support'] });
      const res = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token: outsider, body: { decision: 'approve', digest } });
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'not_eligible');
      const self = await gw.token({ sub: 'bob', tenant: 'acme', groups: ['manager'] });
      const selfRes = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token: self, body: { decision: 'approve', digest } });
      assert.equal(selfRes.status, 403);
      assert.equal(selfRes.body.error.code, 'self_approval');
      const list = await gw.api('GET', '/v1/approvals?status=pending', { token: self });
      assert.ok(!list.body.items.some((item: { requestId: string }) => item.requestId === requestId), 'own requests are not listed');
    });

    test('404 for an unknown request and for another tenant', async () => {
      const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      assert.equal((await gw.api('GET', '/v1/approvals/no-such-request', { token })).status, 404);
      const res = await gw.api('POST', '/v1/approvals/no-such-request/decision', { token, body: { decision: 'approve', digest } });
      assert.equal(res.status, 404);
      const stranger = await gw.token({ sub: 'eve', tenant: 'globex', groups: ['manager'] });
      assert.equal((await gw.api('GET', `/v1/approvals/${requestId}`, { token: stranger })).status, 404);
    });

    test('409 for a digest mismatch, then 200, then 409 once decided', async () => {
      const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      const wrong = await gw.api('POST', `/v1/approvals/${requestId}/decision`, {
        token,
        body: { decision: 'approve', digest: 'f'.repeat(64) },
      });
      assert.equal(wrong.status, 409);
      assert.equal(wrong.body.error.code, 'digest_mismatch');
      const ok = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token, body: { decision: 'approve', digest } });
      assert.equal(ok.status, 200);
      const other = await gw.token({ sub: 'mark', tenant: 'acme', groups: ['manager'] });
      const again = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token: other, body: { decision: 'approve', digest } });
      assert.equal(again.status, 409);
      const outcome = await eventually(async () => (await gw.status(requestId)).outcome, 'the outcome');
      assert.equal(outcome.status, 'completed');
    });
  });
});
