/**
 * End-user confirmation through the agent frameworks, on a real Temporal server: a policy whose
 * plan accepts the end user (`end_user: true`), an agent token acting on behalf of maria, and
 * three ways of asking her — the AI SDK's tool approval (mock language model), the OpenAI Agents
 * SDK's interruption (scripted model), and an MCP client that answers the gateway's elicitation.
 * Her answer is relayed by the agent runtime with its agent credential, bound to the digest she
 * was shown, and recorded as hers: `outcome.confirmation`, never a vote in `approvals`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ElicitRequestSchema, type CallToolResult, type ElicitRequest, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { Agent, setTracingDisabled, tool as agentTool } from '@openai/agents';
import { ScriptedModel, assistantMessage, functionCall } from '@openai/agents/testing';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { generateText, jsonSchema, stepCountIs, tool, type ModelMessage } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { declineToolgateCalls, withToolgate } from '../../src/adapters/ai-sdk.js';
import { ToolgateAgents } from '../../src/adapters/openai-agents.js';
import type { ToolGateway } from '../../src/client/index.js';
import { silentLogger } from '../../src/logger.js';
import { mcpToolHandlers } from '../../src/mcp/executor.js';
import { createMcpGatewayServer } from '../../src/mcp/gateway-server.js';
import { pinTools } from '../../src/mcp/pin.js';
import { PolicyStore } from '../../src/policy/store.js';
import type { ToolContext } from '../../src/tools/types.js';
import { startGateway, startTemporal, waitForState, type GatewayEnv } from '../helpers/gateway-env.js';
import { argsOf, policy } from '../helpers/policy-builder.js';

setTracingDisabled(true);

const FIXTURE = resolve('test/fixtures/mcp-downstream.ts');

/** The policy of these tests; the downstream MCP server keeps its state (effects, description) in `stateDir`. */
const policyYaml = (stateDir: string) =>
  policy()
    .mcpServer('orders', { command: process.execPath, args: ['--import', 'tsx', FIXTURE], env: { DOWNSTREAM_STATE: stateDir } })
    .tool('send_note', { approval: 'quick_confirm' })
    .tool('refund_order', { approval: 'quick_confirm' })
    .tool('close_account', { risk: 'high', approval: 'support' })
    .plan('quick_confirm', { endUser: true, groups: ['support'], minApprovals: 1, expiresAfter: '10m' })
    .plan('support', { groups: ['support'], expiresAfter: '10m' })
    .codeTool('send_note', { runAs: 'svc-notes', args: argsOf({ text: 'string' }, { required: ['text'] }) })
    .codeTool('close_account', { runAs: 'svc-accounts', args: argsOf({ text: 'string' }, { required: ['text'] }) })
    .manifest('refund_order', {
      description: 'Refund an order to the original payment method.',
      run_as: 'svc-orders-refund',
      adapter: { type: 'mcp', server: 'orders', tool: 'refund_order' },
      args: argsOf({ orderId: 'string', amount: 'number' }, { required: ['orderId', 'amount'] }),
    })
    .yaml();

let seq = 0;
const unique = (what: string) => `${what}-${process.pid}-${Date.now()}-${++seq}`;
const usage = () => ({ inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 5, text: 5, reasoning: 0 } });

describe('end-user confirmation through the agent frameworks', () => {
  let env: TestWorkflowEnvironment;
  let gw: GatewayEnv;
  let dir: string;
  let store: PolicyStore;
  /** The agent's front-door client: its token acts on behalf of maria, the end user. */
  let agent: ToolGateway;
  /** Notes the worker sent, by request id. */
  const notes = new Map<string, string>();
  const taskQueue = `end-user-${process.pid}`;

  const effects = async () =>
    (await readFile(join(dir, 'effects.jsonl'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { tool: string; args: Record<string, unknown>; key: string });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'toolgate-end-user-'));
    const policyFile = join(dir, 'policy.yaml');
    await writeFile(policyFile, policyYaml(dir));
    await pinTools([policyFile]);
    store = new PolicyStore();
    assert.equal((await store.load([policyFile])).error, undefined);
    env = await startTemporal();
    const record = async (context: ToolContext) => {
      notes.set(context.requestId, String(context.args.text));
      return { sent: context.args.text };
    };
    gw = await startGateway(env, {
      taskQueue,
      policy: policyYaml(dir),
      policyStore: store,
      tools: { ...mcpToolHandlers(() => store.current().policy), send_note: record, close_account: record },
    });
    agent = await gw.gateway.as({
      id: 'support-bot',
      tenant: 'acme',
      environment: 'production',
      roles: ['agent_runtime'],
      onBehalfOf: [{ id: 'Maria', type: 'human' }],
    });
  });

  after(async () => {
    await gw?.close();
    await env?.teardown();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('Vercel AI SDK', () => {
    const aiTools = {
      send_note: tool({
        description: 'Send a note to the customer',
        inputSchema: jsonSchema<{ text: string }>({ type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }),
        execute: async (): Promise<unknown> => assert.fail('runs on the worker'),
      }),
    };
    const model = (text: string) =>
      new MockLanguageModelV4({
        doGenerate: async (options) => {
          if (options.prompt.some((message) => message.role === 'tool'))
            return {
              content: [{ type: 'text', text: `tool said ${JSON.stringify(options.prompt.at(-1))}` }],
              finishReason: { unified: 'stop', raw: 'stop' },
              usage: usage(),
              warnings: [],
            };
          return {
            content: [{ type: 'tool-call', toolCallId: 'call-1', toolName: 'send_note', input: JSON.stringify({ text }) }],
            finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
            usage: usage(),
            warnings: [],
          };
        },
      });

    test("the user approves in the AI SDK's flow: the call runs on maria's confirmation, recorded as hers", async () => {
      const scope = unique('ai');
      const tools = withToolgate(aiTools, { gateway: agent, scope, endUserConfirmation: true });
      const llm = model('Your refund is on its way');
      const prompt: ModelMessage[] = [{ role: 'user', content: 'Tell the customer.' }];
      const first = await generateText({ model: llm, tools, messages: prompt, stopWhen: stepCountIs(3) });
      const asked = first.content.find((part) => part.type === 'tool-approval-request');
      assert.ok(asked, 'the AI SDK asks the user');
      const requestId = `${scope}:call-1`;
      const pending = await waitForState(gw, requestId, 'pending_approval');
      assert.equal(notes.has(requestId), false, 'nothing ran before she answered');

      const second = await generateText({
        model: llm,
        tools,
        messages: [
          ...prompt,
          ...first.response.messages,
          { role: 'tool', content: [{ type: 'tool-approval-response', approvalId: asked.approvalId, approved: true }] },
        ],
        stopWhen: stepCountIs(3),
      });
      assert.match(second.text, /Your refund is on its way/);
      const status = await gw.status(requestId);
      assert.equal(status.outcome?.status, 'completed');
      assert.deepEqual(
        { principal: status.outcome?.confirmation?.principal, decision: status.outcome?.confirmation?.decision, digest: status.outcome?.confirmation?.digest },
        { principal: 'maria', decision: 'approve', digest: pending.digest },
      );
      assert.deepEqual(status.outcome?.approvals, [], "the end user's confirmation is never an approver's vote");
      assert.equal(notes.get(requestId), 'Your refund is on its way');
    });

    test('the user denies: declineToolgateCalls relays it and the request is rejected by her; nothing runs', async () => {
      const scope = unique('ai');
      const tools = withToolgate(aiTools, { gateway: agent, scope, endUserConfirmation: true });
      const llm = model('Closing your ticket');
      const prompt: ModelMessage[] = [{ role: 'user', content: 'Tell the customer.' }];
      const first = await generateText({ model: llm, tools, messages: prompt, stopWhen: stepCountIs(3) });
      const asked = first.content.find((part) => part.type === 'tool-approval-request');
      assert.ok(asked);
      const requestId = `${scope}:call-1`;
      const messages: ModelMessage[] = [
        ...prompt,
        ...first.response.messages,
        { role: 'tool', content: [{ type: 'tool-approval-response', approvalId: asked.approvalId, approved: false, reason: 'not yet' }] },
      ];
      assert.deepEqual(await declineToolgateCalls(messages, { gateway: agent, scope }), [{ toolCallId: 'call-1', requestId, relayed: true }]);
      const status = await waitForState(gw, requestId, 'rejected');
      assert.equal(status.outcome?.status, 'rejected');
      assert.equal((status.outcome as { rejectedBy?: string }).rejectedBy, 'maria');
      const answered = await generateText({ model: llm, tools, messages, stopWhen: stepCountIs(3) });
      assert.match(answered.text, /execution-denied/);
      assert.equal(notes.has(requestId), false);
    });
  });

  test('OpenAI Agents SDK: the interruption is put to maria; approving it and resuming runs the call on her confirmation', async () => {
    const scope = unique('oa');
    const agents = new ToolgateAgents({ gateway: agent, scope });
    const tools = ['send_note', 'close_account'].map((name) =>
      agentTool({
        name,
        description: name,
        parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false },
        strict: true,
        execute: async () => assert.fail('runs on the worker'),
      }),
    );
    const model = new ScriptedModel([[functionCall('send_note', { text: 'Refund approved' }, { callId: 'fc-1' })], [assistantMessage('Told them.')]]);
    const support = new Agent({ name: 'support', instructions: 'Help.', model, tools: agents.tools(tools) });
    const first = await agents.run(support, 'Tell the customer.');
    assert.equal(first.endUser.length, 1);
    const asked = first.endUser[0]!;
    assert.deepEqual({ args: asked.args, plan: asked.plan }, { args: { text: 'Refund approved' }, plan: 'quick_confirm' });
    assert.equal(notes.has(asked.requestId), false);

    first.result.state.approve(asked.item);
    const resumed = await agents.run(support, first.result.state);
    assert.equal(resumed.result.finalOutput, 'Told them.');
    const status = await gw.status(asked.requestId);
    assert.equal(status.outcome?.confirmation?.principal, 'maria');
    assert.equal(status.outcome?.confirmation?.digest, asked.digest);
    assert.deepEqual(status.outcome?.approvals, []);
    assert.equal(notes.get(asked.requestId), 'Refund approved');
  });

  describe('MCP gateway with elicitation', () => {
    /** An MCP client connected in-process to a gateway server of `agent`, answering elicitations with `answer` (none: no capability). */
    const connect = async (answer?: (request: ElicitRequest) => ElicitResult, wait = 30_000) => {
      const server = createMcpGatewayServer({ policy: () => store.current().policy, logger: silentLogger(), wait }, agent);
      const client = new Client({ name: 'chat-app', version: '1.0.0' }, { capabilities: answer ? { elicitation: {} } : {} });
      const asked: ElicitRequest[] = [];
      if (answer)
        client.setRequestHandler(ElicitRequestSchema, async (request) => {
          asked.push(request);
          return answer(request);
        });
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
      return { client, asked, close: () => client.close() };
    };

    test('accept with a changed amount → adjust: the refund runs with her amount, recorded as her confirmation', async () => {
      const requestId = unique('mcp-adjust');
      const mcp = await connect(() => ({ action: 'accept', content: { orderId: 'A-7', amount: 40 } }));
      try {
        const result = (await mcp.client.callTool({
          name: 'refund_order',
          arguments: { orderId: 'A-7', amount: 120 },
          _meta: { 'toolgate/requestId': requestId },
        })) as CallToolResult;
        assert.equal(result.isError, undefined, JSON.stringify(result));
        assert.deepEqual(result.structuredContent, { refundId: 'R-A-7', amount: 40 });
        assert.equal(mcp.asked.length, 1);
        const form = mcp.asked[0]!.params as { message: string; requestedSchema: { properties: Record<string, { default?: unknown }> } };
        assert.match(form.message, /refund_order/);
        assert.match(form.message, /"amount":120/);
        assert.equal(form.requestedSchema.properties.amount?.default, 120);
        assert.equal(form.requestedSchema.properties.orderId?.default, 'A-7');
        const status = await gw.status(requestId);
        assert.equal(status.outcome?.confirmation?.principal, 'maria');
        assert.deepEqual(status.outcome?.approvals, []);
        const ran = (await effects()).filter((e) => e.key.endsWith(requestId));
        assert.deepEqual(
          ran.map((e) => e.args),
          [{ orderId: 'A-7', amount: 40 }],
        );
      } finally {
        await mcp.close();
      }
    });

    test('decline → the request is rejected by her and nothing runs', async () => {
      const requestId = unique('mcp-decline');
      const mcp = await connect(() => ({ action: 'decline' }));
      try {
        const result = (await mcp.client.callTool({
          name: 'refund_order',
          arguments: { orderId: 'A-8', amount: 10 },
          _meta: { 'toolgate/requestId': requestId },
        })) as CallToolResult;
        assert.equal(result.isError, true);
        assert.equal((result.structuredContent as { status: string }).status, 'rejected');
        const status = await gw.status(requestId);
        assert.equal((status.outcome as { rejectedBy?: string }).rejectedBy, 'maria');
        assert.equal((await effects()).filter((e) => e.key.endsWith(requestId)).length, 0);
      } finally {
        await mcp.close();
      }
    });

    test('cancel, or a client without elicitation: nobody is asked on her behalf; the call waits for approvers', async () => {
      const cancelled = unique('mcp-cancel');
      const mcp = await connect(() => ({ action: 'cancel' }), 1_000);
      const plain = await connect(undefined, 1_000);
      try {
        for (const [client, requestId] of [
          [mcp.client, cancelled],
          [plain.client, unique('mcp-plain')],
        ] as const) {
          const result = (await client.callTool({
            name: 'refund_order',
            arguments: { orderId: 'A-9', amount: 5 },
            _meta: { 'toolgate/requestId': requestId },
          })) as CallToolResult;
          assert.equal((result.structuredContent as { status: string }).status, 'pending_approval');
          const status = await gw.status(requestId);
          assert.equal(status.state, 'pending_approval');
          assert.deepEqual(status.confirmations ?? [], []);
          // An approver of the plan's group still decides it.
          const token = await gw.token({ sub: 'sam', tenant: 'acme', groups: ['support'] });
          const decided = await gw.api('POST', `/v1/approvals/${requestId}/decision`, { token, body: { decision: 'reject', digest: status.digest } });
          assert.equal(decided.status, 200, JSON.stringify(decided.body));
          assert.equal((await waitForState(gw, requestId, 'rejected')).outcome?.status, 'rejected');
        }
        assert.equal(mcp.asked.length, 1, 'the client with elicitation was asked once');
      } finally {
        await mcp.close();
        await plain.close();
      }
    });
  });
});
