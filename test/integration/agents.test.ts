/**
 * Agents plugging in where they are, on a real Temporal server: the Vercel AI SDK and the OpenAI
 * Agents SDK driven by mock models (no model provider is contacted), the plain function wrapper,
 * and the HTTP agent API (the front door) for agents in other languages. Every agent holds an agent
 * token and nothing else: who it is comes from the token, and a body may only restate it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Agent, RunState, run, setTracingDisabled, tool as agentTool } from '@openai/agents';
import { ScriptedModel, assistantMessage, functionCall } from '@openai/agents/testing';
import { generateText, jsonSchema, stepCountIs, tool } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { exportPKCS8, generateKeyPair } from 'jose';
import { withToolgate, aiSdkToolHandlers } from '../../src/adapters/ai-sdk.js';
import { gatewayFunction, gatewayRequestChecker } from '../../src/adapters/function.js';
import { ToolgateAgents, openAiToolHandlers } from '../../src/adapters/openai-agents.js';
import { AGENT_AUDIENCE, AGENT_TOKEN_TYP, DEFAULT_AGENT_ISSUER, issueAgentToken, type AgentClaims } from '../../src/auth/agent-tokens.js';
import { ToolNotGranted, type ToolGateway } from '../../src/client/index.js';
import { searchAttributes, workflowIdFor } from '../../src/shared/index.js';
import { eventually, refusedAtEdge, startGateway, startTemporal, type GatewayEnv, waitForState } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';

setTracingDisabled(true);

const POLICY = policy()
  .plan('manager', { groups: ['manager'] })
  .tool('read_kb')
  .tool('create_ticket', { risk: 'medium', approval: 'manager' })
  .tool('prod_db_write', { risk: 'critical', environments: ['staging'] })
  .codeTool('read_kb', { runAs: 'svc-kb', args: argsOf({ query: 'string' }, { required: ['query'] }) })
  .codeTool('create_ticket', { runAs: 'svc-ticketing', args: argsOf({ title: 'string' }, { required: ['title'] }) })
  .codeTool('prod_db_write', { runAs: 'svc-db', args: argsOf({ statement: 'string' }, { required: ['statement'] }) })
  .yaml();

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
/** The agent the adapters run as: its token carries all of this; the adapters' options carry none of it. */
const triageBot = { id: agentActor.id, roles: agentActor.roles, tenant: 'acme', environment: 'production' };
let seq = 0;
const unique = (what: string) => `${what}-${process.pid}-${Date.now()}-${++seq}`;

async function decide(gw: GatewayEnv, requestId: string, decision: 'approve' | 'reject', reason?: string, tenant = 'acme'): Promise<void> {
  const pending = await waitForState(gw, requestId, 'pending_approval', { tenant });
  const token = await gw.token({ sub: 'maria', tenant, groups: ['manager'] });
  const res = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token, body: { decision, digest: pending.digest, ...(reason && { reason }) } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

describe('agents plug in: framework adapters and the HTTP agent API', () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  /** The SDK of triage-bot: a front-door client holding its agent token. */
  let triage: ToolGateway;
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
    });
    triage = await gw.gateway.as(triageBot);
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
      tools: withToolgate(aiTools, { gateway: triage, scope }),
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
    const agents = new ToolgateAgents({ gateway: triage, scope });
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
    const agents = new ToolgateAgents({ gateway: triage, scope });
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
    const options = { gateway: triage, scope: unique('fn'), wait: 0 };
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
    assert.equal(((await check('no-such-request')) as any).status, 'invalid_request');
    // A request another agent of the same tenant started is not this agent's to read.
    const other = await gw.gateway.start({
      requestId: unique('fn-other'),
      actor: { id: 'other-bot', type: 'agent', roles: ['agent_runtime'] },
      tenant: 'acme',
      environment: 'production',
      tool: 'create_ticket',
      args: { title: 'Theirs' },
    });
    await waitForState(gw, other.requestId, 'pending_approval');
    assert.equal(((await check(other.requestId)) as any).status, 'invalid_request');
  });

  describe('HTTP agent API', () => {
    const claimsOf = (extra: Partial<AgentClaims> = {}): AgentClaims => ({
      sub: 'triage-bot',
      tenant: 'acme',
      roles: ['agent_runtime'],
      environment: 'production',
      ...extra,
    });
    const token = (extra: Partial<AgentClaims> = {}) => gw.agentToken(claimsOf(extra));
    /** An agent token signed with the trusted key, claims written by hand (an issuer that spells things its own way, or forgets one). */
    const handSigned = (claims: Record<string, unknown>) =>
      gw.signWithTrustedKey(
        (jwt) =>
          jwt.setProtectedHeader({ alg: 'EdDSA', typ: AGENT_TOKEN_TYP }).setIssuer(DEFAULT_AGENT_ISSUER).setAudience(AGENT_AUDIENCE).setExpirationTime('10m'),
        { sub: 'triage-bot', tenant: 'acme', roles: ['agent_runtime'], type: 'agent', environment: 'production', ...claims },
      );
    const post = async (body: unknown, bearer?: string) => gw.api('POST', '/v1/tool-requests', { token: bearer ?? (await token()), body });
    const base = (extra: Record<string, unknown> = {}) => ({ tool: 'read_kb', args: { query: 'x' }, ...extra });
    /** Whether a workflow exists under this id (the front door started it). */
    const started = async (workflowId: string) =>
      gw.ops.workflow
        .getHandle(workflowId)
        .describe()
        .then(
          () => true,
          (err: unknown) => {
            if (err instanceof WorkflowNotFoundError) return false;
            throw err;
          },
        );
    /** `toolgate_refused_attempts_total` of the agent API for `code`, from the API's metrics. */
    const refusedCount = (code: string) => refusedAtEdge(gw.apiUrl, { surface: 'agent_api', code });

    test('401 without a token, with an approver token, a foreign key, an expired token, or a token without an environment', async () => {
      const anonymous = await gw.api('POST', '/v1/tool-requests', { body: base() });
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 'unauthenticated');
      const approver = await gw.token({ sub: 'maria', tenant: 'acme', groups: ['manager'] });
      const asApprover = await post(base(), approver);
      assert.equal(asApprover.status, 401);
      assert.equal(asApprover.body.error.code, 'invalid_token');
      const other = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      const forged = await issueAgentToken(claimsOf(), { privateKeyPem: await exportPKCS8(other.privateKey) });
      assert.equal((await post(base(), forged)).status, 401);
      assert.equal((await post(base(), await gw.agentToken(claimsOf(), { ttlSeconds: -120 }))).status, 401, 'expired');
      // The token binds where the agent acts: one that does not say so is refused, even signed by the trusted key.
      const noEnvironment = await post(base({ environment: 'production' }), await handSigned({ environment: undefined }));
      assert.equal(noEnvironment.status, 401);
      assert.equal(noEnvironment.body.error.code, 'invalid_token');
      assert.match(noEnvironment.body.error.message, /environment/);
      assert.equal((await gw.api('GET', '/v1/agent', { token: await handSigned({ environment: undefined }) })).status, 401);
      assert.equal((await gw.api('GET', '/v1/agent')).status, 401);
    });

    test('400 names the field of a bad body; malformed JSON is 400 too', async () => {
      const missing = await post({ args: {} });
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

    test("a body that restates the token's identity is accepted, also under another spelling of the actor id", async () => {
      const restated = await post(base({ wait: 10, actor: agentActor, tenant: 'acme', environment: 'production' }));
      assert.equal(restated.status, 200, JSON.stringify(restated.body));
      assert.equal(restated.body.state, 'completed');
      assert.deepEqual(restated.body.outcome.actor, agentActor);
      const spelled = await post(base({ wait: 10, actor: { ...agentActor, id: 'Triage-Bot', roles: ['agent_runtime'] } }));
      assert.equal(spelled.status, 200, JSON.stringify(spelled.body));
      assert.equal(spelled.body.outcome.actor.id, 'triage-bot');
      const chain = [{ id: 'maria', type: 'human' as const }];
      const forMaria = await post(base({ wait: 10, onBehalfOf: [{ id: 'Maria', type: 'human' }] }), await token({ onBehalfOf: chain }));
      assert.equal(forMaria.status, 200, JSON.stringify(forMaria.body));
      assert.equal(forMaria.body.state, 'completed');
    });

    test('403 identity_mismatch names each field the body changes — actor id, type, roles (even a subset), tenant, environment, on-behalf-of — and starts nothing', async () => {
      const before = await refusedCount('identity_mismatch');
      const maria = [{ id: 'maria', type: 'human' as const }];
      const cases: [string, Record<string, unknown>, string[], Partial<AgentClaims>?][] = [
        ['another actor', { actor: { ...agentActor, id: 'someone-else' } }, ['actor.id']],
        ['another actor type', { actor: { ...agentActor, type: 'human' } }, ['actor.type']],
        ['a role the token does not grant', { actor: { ...agentActor, roles: ['agent_runtime', 'admin'] } }, ['actor.roles']],
        ['a subset of the roles', { actor: { ...agentActor, roles: [] } }, ['actor.roles']],
        ['another tenant', { tenant: 'globex' }, ['tenant']],
        ['another environment', { environment: 'staging' }, ['environment']],
        ['a principal the token does not name', { onBehalfOf: maria }, ['onBehalfOf']],
        ['another principal', { onBehalfOf: [{ id: 'carol', type: 'human' }] }, ['onBehalfOf'], { onBehalfOf: maria }],
        ['no principal where the token names one', { onBehalfOf: [] }, ['onBehalfOf'], { onBehalfOf: maria }],
        ['several at once', { actor: { ...agentActor, id: 'root' }, tenant: 'globex', environment: 'staging' }, ['actor.id', 'tenant', 'environment']],
      ];
      for (const [name, identity, fields, claims] of cases) {
        const requestId = unique('mismatch');
        const res = await post(base({ requestId, wait: 5, ...identity }), await token(claims));
        assert.equal(res.status, 403, `${name}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'identity_mismatch', name);
        assert.deepEqual(res.body.error.fields, fields, name);
        for (const tenant of ['acme', 'globex']) assert.equal(await started(workflowIdFor(tenant, requestId)), false, `${name}: nothing was started`);
      }
      assert.equal(await refusedCount('identity_mismatch'), before + cases.length, 'each refusal is counted at the edge');
    });

    test("403 tool_not_granted for a tool outside the token's tools; the granted tool still runs", async () => {
      const narrow = await token({ tools: ['read_kb'] });
      const requestId = unique('narrow');
      const refused = await post({ requestId, tool: 'create_ticket', args: { title: 'Not mine' } }, narrow);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error.code, 'tool_not_granted');
      assert.deepEqual(refused.body.error.fields, ['tool']);
      assert.equal(await started(workflowIdFor('acme', requestId)), false);
      const granted = await post(base({ wait: 10 }), narrow);
      assert.equal(granted.status, 200);
      assert.equal(granted.body.state, 'completed');
      // The SDK turns it into a typed error the model can read.
      const sdk = await gw.gateway.as({ ...triageBot, tools: ['read_kb'] });
      await assert.rejects(
        sdk.call({ tool: 'create_ticket', args: { title: 'x' } }),
        (err: unknown) => err instanceof ToolNotGranted && err.toToolResult().status === 'denied',
      );
    });

    test('an allowed call with wait answers 200 with the outcome; an unknown tool is a denial outcome', async () => {
      const ok = await post(base({ wait: 10 }));
      assert.equal(ok.status, 200);
      assert.equal(ok.body.state, 'completed');
      assert.equal(ok.body.outcome.actor.id, 'triage-bot');
      assert.equal(ok.body.outcome.tenant, 'acme');
      assert.ok(Array.isArray(ok.body.result.articles));
      const unknown = await post({ tool: 'drop_tables', args: {}, wait: 10 });
      assert.equal(unknown.status, 200);
      assert.equal(unknown.body.state, 'denied');
      assert.equal(unknown.body.outcome.code, 'unknown_tool');
      // The environment comes from the token: a staging agent's call is judged in staging.
      const staging = await post({ tool: 'prod_db_write', args: { statement: 'UPDATE x' }, wait: 10 }, await token({ environment: 'staging' }));
      assert.equal(staging.status, 200);
      assert.equal(staging.body.state, 'completed');
      const production = await post({ tool: 'prod_db_write', args: { statement: 'UPDATE x' }, wait: 10 });
      assert.equal(production.body.state, 'denied');
      assert.equal(production.body.outcome.code, 'environment_not_allowed');
    });

    test('a wait that runs out answers 202 with a status URL; the same requestId twice is one request; only its agent reads it', async () => {
      const requestId = unique('http');
      const body = { requestId, tool: 'create_ticket', args: { title: 'Via HTTP' }, wait: 1 };
      const before = effects.create_ticket!.length;
      const startedAt = Date.now();
      const first = await post(body);
      assert.equal(first.status, 202);
      assert.ok(Date.now() - startedAt >= 900, 'it waited about the second it was given');
      assert.equal(first.body.requestId, requestId);
      assert.equal(first.body.state, 'pending_approval');
      assert.equal(first.body.statusUrl, `/v1/tool-requests/${requestId}`);
      const second = await post({ ...body, wait: 0 });
      assert.equal(second.status, 202);
      assert.equal(second.body.requestId, requestId);
      const conflict = await post({ ...body, args: { title: 'Something else' } });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.body.error.code, 'conflict');
      const otherAgent = await post(body, await token({ sub: 'other-bot' }));
      assert.equal(otherAgent.status, 409, 'another agent of the tenant cannot attach to the request');

      const status = await gw.api('GET', first.body.statusUrl, { token: await token() });
      assert.equal(status.status, 200);
      assert.equal(status.body.state, 'pending_approval');
      assert.equal((await gw.api('GET', first.body.statusUrl, { token: await token({ sub: 'other-bot' }) })).status, 404, 'another agent of the same tenant');
      assert.equal((await gw.api('GET', first.body.statusUrl, { token: await token({ tenant: 'globex' }) })).status, 404, 'another tenant');
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

    test("request ids are per tenant: an id globex used is free for acme, and each tenant's agent reads its own", async () => {
      const requestId = unique('shared-id');
      const globexToken = await token({ tenant: 'globex' });
      const globex = await post({ requestId, tool: 'create_ticket', args: { title: 'For globex' } }, globexToken);
      assert.equal(globex.status, 202, JSON.stringify(globex.body));
      const acme = await post({ requestId, tool: 'read_kb', args: { query: 'for acme' }, wait: 10 });
      assert.equal(acme.status, 200, JSON.stringify(acme.body));
      assert.equal(acme.body.state, 'completed');
      assert.equal(acme.body.outcome.workflowId, `toolreq/acme/${requestId}`);
      assert.equal(acme.body.outcome.tenant, 'acme');

      const described = await Promise.all(['globex', 'acme'].map((tenant) => gw.ops.workflow.getHandle(workflowIdFor(tenant, requestId)).describe()));
      assert.deepEqual(
        described.map((d) => d.workflowId),
        [`toolreq/globex/${requestId}`, `toolreq/acme/${requestId}`],
      );
      assert.notEqual(described[0]!.runId, described[1]!.runId, 'two different workflows');
      assert.deepEqual(
        described.map((d) => d.typedSearchAttributes.get(searchAttributes.tenant)),
        ['globex', 'acme'],
      );
      assert.deepEqual(
        described.map((d) => d.typedSearchAttributes.get(searchAttributes.tool)),
        ['create_ticket', 'read_kb'],
      );

      const globexView = await gw.api('GET', `/v1/tool-requests/${requestId}`, { token: globexToken });
      assert.equal(globexView.status, 200);
      assert.equal(globexView.body.state, 'pending_approval');
      assert.equal(globexView.body.tool, 'create_ticket');
      assert.equal((await gw.api('GET', `/v1/tool-requests/${requestId}`, { token: await token() })).body.tool, 'read_kb');
      // Globex's approver decides globex's request; acme's request is untouched by it.
      await decide(gw, requestId, 'reject', 'not today', 'globex');
      const rejected = await gw.api('GET', `/v1/tool-requests/${requestId}?wait=10`, { token: globexToken });
      assert.equal(rejected.body.state, 'rejected');
      assert.equal(rejected.body.outcome.workflowId, `toolreq/globex/${requestId}`);
    });

    test("GET /v1/agent answers the token's identity; the SDK reads the same", async () => {
      const plain = await gw.api('GET', '/v1/agent', { token: await token() });
      assert.equal(plain.status, 200);
      assert.deepEqual(plain.body, { id: 'triage-bot', type: 'agent', tenant: 'acme', environment: 'production', roles: ['agent_runtime'] });
      const full = await gw.api('GET', '/v1/agent', {
        token: await token({ sub: 'Triage-Bot', onBehalfOf: [{ id: 'Maria', type: 'human' }], tools: ['read_kb'] }),
      });
      assert.deepEqual(full.body, {
        id: 'triage-bot',
        type: 'agent',
        tenant: 'acme',
        environment: 'production',
        roles: ['agent_runtime'],
        onBehalfOf: [{ id: 'maria', type: 'human' }],
        tools: ['read_kb'],
      });
      assert.deepEqual(await triage.identity(), plain.body);
    });

    test("case and width variants of the sub are one agent: Bot and ｂｏｔ read each other's requests", async () => {
      const asBot = await token({ sub: 'Bot' });
      const asFullWidth = await handSigned({ sub: 'ｂｏｔ' }); // signed as written: the verifier folds it
      assert.equal((await gw.api('GET', '/v1/agent', { token: asFullWidth })).body.id, 'bot');
      assert.equal((await gw.api('GET', '/v1/agent', { token: asBot })).body.id, 'bot');

      const fromBot = unique('variant');
      const submitted = await post({ requestId: fromBot, tool: 'create_ticket', args: { title: 'From Bot' } }, asBot);
      assert.equal(submitted.status, 202);
      // Read by the other spelling until the request is waiting (the first answer may still say evaluating).
      const read = await eventually(async () => {
        const answer = await gw.api('GET', `/v1/tool-requests/${fromBot}`, { token: asFullWidth });
        assert.equal(answer.status, 200);
        return answer.body.state === 'pending_approval' ? answer : undefined;
      }, 'the request to be read as pending by the other spelling');
      assert.equal(read.body.state, 'pending_approval');
      assert.equal((await gw.status(fromBot)).actor.id, 'bot');
      const again = await post({ requestId: fromBot, tool: 'create_ticket', args: { title: 'From Bot' } }, asFullWidth);
      assert.equal(again.status, 202, 'the same request again, from the same agent under another spelling');

      const fromFullWidth = unique('variant');
      const done = await post(base({ requestId: fromFullWidth, wait: 10, actor: { id: 'BOT', type: 'agent', roles: ['agent_runtime'] } }), asFullWidth);
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.equal(done.body.outcome.actor.id, 'bot');
      const readBack = await gw.api('GET', `/v1/tool-requests/${fromFullWidth}`, { token: asBot });
      assert.equal(readBack.status, 200);
      assert.equal(readBack.body.state, 'completed');
      assert.equal((await gw.api('GET', `/v1/tool-requests/${fromFullWidth}`, { token: await token() })).status, 404, 'triage-bot is another agent');
    });
  });
});

function usage() {
  return {
    inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: 5, text: 5, reasoning: 0 },
  };
}
