/**
 * Agents plugging in where they are, on a real Temporal server: the Vercel AI SDK and the OpenAI
 * Agents SDK driven by mock models (no model provider is contacted), the plain function wrapper,
 * and the HTTP API for agents in other languages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Agent, RunState, run, setTracingDisabled, tool as agentTool } from '@openai/agents';
import { ScriptedModel, assistantMessage, functionCall } from '@openai/agents/testing';
import { generateText, jsonSchema, stepCountIs, tool } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { withToolgate, aiSdkToolHandlers } from '../../src/adapters/ai-sdk.js';
import { gatewayFunction, gatewayRequestChecker } from '../../src/adapters/function.js';
import { ToolgateAgents, openAiToolHandlers } from '../../src/adapters/openai-agents.js';
import { createAgentRouter } from '../../src/api/agents.js';
import { AgentTokenVerifier, issueAgentToken } from '../../src/auth/agent-tokens.js';
import { ToolGateway } from '../../src/client/index.js';
import { silentLogger } from '../../src/logger.js';
import { eventually, startGateway, startTemporal, type GatewayEnv, waitForState } from '../helpers/gateway-env.js';

setTracingDisabled(true);

const POLICY = `
version: 1
tools:
  read_kb: { risk: low, approval: none, allowed_roles: [agent_runtime] }
  create_ticket: { risk: medium, approval: manager, allowed_roles: [agent_runtime] }
  prod_db_write: { risk: critical, approval: none, allowed_roles: [agent_runtime], environments: [staging] }
approvals:
  manager: { groups: [manager], expires_after: 1h }
manifest:
  read_kb:
    run_as: svc-kb
    adapter: { type: code }
    args: { type: object, required: [query], properties: { query: { type: string } } }
  create_ticket:
    run_as: svc-ticketing
    adapter: { type: code }
    args: { type: object, required: [title], properties: { title: { type: string } } }
  prod_db_write:
    run_as: svc-db
    adapter: { type: code }
    args: { type: object, required: [statement], properties: { statement: { type: string } } }
`;

/** Side effects the tools performed, by tool name. */
const effects: Record<string, string[]> = { read_kb: [], create_ticket: [], prod_db_write: [] };

// The agent's own tools, written for the AI SDK as usual; toolgate runs their implementations on its worker.
const aiTools = {
  read_kb: tool({
    description: 'Search the knowledge base',
    inputSchema: jsonSchema<{ query: string }>({ type: 'object', properties: { query: { type: 'string' } }, required: ['query'] }),
    execute: async ({ query }) => {
      effects.read_kb!.push(query);
      return { articles: [`KB about ${query}`] };
    },
  }),
  create_ticket: tool({
    description: 'Open a ticket',
    inputSchema: jsonSchema<{ title: string }>({ type: 'object', properties: { title: { type: 'string' } }, required: ['title'] }),
    execute: async ({ title }, { toolCallId }) => {
      effects.create_ticket!.push(title);
      return { ticketId: `T-${effects.create_ticket!.length}`, title, requestId: toolCallId };
    },
  }),
  prod_db_write: tool({
    description: 'Write to the production database',
    inputSchema: jsonSchema<{ statement: string }>({ type: 'object', properties: { statement: { type: 'string' } }, required: ['statement'] }),
    execute: async ({ statement }) => {
      effects.prod_db_write!.push(statement);
      return { written: true };
    },
  }),
};

const agentActor = { id: 'triage-bot', type: 'agent' as const, roles: ['agent_runtime'] };
const identity = { actor: agentActor, tenant: 'acme', environment: 'production' };
let seq = 0;
const unique = (what: string) => `${what}-${process.pid}-${Date.now()}-${++seq}`;

async function decide(gw: GatewayEnv, requestId: string, decision: 'approve' | 'reject', reason?: string): Promise<void> {
  const pending = await waitForState(gw, requestId, 'pending_approval');
  const token = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
  const res = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token, body: { decision, digest: pending.digest, ...(reason && { reason }) } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

describe('agents plug in: framework adapters and the HTTP agent API', () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let agentKey: string;
  const taskQueue = `agents-${process.pid}`;

  // The OpenAI Agents SDK tools: plain function tools, their implementations registered on the worker too.
  const oaTools = [
    agentTool({
      name: 'read_kb',
      description: 'Search the knowledge base',
      parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'], additionalProperties: false },
      strict: true,
      execute: async (input: any) => {
        effects.read_kb!.push(String(input.query));
        return { articles: [`KB about ${String(input.query)}`] };
      },
    }),
    agentTool({
      name: 'create_ticket',
      description: 'Open a ticket',
      parameters: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'], additionalProperties: false },
      strict: true,
      execute: async (input: any) => {
        effects.create_ticket!.push(String(input.title));
        return { ticketId: `T-${effects.create_ticket!.length}`, title: input.title };
      },
    }),
    agentTool({
      name: 'prod_db_write',
      description: 'Write to the production database',
      parameters: { type: 'object', properties: { statement: { type: 'string' } }, required: ['statement'], additionalProperties: false },
      strict: true,
      execute: async () => {
        effects.prod_db_write!.push('oa');
        return 'written';
      },
    }),
  ];

  before(async () => {
    env = await startTemporal();
    const keys = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    agentKey = await exportPKCS8(keys.privateKey);
    const verifier = await AgentTokenVerifier.fromPublicKeyPem(await exportSPKI(keys.publicKey));
    const aiHandlers = aiSdkToolHandlers(aiTools);
    const oaHandlers = openAiToolHandlers(oaTools);
    gw = await startGateway(env, {
      taskQueue,
      policy: POLICY,
      // One worker serves both frameworks: the AI SDK implementations for requests made through the AI SDK adapter, and so on.
      tools: Object.fromEntries(
        Object.keys(aiHandlers).map((name) => [
          name,
          (context: Parameters<NonNullable<(typeof aiHandlers)[string]>>[0]) =>
            (context.requestId.startsWith('oa-') ? oaHandlers[name]! : aiHandlers[name]!)(context),
        ]),
      ),
      mount: (app) => {
        app.use('/v1/tool-requests', createAgentRouter({ gateway: new ToolGateway({ client: env.client, taskQueue }), verifier, logger: silentLogger() }));
      },
    });
  });

  after(async () => {
    await gw?.close();
    await env?.teardown();
  });

  test('AI SDK: one call executed, one denied, one approved over HTTP while the run waits; the model sees each result', async () => {
    const scope = unique('ai');
    let secondPrompt: unknown;
    const model = new MockLanguageModelV4({
      doGenerate: async (options) => {
        if (options.prompt.some((message) => message.role === 'tool')) {
          secondPrompt = options.prompt;
          return { content: [{ type: 'text', text: 'Triage done.' }], finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(), warnings: [] };
        }
        return {
          content: [
            { type: 'tool-call', toolCallId: 'call-1', toolName: 'read_kb', input: JSON.stringify({ query: 'outage' }) },
            { type: 'tool-call', toolCallId: 'call-2', toolName: 'prod_db_write', input: JSON.stringify({ statement: 'DROP TABLE users' }) },
            { type: 'tool-call', toolCallId: 'call-3', toolName: 'create_ticket', input: JSON.stringify({ title: 'Checkout outage' }) },
          ],
          finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
          usage: usage(),
          warnings: [],
        };
      },
    });
    const before = { kb: effects.read_kb!.length, tickets: effects.create_ticket!.length };
    const running = generateText({
      model,
      tools: withToolgate(aiTools, { gateway: gw.gateway, ...identity, scope }),
      prompt: 'A customer reports that checkout is down.',
      stopWhen: stepCountIs(3),
    });
    await decide(gw, `${scope}:call-3`, 'approve');
    const result = await running;

    assert.equal(result.text, 'Triage done.');
    const outputs = Object.fromEntries(result.steps[0]!.toolResults.map((r) => [r.toolName, r.output as any]));
    assert.deepEqual(outputs.read_kb, { articles: ['KB about outage'] });
    assert.equal(outputs.prod_db_write.status, 'denied');
    assert.match(outputs.prod_db_write.message, /not executed/);
    assert.equal(outputs.create_ticket.title, 'Checkout outage');
    assert.equal(outputs.create_ticket.requestId, `${scope}:call-3`, 'the request id derives from the tool-call id');
    // What the model read back on its next step:
    const seen = JSON.stringify(secondPrompt);
    assert.match(seen, /KB about outage/);
    assert.match(seen, /environment_not_allowed/);
    assert.match(seen, /Checkout outage/);
    assert.equal(effects.read_kb!.length - before.kb, 1);
    assert.equal(effects.create_ticket!.length - before.tickets, 1);
    assert.equal(effects.prod_db_write!.length, 0);
  });

  test('OpenAI Agents SDK: the run pauses on the toolgate approval and resumes, from a serialized state, once a manager approves', async () => {
    const scope = unique('oa');
    const agents = new ToolgateAgents({ gateway: gw.gateway, ...identity, scope });
    const model = new ScriptedModel([
      [
        functionCall('read_kb', { query: 'refund' }, { callId: 'fc-1' }),
        functionCall('prod_db_write', { statement: 'DELETE FROM orders' }, { callId: 'fc-2' }),
        functionCall('create_ticket', { title: 'Refund request' }, { callId: 'fc-3' }),
      ],
      [assistantMessage('Ticket opened.')],
    ]);
    const agent = new Agent({ name: 'triage', instructions: 'Triage support requests.', model, tools: agents.tools(oaTools) });
    const before = effects.create_ticket!.length;

    const paused = await run(agent, 'Customer wants a refund.');
    assert.equal(paused.interruptions.length, 1, 'only the call policy routes to people pauses the run');
    assert.equal(paused.interruptions[0]!.name, 'create_ticket');
    assert.equal(effects.create_ticket!.length, before, 'nothing ran before the approval');
    const saved = paused.state.toString();

    await decide(gw, `${scope}:fc-3`, 'approve');
    const state = await RunState.fromString(agent, saved);
    const resolution = await agents.resolveInterruptions(state);
    assert.deepEqual(resolution.approved, ['fc-3']);
    const resumed = await run(agent, state);

    assert.equal(resumed.finalOutput, 'Ticket opened.');
    const seen = JSON.stringify(model.lastCall?.request.input);
    assert.match(seen, /KB about refund/);
    assert.match(seen, /environment_not_allowed/);
    assert.match(seen, /Refund request/);
    assert.equal(effects.create_ticket!.length - before, 1, 'the approved call ran once');
  });

  test('OpenAI Agents SDK: agents.run waits for the approver, and a rejection reaches the model as the rejection', async () => {
    const scope = unique('oa');
    const agents = new ToolgateAgents({ gateway: gw.gateway, ...identity, scope });
    const model = new ScriptedModel([[functionCall('create_ticket', { title: 'Refund everyone' }, { callId: 'fc-9' })], [assistantMessage('Understood.')]]);
    const agent = new Agent({ name: 'triage', instructions: 'Triage.', model, tools: agents.tools(oaTools) });
    const before = effects.create_ticket!.length;
    const running = agents.run(agent, 'Refund all customers.');
    await decide(gw, `${scope}:fc-9`, 'reject', 'not our policy');
    const { result, pending } = await running;
    assert.deepEqual(pending, []);
    assert.equal(result.finalOutput, 'Understood.');
    const seen = JSON.stringify(model.lastCall?.request.input);
    assert.match(seen, /rejected/);
    assert.match(seen, /not our policy/);
    assert.equal(effects.create_ticket!.length, before);
  });

  test('function wrapper: with wait 0 a call needing approval returns pending with its request id; the agent polls it later', async () => {
    const options = { gateway: gw.gateway, ...identity, scope: unique('fn'), wait: 0 };
    const createTicket = gatewayFunction('create_ticket', options);
    const pending = (await createTicket({ title: 'Later' }, { callId: 'c1' })) as any;
    assert.equal(pending.status, 'pending_approval');
    assert.equal(pending.requestId, `${options.scope}:c1`);
    assert.match(pending.message, /has not run/);
    const again = (await createTicket({ title: 'Later' }, { callId: 'c1' })) as any;
    assert.equal(again.requestId, pending.requestId, 'a retried call is the same request');
    const check = gatewayRequestChecker(options);
    assert.equal(((await check(pending.requestId)) as any).status, 'pending_approval');
    await decide(gw, pending.requestId, 'approve');
    const done = await eventually<{ title?: string }>(async () => {
      const value = (await check(pending.requestId)) as { status?: string; title?: string };
      return value.status === 'pending_approval' ? undefined : value;
    }, 'the approved request to finish');
    assert.equal(done.title, 'Later');
    assert.equal(((await check('someone-elses-request')) as any).status, 'invalid_request');
  });

  describe('HTTP agent API', () => {
    const token = (claims: Partial<{ sub: string; tenant: string; roles: string[] }> = {}) =>
      issueAgentToken({ sub: 'triage-bot', tenant: 'acme', roles: ['agent_runtime'], ...claims }, { privateKeyPem: agentKey });
    const post = async (body: unknown, bearer?: string) => gw.api('POST', '/v1/tool-requests', { token: bearer ?? (await token()), body });
    const base = (extra: Record<string, unknown> = {}) => ({ environment: 'production', tool: 'read_kb', args: { query: 'x' }, ...extra });

    test('401 without a token, with an approver token, and with an agent token from another key', async () => {
      assert.equal((await gw.api('POST', '/v1/tool-requests', { body: base() })).status, 401);
      const approver = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      const asApprover = await post(base(), approver);
      assert.equal(asApprover.status, 401);
      assert.equal(asApprover.body.error.code, 'invalid_token');
      const other = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      const forged = await issueAgentToken({ sub: 'triage-bot', tenant: 'acme', roles: ['agent_runtime'] }, { privateKeyPem: await exportPKCS8(other.privateKey) });
      assert.equal((await post(base(), forged)).status, 401);
    });

    test('400 names the field of a bad body; malformed JSON is 400 too', async () => {
      const missing = await post({ environment: 'production', args: {} });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error.code, 'invalid_body');
      assert.deepEqual(missing.body.error.fields, ['tool']);
      const tooLong = await post(base({ wait: 61 }));
      assert.equal(tooLong.status, 400);
      assert.deepEqual(tooLong.body.error.fields, ['wait']);
      const unknown = await post(base({ sudo: true }));
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.error.message, /sudo/);
      const broken = await gw.api('POST', '/v1/tool-requests', { token: await token(), rawBody: '{"tool":' });
      assert.equal(broken.status, 400);
    });

    test('403 when the body names another actor, roles the token does not grant, or another tenant', async () => {
      const other = await post(base({ actor: { id: 'someone-else', type: 'agent', roles: [] } }));
      assert.equal(other.status, 403);
      assert.equal(other.body.error.code, 'actor_mismatch');
      const roles = await post(base({ actor: { id: 'triage-bot', type: 'agent', roles: ['admin'] } }));
      assert.equal(roles.status, 403);
      const tenant = await post(base({ tenant: 'globex' }));
      assert.equal(tenant.status, 403);
      assert.equal(tenant.body.error.code, 'wrong_tenant');
    });

    test('an allowed call with wait answers 200 with the outcome; an unknown tool is a denial outcome', async () => {
      const ok = await post(base({ wait: 10, actor: agentActor, tenant: 'acme' }));
      assert.equal(ok.status, 200);
      assert.equal(ok.body.state, 'completed');
      assert.equal(ok.body.outcome.actor.id, 'triage-bot');
      assert.ok(Array.isArray(ok.body.result.articles));
      const unknown = await post({ environment: 'production', tool: 'drop_tables', args: {}, wait: 10 });
      assert.equal(unknown.status, 200);
      assert.equal(unknown.body.state, 'denied');
      assert.equal(unknown.body.outcome.code, 'unknown_tool');
    });

    test('a wait that runs out answers 202 with a status URL; the same requestId twice is one request; another tenant sees 404', async () => {
      const requestId = unique('http');
      const body = { requestId, environment: 'production', tool: 'create_ticket', args: { title: 'Via HTTP' }, wait: 1 };
      const before = effects.create_ticket!.length;
      const started = Date.now();
      const first = await post(body);
      assert.equal(first.status, 202);
      assert.ok(Date.now() - started >= 900, 'it waited about the second it was given');
      assert.equal(first.body.requestId, requestId);
      assert.equal(first.body.state, 'pending_approval');
      assert.equal(first.body.statusUrl, `/v1/tool-requests/${requestId}`);
      const second = await post({ ...body, wait: 0 });
      assert.equal(second.status, 202);
      assert.equal(second.body.requestId, requestId);
      const conflict = await post({ ...body, args: { title: 'Something else' } });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.body.error.code, 'conflict');

      const status = await gw.api('GET', first.body.statusUrl, { token: await token() });
      assert.equal(status.status, 200);
      assert.equal(status.body.state, 'pending_approval');
      assert.equal((await gw.api('GET', first.body.statusUrl, { token: await token({ tenant: 'globex' }) })).status, 404);
      assert.equal((await gw.api('GET', '/v1/tool-requests/no-such-request', { token: await token() })).status, 404);
      assert.equal((await gw.api('GET', `${first.body.statusUrl}?wait=99`, { token: await token() })).status, 400);

      await decide(gw, requestId, 'approve');
      const done = await gw.api('GET', `${first.body.statusUrl}?wait=10`, { token: await token() });
      assert.equal(done.status, 200);
      assert.equal(done.body.state, 'completed');
      assert.equal(done.body.result.title, 'Via HTTP');
      const replay = await post(body);
      assert.equal(replay.status, 200, 'the same request again answers with its recorded outcome');
      assert.equal(effects.create_ticket!.length - before, 1, 'executed once');
    });
  });
});

function usage() {
  return {
    inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: 5, text: 5, reasoning: 0 },
  };
}
