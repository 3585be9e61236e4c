/**
 * The pieces under the agent integrations: request ids from tool-call ids, the framework adapters
 * against a scripted front door (the real client SDK over a fake `fetch`: what the adapters send,
 * and how they turn each answer into something for the model), agent tokens, the manifest's MCP
 * section, tool identity digests, and the worker-side MCP executor refusing a tool that no longer
 * matches its pin.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { SignJWT, exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { tool as agentTool, type RunState } from '@openai/agents';
import { jsonSchema, tool, type ToolExecutionOptions } from 'ai';
import { toolgateCheckTool, withToolgate } from '../../src/adapters/ai-sdk.js';
import { requestIdForToolCall } from '../../src/adapters/core.js';
import { gatewayFunction, gatewayRequestChecker } from '../../src/adapters/function.js';
import { ToolgateAgents } from '../../src/adapters/openai-agents.js';
import { GatewayRequestError, ToolGateway } from '../../src/client/index.js';
import { AgentTokenVerifier, issueAgentToken } from '../../src/auth/agent-tokens.js';
import { issueApproverToken } from '../../src/auth/tokens.js';
import { callMcpTool } from '../../src/mcp/executor.js';
import { toolDefinitionDigest } from '../../src/mcp/identity.js';
import { PolicyLoadError, parsePolicy } from '../../src/policy/index.js';
import { IDENTIFIER_PATTERN, type AgentRequestView, type ToolOutcome } from '../../src/shared/index.js';
import { ToolRejectedError } from '../../src/tools/types.js';

const MCP_POLICY = (adapter: string, servers = 'mcp_servers:\n  orders: { url: "http://127.0.0.1:9/mcp" }\n') => `version: 1
${servers}tools:
  lookup: { risk: low, approval: none, allowed_roles: [r] }
manifest:
  lookup:
    run_as: svc
    adapter: ${adapter}
    args: { type: object }
`;

describe('request ids from tool-call ids', () => {
  test('the same call in the same scope is the same id; scopes keep conversations apart', () => {
    assert.equal(requestIdForToolCall('conv-1', 'call_abc'), 'conv-1:call_abc');
    assert.notEqual(requestIdForToolCall('conv-1', 'call_abc'), requestIdForToolCall('conv-2', 'call_abc'));
  });

  test('ids that are not valid request ids are hashed into valid, stable ones', () => {
    const odd = requestIdForToolCall('conv 1', 'toolu_01/ä+'.repeat(20));
    assert.match(odd, IDENTIFIER_PATTERN);
    assert.equal(odd, requestIdForToolCall('conv 1', 'toolu_01/ä+'.repeat(20)));
  });
});

type Script =
  | { kind: 'complete'; result: unknown }
  | { kind: 'deny'; reasons: string[] }
  | { kind: 'pending' }
  | { kind: 'evaluate_then_complete'; reads: number; result: unknown }
  | { kind: 'http'; status: number; code: string; message: string };

interface FakeRequest {
  requestId: string;
  owner: string;
  tool: string;
  body: Record<string, unknown>;
  outcome?: ToolOutcome;
  pendingReads?: number;
  result?: unknown;
}

const outcomeOf = (request: Pick<FakeRequest, 'requestId' | 'tool'>, fields: Record<string, unknown>): ToolOutcome =>
  ({ requestId: request.requestId, workflowId: `toolreq/acme/${request.requestId}`, tool: request.tool, tenant: 'acme', ...fields }) as unknown as ToolOutcome;

/**
 * A scripted front door behind the real client SDK: it answers `POST /v1/tool-requests`,
 * `GET /v1/tool-requests/:id?wait=` (long-polling) and `GET /v1/agent` the way the agent API
 * does — each request belongs to the token that started it, another token reads it as 404 — and
 * records every body it was sent.
 */
class FakeFrontDoor {
  readonly posted: Record<string, unknown>[] = [];
  readonly requests = new Map<string, FakeRequest>();
  identityReads = 0;
  /** What each tool does when submitted. */
  scripts: Record<string, Script> = {
    read_kb: { kind: 'complete', result: { articles: ['KB'] } },
    create_ticket: { kind: 'pending' },
    prod_db_write: { kind: 'deny', reasons: ['environment_not_allowed'] },
    slow_lookup: { kind: 'evaluate_then_complete', reads: 2, result: { found: true } },
    secret_tool: { kind: 'http', status: 403, code: 'tool_not_granted', message: "this agent's token does not grant the tool secret_tool" },
    spoofed: { kind: 'http', status: 403, code: 'identity_mismatch', message: 'the request names another identity than the token' },
  };
  /** Tokens the door knows: token → agent identity. */
  readonly agents = new Map<string, { id: string; type: 'agent'; tenant: string; environment: string; roles: string[] }>([
    ['tok-triage', { id: 'triage-bot', type: 'agent', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] }],
    ['tok-other', { id: 'other-bot', type: 'agent', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] }],
  ]);

  gateway(token = 'tok-triage'): ToolGateway {
    return new ToolGateway({ url: 'http://front-door.test', token, fetch: this.fetch, pollSeconds: 1 });
  }

  /** People decide a pending request. */
  decide(requestId: string, fields: Record<string, unknown>): void {
    const request = this.requests.get(requestId);
    assert.ok(request, `no request ${requestId}`);
    request.outcome = outcomeOf(request, fields);
  }

  private view(request: FakeRequest): AgentRequestView {
    if (request.outcome) {
      return { requestId: request.requestId, state: request.outcome.status, tool: request.tool, outcome: request.outcome };
    }
    if (request.pendingReads !== undefined) return { requestId: request.requestId, state: 'evaluating', tool: request.tool };
    return {
      requestId: request.requestId,
      state: 'pending_approval',
      tool: request.tool,
      expiresAt: '2030-01-01T00:00:00.000Z',
      eligibleGroups: ['manager'],
      message: `${request.tool} waits for approval; it has not run`,
    };
  }

  readonly fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const token = /^Bearer (.+)$/.exec(new Headers(init?.headers).get('authorization') ?? '')?.[1] ?? '';
    const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    const agent = this.agents.get(token);
    if (!agent) return json(401, { error: { code: 'invalid_token', message: 'invalid agent token: signature verification failed' } });
    if (init?.method === 'GET' && url.pathname === '/v1/agent') {
      this.identityReads += 1;
      return json(200, agent);
    }
    if (init?.method === 'POST' && url.pathname === '/v1/tool-requests') {
      const body = JSON.parse(init.body as string) as Record<string, unknown>;
      this.posted.push(body);
      const tool = String(body.tool);
      const script = this.scripts[tool] ?? { kind: 'deny', reasons: [`${tool} is not defined in the policy`] };
      if (script.kind === 'http') return json(script.status, { error: { code: script.code, message: script.message } });
      const requestId = typeof body.requestId === 'string' ? body.requestId : `gen-${this.requests.size + 1}`;
      let request = this.requests.get(requestId);
      if (!request) {
        request = { requestId, owner: token, tool, body };
        if (script.kind === 'complete') request.outcome = outcomeOf(request, { status: 'completed', result: script.result });
        if (script.kind === 'deny') request.outcome = outcomeOf(request, { status: 'denied', code: 'rule_denied', reasons: script.reasons });
        if (script.kind === 'evaluate_then_complete') {
          request.pendingReads = script.reads;
          request.result = script.result;
        }
        this.requests.set(requestId, request);
      }
      const view = this.view(request);
      return json(view.outcome ? 200 : 202, view);
    }
    const read = /^\/v1\/tool-requests\/([^/]+)$/.exec(url.pathname);
    if (init?.method === 'GET' && read) {
      const request = this.requests.get(decodeURIComponent(read[1]!));
      if (!request || request.owner !== token) return json(404, { error: { code: 'not_found', message: 'no request of this agent' } });
      if (request.pendingReads !== undefined) {
        request.pendingReads -= 1;
        if (request.pendingReads < 0) {
          delete request.pendingReads;
          request.outcome = outcomeOf(request, { status: 'completed', result: request.result });
        }
      }
      // Long poll: answer as soon as there is an outcome, or when the wait is over.
      const deadline = Date.now() + Number(url.searchParams.get('wait') ?? 0) * 1000;
      while (!request.outcome && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      return json(200, this.view(request));
    }
    return json(404, { error: { code: 'not_found', message: 'no such route' } });
  };
}

const ALLOWED_BODY_KEYS = ['requestId', 'tool', 'args', 'reason', 'wait'];
/** Every body the adapters sent names only the tool, its arguments, the request id, the reason (and the SDK's wait). */
function assertNoIdentityInBodies(door: FakeFrontDoor): void {
  assert.ok(door.posted.length > 0);
  for (const body of door.posted) {
    for (const key of Object.keys(body)) assert.ok(ALLOWED_BODY_KEYS.includes(key), `the adapter sent ${key}: ${JSON.stringify(body)}`);
  }
}

/** The tools' originals: they run on a toolgate worker, never in the agent process. */
const workerOnly = async (): Promise<unknown> => assert.fail('the original runs on the worker, never in the agent');

const aiExecution = (toolCallId: string) => ({ toolCallId, messages: [] }) satisfies Partial<ToolExecutionOptions<unknown>> as never;

describe('framework adapters through the front door (identity from the token)', () => {
  const aiTools = {
    read_kb: tool({
      description: 'Search the knowledge base',
      inputSchema: jsonSchema<{ query: string }>({ type: 'object', properties: { query: { type: 'string' } }, required: ['query'] }),
      execute: workerOnly,
    }),
    create_ticket: tool({
      description: 'Open a ticket',
      inputSchema: jsonSchema<{ title: string }>({ type: 'object', properties: { title: { type: 'string' } }, required: ['title'] }),
      needsApproval: true,
      execute: workerOnly,
    }),
    prod_db_write: tool({
      description: 'Write to the production database',
      inputSchema: jsonSchema<{ statement: string }>({ type: 'object', properties: { statement: { type: 'string' } }, required: ['statement'] }),
      execute: workerOnly,
    }),
  };

  test("AI SDK: requests carry only tool, args, id and reason; the id scope defaults to the token's agent id", async () => {
    const door = new FakeFrontDoor();
    const wrapped = withToolgate(aiTools, { gateway: door.gateway(), reason: 'triage', wait: 0 });
    assert.equal((wrapped.create_ticket as { needsApproval?: unknown }).needsApproval, undefined, "toolgate's policy decides approvals, not the tool");
    assert.deepEqual(await wrapped.read_kb.execute({ query: 'vpn' }, aiExecution('call-1')), { articles: ['KB'] });
    assert.deepEqual(door.posted[0], { requestId: 'triage-bot:call-1', tool: 'read_kb', args: { query: 'vpn' }, reason: 'triage', wait: 0 });
    assertNoIdentityInBodies(door);
    assert.equal(door.identityReads, 1, 'the scope comes from GET /v1/agent');
  });

  test('AI SDK: a denial and a pending approval are results for the model; the check tool reports the decision', async () => {
    const door = new FakeFrontDoor();
    const options = { gateway: door.gateway(), scope: 'conv-7', wait: 0 };
    const wrapped = withToolgate(aiTools, options);
    const denied = (await wrapped.prod_db_write.execute({ statement: 'DROP' }, aiExecution('call-2'))) as Record<string, unknown>;
    assert.equal(denied.status, 'denied');
    assert.deepEqual(denied.reasons, ['environment_not_allowed']);
    const pending = (await wrapped.create_ticket.execute({ title: 'Outage' }, aiExecution('call-3'))) as Record<string, unknown>;
    assert.deepEqual(
      { ...pending, message: undefined },
      {
        ok: false,
        status: 'pending_approval',
        requestId: 'conv-7:call-3',
        tool: 'create_ticket',
        message: undefined,
        expiresAt: '2030-01-01T00:00:00.000Z',
        eligibleGroups: ['manager'],
      },
    );
    assert.equal(door.identityReads, 0, 'an explicit scope needs no identity lookup');

    const check = toolgateCheckTool(options);
    const stillPending = (await check.execute!({ requestId: 'conv-7:call-3' }, aiExecution('check-1'))) as Record<string, unknown>;
    assert.equal(stillPending.status, 'pending_approval');
    door.decide('conv-7:call-3', { status: 'rejected', rejectedBy: 'maria', reason: 'not now' });
    const rejected = (await check.execute!({ requestId: 'conv-7:call-3' }, aiExecution('check-2'))) as Record<string, unknown>;
    assert.equal(rejected.status, 'rejected');
    assert.deepEqual(rejected.reasons, ['not now']);
    assertNoIdentityInBodies(door);
  });

  test('a wait for people ends with the decision as soon as it is made (long poll), and evaluation is always waited for', async () => {
    const door = new FakeFrontDoor();
    const call = gatewayFunction('create_ticket', { gateway: door.gateway(), scope: 's', wait: 5_000 });
    const answer = call({ title: 'Outage' }, { callId: 'c1' });
    await new Promise((resolve) => setTimeout(resolve, 150));
    door.decide('s:c1', { status: 'completed', result: { ticketId: 'T-1' } });
    const started = Date.now();
    assert.deepEqual(await answer, { ticketId: 'T-1' });
    assert.ok(Date.now() - started < 2_000, 'the outcome is not held back until the wait ends');
    // wait 0 never cuts evaluation short: a request still evaluating is followed to its outcome.
    assert.deepEqual(await gatewayFunction('slow_lookup', { gateway: door.gateway(), wait: 0 })({ id: 1 }), { found: true });
  });

  test('refusals a model can act on become results; a refusal of the credential or the call itself is an error', async () => {
    const door = new FakeFrontDoor();
    const notGranted = (await gatewayFunction('secret_tool', { gateway: door.gateway() })({})) as Record<string, unknown>;
    assert.equal(notGranted.status, 'denied');
    await assert.rejects(
      gatewayFunction('spoofed', { gateway: door.gateway() })({}),
      (err: unknown) => err instanceof GatewayRequestError && err.status === 403 && err.code === 'identity_mismatch',
    );
    const revoked = door.gateway('tok-revoked');
    await assert.rejects(
      gatewayFunction('read_kb', { gateway: revoked, scope: 's' })({}),
      (err: unknown) => err instanceof GatewayRequestError && err.status === 401,
    );
    await assert.rejects(
      (async () => withToolgate(aiTools, { gateway: revoked }).read_kb.execute({ query: 'x' }, aiExecution('c')))(),
      (err: unknown) => err instanceof GatewayRequestError && err.status === 401,
      'without a scope the identity lookup itself is refused',
    );
    await assert.rejects(gatewayRequestChecker({ gateway: revoked })('s:c1'), (err: unknown) => err instanceof GatewayRequestError && err.status === 401);
  });

  test("checking a request that is not this agent's answers that this agent has no such request", async () => {
    const door = new FakeFrontDoor();
    await gatewayFunction('create_ticket', { gateway: door.gateway(), scope: 'conv', wait: 0 })({ title: 'x' }, { callId: 'c9' });
    const mine = (await gatewayRequestChecker({ gateway: door.gateway() })('conv:c9')) as Record<string, unknown>;
    assert.equal(mine.status, 'pending_approval');
    const other = door.gateway('tok-other');
    for (const requestId of ['conv:c9', 'never-made', 'not a valid id!']) {
      assert.deepEqual(await gatewayRequestChecker({ gateway: other })(requestId), {
        ok: false,
        status: 'invalid_request',
        requestId,
        message: `no request ${requestId} of this agent exists`,
      });
    }
  });

  describe('OpenAI Agents', () => {
    const fnTool = (name: string) =>
      agentTool({
        name,
        description: name,
        parameters: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'], additionalProperties: false },
        strict: true,
        execute: workerOnly,
      });

    test('needsApproval follows the front door: pending_approval → true; an outcome, or no approval needed → false', async () => {
      const door = new FakeFrontDoor();
      const agents = new ToolgateAgents({ gateway: door.gateway(), scope: 'oa' });
      const ask = (name: string, callId: string) => agents.tool(fnTool(name)).needsApproval(undefined as never, { title: 't' }, callId);
      assert.equal(await ask('create_ticket', 'fc-1'), true);
      assert.equal(await ask('read_kb', 'fc-2'), false);
      assert.equal(await ask('prod_db_write', 'fc-3'), false, 'a denial is reported by invoke');
      assert.equal(await ask('slow_lookup', 'fc-4'), false, 'evaluating is waited out');
      assert.equal(await ask('secret_tool', 'fc-5'), false, 'not granted: invoke reports it');
      await assert.rejects(ask('spoofed', 'fc-6'), (err: unknown) => err instanceof GatewayRequestError && err.code === 'identity_mismatch');
      assert.equal(await agents.tool(fnTool('create_ticket')).needsApproval(undefined as never, { title: 't' }, undefined), true, 'no call id: fail closed');
      assert.deepEqual(door.posted[0], { requestId: 'oa:fc-1', tool: 'create_ticket', args: { title: 't' }, wait: 0 });
      assertNoIdentityInBodies(door);
    });

    test('resolveInterruptions approves or rejects from the decision; invoke reports refusals to the model', async () => {
      const door = new FakeFrontDoor();
      const agents = new ToolgateAgents({ gateway: door.gateway(), wait: 0 });
      const ticket = agents.tool(fnTool('create_ticket'));
      assert.equal(await ticket.needsApproval(undefined as never, { title: 'a' }, 'fc-1'), true);
      assert.equal(await ticket.needsApproval(undefined as never, { title: 'b' }, 'fc-2'), true);
      assert.equal(await ticket.needsApproval(undefined as never, { title: 'c' }, 'fc-3'), true);
      door.decide('triage-bot:fc-1', { status: 'completed', result: { ticketId: 'T-1' } });
      door.decide('triage-bot:fc-2', { status: 'rejected', rejectedBy: 'maria', reason: 'duplicate' });
      const approved: unknown[] = [];
      const rejected: { message?: string }[] = [];
      const item = (callId: string, name = 'create_ticket') => ({ name, rawItem: { callId } });
      const state = {
        getInterruptions: () => [item('fc-1'), item('fc-2'), item('fc-3'), item('x-1', 'not_governed')],
        approve: (i: unknown) => approved.push(i),
        reject: (_i: unknown, options: { message?: string }) => rejected.push(options),
      } as unknown as RunState<any, any>; // a stand-in for the SDK's paused run
      const resolution = await agents.resolveInterruptions(state);
      assert.deepEqual(resolution.approved, ['fc-1']);
      assert.deepEqual(resolution.rejected, ['fc-2']);
      assert.deepEqual(
        resolution.pending.map((p) => p.requestId),
        ['triage-bot:fc-3'],
      );
      assert.equal(resolution.foreign.length, 1);
      assert.match(rejected[0]?.message ?? '', /"status":"rejected"/);
      // The resumed run's invoke attaches to the approved request and returns its result.
      const output = await ticket.invoke(undefined as never, '{"title":"a"}', { toolCall: { callId: 'fc-1' } } as never);
      assert.deepEqual(JSON.parse(String(output)), { ticketId: 'T-1' });
      const denied = await agents.tool(fnTool('prod_db_write')).invoke(undefined as never, '{"title":"x"}', { toolCall: { callId: 'fc-9' } } as never);
      assert.equal(JSON.parse(String(denied)).status, 'denied');
      assertNoIdentityInBodies(door);
    });
  });
});

describe('agent tokens', async () => {
  const keys = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const privateKeyPem = await exportPKCS8(keys.privateKey);
  const verifier = await AgentTokenVerifier.fromPublicKeyPem(await exportSPKI(keys.publicKey));

  test('a valid token names the agent, its tenant and roles', async () => {
    const token = await issueAgentToken({ sub: 'bot', tenant: 'acme', roles: ['agent_runtime'], environment: 'production' }, { privateKeyPem });
    assert.deepEqual(await verifier.verify(token), { id: 'bot', type: 'agent', tenant: 'acme', roles: ['agent_runtime'], environment: 'production' });
  });

  test('an approver token signed by the same key is refused (typ and audience differ)', async () => {
    const approver = await issueApproverToken({ sub: 'maria', tenant: 'acme', groups: ['manager'] }, { privateKeyPem });
    await assert.rejects(verifier.verify(approver), /agent token/);
  });

  test('expired tokens, and tokens without type agent, are refused with the reason', async () => {
    const expired = await issueAgentToken({ sub: 'bot', tenant: 'acme', roles: [], environment: 'production' }, { privateKeyPem, ttlSeconds: -120 });
    await assert.rejects(verifier.verify(expired), /expired/);
    const human = await new SignJWT({ tenant: 'acme', roles: [], type: 'human', environment: 'production' })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'toolgate-agent+jwt' })
      .setSubject('bot')
      .setIssuer('toolgate-local')
      .setAudience('toolgate-agents')
      .setExpirationTime('5m')
      .sign(keys.privateKey);
    await assert.rejects(verifier.verify(human), /type claim must be "agent"/);
  });
});

describe("the manifest's MCP section", () => {
  test('an mcp adapter resolves its server', () => {
    const policy = parsePolicy([{ file: 'p.yaml', text: MCP_POLICY('{ type: mcp, server: orders, tool: lookup_order }') }]);
    const adapter = policy.manifest('lookup')?.adapter;
    assert.equal(adapter?.type, 'mcp');
    assert.ok(adapter?.type === 'mcp');
    assert.deepEqual(adapter.connection, { transport: 'http', url: 'http://127.0.0.1:9/mcp', headers: {} });
    assert.equal(adapter.timeoutMs, 60_000);
  });

  test('an unknown server, a malformed pin and a malformed server are located errors', () => {
    const issues = (text: string) => {
      try {
        parsePolicy([{ file: 'p.yaml', text }]);
      } catch (err) {
        assert.ok(err instanceof PolicyLoadError);
        return err.issues.map((i) => `${i.path}: ${i.message}`).join('\n');
      }
      assert.fail('expected a load error');
    };
    assert.match(
      issues(MCP_POLICY('{ type: mcp, server: billing, tool: x }')),
      /manifest\.lookup\.adapter\.server: MCP server "billing" is not defined; add it under mcp_servers \(defined: orders\)/,
    );
    assert.match(issues(MCP_POLICY('{ type: mcp, server: orders, tool: x, pin: abc }')), /adapter\.pin: must be the 64 hex characters/);
    assert.match(issues(MCP_POLICY('{ type: mcp, server: orders, tool: x }', 'mcp_servers:\n  orders: { url: 42 }\n')), /mcp_servers\.orders/);
  });

  test('policies without MCP servers keep their digest; a server change changes it', () => {
    const plain = `version: 1\ntools:\n  t: { risk: low, approval: none, allowed_roles: [r] }\nmanifest:\n  t: { run_as: s, adapter: { type: code }, args: { type: object } }\n`;
    const a = parsePolicy([{ file: 'a.yaml', text: plain }]).digest;
    const b = parsePolicy([{ file: 'a.yaml', text: `${plain}mcp_servers:\n  x: { command: echo }\n` }]).digest;
    assert.notEqual(a, b);
    assert.equal(parsePolicy([{ file: 'a.yaml', text: plain }]).digest, a);
  });
});

describe('tool identity', () => {
  test('the digest covers name, description, input schema and annotations, and not key order', () => {
    const tool = {
      name: 'x',
      description: 'd',
      inputSchema: { type: 'object' as const, properties: { a: { type: 'string' } } },
      annotations: { readOnlyHint: true },
    };
    const reordered = {
      annotations: { readOnlyHint: true },
      inputSchema: { properties: { a: { type: 'string' } }, type: 'object' as const },
      description: 'd',
      name: 'x',
    };
    assert.equal(toolDefinitionDigest(tool), toolDefinitionDigest(reordered));
    assert.notEqual(toolDefinitionDigest(tool), toolDefinitionDigest({ ...tool, description: 'd!' }));
    assert.notEqual(toolDefinitionDigest(tool), toolDefinitionDigest({ ...tool, annotations: { readOnlyHint: false } }));
  });

  test('the worker-side executor refuses a downstream tool that does not match its pin, before calling it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-exec-'));
    try {
      const connection = {
        transport: 'stdio' as const,
        command: process.execPath,
        args: ['--import', 'tsx', resolve('test/fixtures/mcp-downstream.ts')],
        env: { DOWNSTREAM_STATE: dir },
      };
      const context = {
        args: { orderId: 'A-1' },
        idempotencyKey: 'k-1',
        runAs: 'svc',
        requestId: 'r-1',
        tenant: 'acme',
        tool: 'lookup',
        attempt: 1,
        signal: new AbortController().signal,
        deadline: new Date(Date.now() + 60_000),
      };
      const adapter = { type: 'mcp' as const, server: 'orders', tool: 'lookup_order', timeoutMs: 10_000, connection, handler: 'mcp:orders/lookup_order' };
      await assert.rejects(
        callMcpTool({ ...adapter, pin: 'a'.repeat(64) }, context),
        (err: unknown) => err instanceof ToolRejectedError && /changed since it was pinned/.test(err.message),
      );
      await assert.rejects(callMcpTool(adapter, context), /not pinned/);
      await writeFile(join(dir, 'effects.jsonl'), '');
      const pin = toolDefinitionDigest({
        name: 'lookup_order',
        description: 'Look up an order by id.',
        inputSchema: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] },
        annotations: { readOnlyHint: true },
      });
      const result = await callMcpTool({ ...adapter, pin }, context);
      assert.deepEqual(result.structuredContent, { orderId: 'A-1', status: 'shipped', total: 120 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
