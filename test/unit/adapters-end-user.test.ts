/**
 * End-user confirmation through the framework adapters, against a scripted front door behind the
 * real client SDK: the AI SDK's approval flow (needsApproval → tool-approval-request → the user's
 * response → execute relays `confirm`, `declineToolgateCalls` relays `decline`), the OpenAI Agents
 * SDK's interruptions (approve → invoke relays `confirm`, reject → `decline`), and the MCP
 * gateway's elicitation form and answer mapping. Requests that do not accept the end user behave
 * as before: nothing is asked, and nothing is relayed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Agent, run, setTracingDisabled, tool as agentTool } from '@openai/agents';
import { ScriptedModel, assistantMessage, functionCall } from '@openai/agents/testing';
import { generateText, jsonSchema, stepCountIs, tool, type ModelMessage } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { declineToolgateCalls, withToolgate } from '../../src/adapters/ai-sdk.js';
import { relayEndUserAnswer } from '../../src/adapters/core.js';
import { ToolgateAgents } from '../../src/adapters/openai-agents.js';
import { ToolGateway } from '../../src/client/index.js';
import { answerOf, elicitationForm } from '../../src/mcp/gateway-server.js';
import type { AgentRequestView, ToolOutcome } from '../../src/shared/index.js';

setTracingDisabled(true);

/** How the scripted policy treats each tool: the end user may confirm it, only approvers may, or it runs at once. */
const PLANS: Record<string, 'end_user' | 'approvers' | 'none'> = { send_note: 'end_user', refund: 'approvers', read_kb: 'none' };

interface FakeRequest {
  requestId: string;
  tool: string;
  args: Record<string, unknown>;
  digest: string;
  outcome?: ToolOutcome;
}

/**
 * A front door that knows end-user plans: a request of an `end_user` tool waits with
 * `endUserConfirmation` (its digest changes with its arguments), `POST …/confirmation` answers
 * as the agent API does (409 digest_mismatch / not_pending), and every body is recorded.
 */
class EndUserFrontDoor {
  readonly submitted: Record<string, unknown>[] = [];
  readonly confirmations: { requestId: string; body: Record<string, unknown> }[] = [];
  readonly requests = new Map<string, FakeRequest>();
  private digests = 0;

  gateway(): ToolGateway {
    return new ToolGateway({ url: 'http://front-door.test', token: 'tok', fetch: this.fetch, pollSeconds: 1 });
  }

  /** An approver edits the arguments: a new proposal, a new digest. */
  edit(requestId: string, args: Record<string, unknown>): void {
    const request = this.requests.get(requestId)!;
    request.args = args;
    request.digest = this.nextDigest();
  }

  private nextDigest(): string {
    this.digests += 1;
    return this.digests.toString(16).padStart(64, '0');
  }

  private finish(request: FakeRequest, fields: Record<string, unknown>): void {
    request.outcome = {
      requestId: request.requestId,
      workflowId: `toolreq/acme/${request.requestId}`,
      tool: request.tool,
      tenant: 'acme',
      ...fields,
    } as unknown as ToolOutcome;
  }

  view(request: FakeRequest): AgentRequestView {
    if (request.outcome) return { requestId: request.requestId, state: request.outcome.status, tool: request.tool, outcome: request.outcome };
    return {
      requestId: request.requestId,
      state: 'pending_approval',
      tool: request.tool,
      expiresAt: '2030-01-01T00:00:00.000Z',
      ...(PLANS[request.tool] === 'end_user' && { endUserConfirmation: { digest: request.digest, args: request.args, plan: 'quick_confirm' } }),
    };
  }

  readonly fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    if (init?.method === 'GET' && url.pathname === '/v1/agent')
      return json(200, { id: 'bot', type: 'agent', tenant: 'acme', environment: 'production', roles: ['r'], onBehalfOf: [{ id: 'maria', type: 'human' }] });
    if (init?.method === 'POST' && url.pathname === '/v1/tool-requests') {
      const body = JSON.parse(init.body as string) as { requestId: string; tool: string; args: Record<string, unknown> };
      this.submitted.push(body);
      let request = this.requests.get(body.requestId);
      if (!request) {
        request = { requestId: body.requestId, tool: body.tool, args: body.args, digest: this.nextDigest() };
        if (PLANS[body.tool] === 'none') this.finish(request, { status: 'completed', result: { ran: body.args } });
        this.requests.set(body.requestId, request);
      }
      return json(request.outcome ? 200 : 202, this.view(request));
    }
    const confirmation = /^\/v1\/tool-requests\/([^/]+)\/confirmation$/.exec(url.pathname);
    if (init?.method === 'POST' && confirmation) {
      const request = this.requests.get(decodeURIComponent(confirmation[1]!));
      if (!request) return json(404, { error: { code: 'not_found', message: 'no request of this agent' } });
      const body = JSON.parse(init.body as string) as { decision: string; digest: string; reason?: string; args?: Record<string, unknown> };
      this.confirmations.push({ requestId: request.requestId, body });
      if (request.outcome) return json(409, { error: { code: 'not_pending', message: 'the request is not pending' } });
      if (PLANS[request.tool] !== 'end_user') return json(403, { error: { code: 'not_eligible', message: 'the plan does not accept the end user' } });
      if (body.digest !== request.digest) return json(409, { error: { code: 'digest_mismatch', message: 'the request changed since it was shown' } });
      if (body.decision === 'confirm') this.finish(request, { status: 'completed', result: { ran: request.args } });
      if (body.decision === 'decline') this.finish(request, { status: 'rejected', rejectedBy: 'maria', reason: body.reason ?? 'declined' });
      if (body.decision === 'adjust') this.edit(request.requestId, body.args!);
      return json(200, this.view(request));
    }
    const read = /^\/v1\/tool-requests\/([^/]+)$/.exec(url.pathname);
    if (init?.method === 'GET' && read) {
      const request = this.requests.get(decodeURIComponent(read[1]!));
      if (!request) return json(404, { error: { code: 'not_found', message: 'no request of this agent' } });
      const deadline = Date.now() + Number(url.searchParams.get('wait') ?? 0) * 1000;
      while (!request.outcome && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      return json(200, this.view(request));
    }
    return json(404, { error: { code: 'not_found', message: 'no such route' } });
  };
}

const workerOnly = async (): Promise<unknown> => assert.fail('the original runs on the worker, never in the agent');

const aiTools = {
  send_note: tool({
    description: 'Send a note to the customer',
    inputSchema: jsonSchema<{ text: string }>({ type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }),
    execute: workerOnly,
  }),
  refund: tool({
    description: 'Refund an order',
    inputSchema: jsonSchema<{ orderId: string }>({ type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] }),
    execute: workerOnly,
  }),
};

const usage = () => ({
  inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 5, text: 5, reasoning: 0 },
});

/** A model that calls `toolName` once, then answers with the text of what it got back. */
function scriptedModel(toolName: string, input: Record<string, unknown>, toolCallId = 'call-1'): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    doGenerate: async (options) => {
      if (options.prompt.some((message) => message.role === 'tool'))
        return {
          content: [{ type: 'text', text: `saw ${JSON.stringify(options.prompt.at(-1))}` }],
          finishReason: { unified: 'stop', raw: 'stop' },
          usage: usage(),
          warnings: [],
        };
      return {
        content: [{ type: 'tool-call', toolCallId, toolName, input: JSON.stringify(input) }],
        finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
        usage: usage(),
        warnings: [],
      };
    },
  });
}

/** The AI SDK's first turn on `toolName`: the result, and the messages to continue the conversation with. */
async function firstTurn(door: EndUserFrontDoor, gateway: ToolGateway, toolName: string, input: Record<string, unknown>) {
  const model = scriptedModel(toolName, input);
  const tools = withToolgate(aiTools, { gateway, scope: 'conv', endUserConfirmation: true, wait: 0 });
  const prompt: ModelMessage[] = [{ role: 'user', content: 'Help the customer.' }];
  const result = await generateText({ model, tools, messages: prompt, stopWhen: stepCountIs(3) });
  return { model, tools, prompt, result, door };
}

describe('AI SDK: the end user confirms through the AI SDK approval flow', () => {
  test('needsApproval asks the user only where policy accepts them; approving relays confirm with the digest shown, then the outcome comes back', async () => {
    const door = new EndUserFrontDoor();
    const gateway = door.gateway();
    const { model, tools, prompt, result } = await firstTurn(door, gateway, 'send_note', { text: 'Your refund is on its way' });
    const asked = result.content.find((part) => part.type === 'tool-approval-request');
    assert.ok(asked, 'the AI SDK asks the user');
    assert.equal(door.requests.get('conv:call-1')?.outcome, undefined, 'submitted, still waiting for the user');
    const shownDigest = door.requests.get('conv:call-1')!.digest;
    assert.deepEqual(door.confirmations, [], 'nothing relayed before the user answers');

    const answered = await generateText({
      model,
      tools,
      messages: [
        ...prompt,
        ...result.response.messages,
        { role: 'tool', content: [{ type: 'tool-approval-response', approvalId: asked.approvalId, approved: true }] },
      ],
      stopWhen: stepCountIs(3),
    });
    assert.deepEqual(door.confirmations, [{ requestId: 'conv:call-1', body: { decision: 'confirm', digest: shownDigest } }]);
    assert.match(answered.text, /Your refund is on its way/, 'the model saw the tool result');
    assert.equal(door.requests.get('conv:call-1')?.outcome?.status, 'completed');
    assert.equal(door.submitted.length, 1, 'execute attached to the request needsApproval submitted; it did not submit again');
  });

  test('a denial is relayed by declineToolgateCalls as the end user decline; the AI SDK answers the model itself', async () => {
    const door = new EndUserFrontDoor();
    const gateway = door.gateway();
    const { model, tools, prompt, result } = await firstTurn(door, gateway, 'send_note', { text: 'Closing your account' });
    const asked = result.content.find((part) => part.type === 'tool-approval-request');
    assert.ok(asked);
    const messages: ModelMessage[] = [
      ...prompt,
      ...result.response.messages,
      { role: 'tool', content: [{ type: 'tool-approval-response', approvalId: asked.approvalId, approved: false, reason: 'not what I asked' }] },
    ];
    const declined = await declineToolgateCalls(messages, { gateway, scope: 'conv' });
    assert.deepEqual(declined, [{ toolCallId: 'call-1', requestId: 'conv:call-1', relayed: true }]);
    const digest = door.requests.get('conv:call-1')!.digest;
    assert.deepEqual(door.confirmations, [{ requestId: 'conv:call-1', body: { decision: 'decline', digest, reason: 'not what I asked' } }]);
    assert.equal(door.requests.get('conv:call-1')?.outcome?.status, 'rejected');
    const answered = await generateText({ model, tools, messages, stopWhen: stepCountIs(3) });
    assert.match(answered.text, /execution-denied/);
    assert.deepEqual(await declineToolgateCalls(messages, { gateway, scope: 'conv' }), [], 'a request that ended is not declined again');
    assert.equal(door.confirmations.length, 1);
  });

  test('a plan that does not accept the end user: no approval asked, execute waits for approvers as before', async () => {
    const door = new EndUserFrontDoor();
    const { result } = await firstTurn(door, door.gateway(), 'refund', { orderId: 'A-1' });
    assert.equal(
      result.content.some((part) => part.type === 'tool-approval-request'),
      false,
    );
    const output = result.steps[0]!.toolResults[0]!.output as { status: string; requestId: string };
    assert.deepEqual({ status: output.status, requestId: output.requestId }, { status: 'pending_approval', requestId: 'conv:call-1' });
    assert.deepEqual(door.confirmations, []);
  });

  test('approved in another process after an approver changed the arguments: nothing is confirmed for the user', async () => {
    const door = new EndUserFrontDoor();
    const { model, prompt, result } = await firstTurn(door, door.gateway(), 'send_note', { text: 'Refund 10' });
    const asked = result.content.find((part) => part.type === 'tool-approval-request');
    assert.ok(asked);
    door.edit('conv:call-1', { text: 'Refund 1000' });
    // A fresh gateway client: this process never showed the proposal, so only the call's own arguments can vouch for it.
    const elsewhere = withToolgate(aiTools, { gateway: door.gateway(), scope: 'conv', endUserConfirmation: true, wait: 0 });
    const answered = await generateText({
      model,
      tools: elsewhere,
      messages: [
        ...prompt,
        ...result.response.messages,
        { role: 'tool', content: [{ type: 'tool-approval-response', approvalId: asked.approvalId, approved: true }] },
      ],
      stopWhen: stepCountIs(3),
    });
    assert.deepEqual(door.confirmations, [], 'the user approved "Refund 10", not "Refund 1000"');
    assert.match(answered.text, /pending_approval/);
    assert.equal(door.requests.get('conv:call-1')?.outcome, undefined);
  });

  test('a confirmation refused because the proposal changed is not an error: the call goes on waiting', async () => {
    const door = new EndUserFrontDoor();
    const gateway = door.gateway();
    const { model, tools, prompt, result } = await firstTurn(door, gateway, 'send_note', { text: 'Hi' });
    const asked = result.content.find((part) => part.type === 'tool-approval-request');
    assert.ok(asked);
    door.edit('conv:call-1', { text: 'Hi there' });
    const answered = await generateText({
      model,
      tools,
      messages: [
        ...prompt,
        ...result.response.messages,
        { role: 'tool', content: [{ type: 'tool-approval-response', approvalId: asked.approvalId, approved: true }] },
      ],
      stopWhen: stepCountIs(3),
    });
    assert.equal(door.confirmations.length, 1);
    assert.notEqual(door.confirmations[0]!.body.digest, door.requests.get('conv:call-1')!.digest, 'bound to the digest shown, not the current one');
    assert.match(answered.text, /pending_approval/);
  });
});

describe('OpenAI Agents: the interruption stands for the end user', () => {
  const fnTool = (name: string) =>
    agentTool({
      name,
      description: name,
      parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false },
      strict: true,
      execute: workerOnly,
    });

  test('agents.run returns the end-user interruption; approve → the resumed run confirms; the outcome reaches the model', async () => {
    const door = new EndUserFrontDoor();
    const agents = new ToolgateAgents({ gateway: door.gateway(), scope: 'oa', wait: 0 });
    const model = new ScriptedModel([[functionCall('send_note', { text: 'On its way' }, { callId: 'fc-1' })], [assistantMessage('Sent.')]]);
    const agent = new Agent({ name: 'support', instructions: 'Help.', model, tools: agents.tools([fnTool('send_note')]) });
    const first = await agents.run(agent, 'Tell the customer.');
    assert.equal(first.endUser.length, 1);
    const asked = first.endUser[0]!;
    assert.deepEqual(
      { requestId: asked.requestId, tool: asked.tool, args: asked.args, plan: asked.plan, callId: asked.callId },
      { requestId: 'oa:fc-1', tool: 'send_note', args: { text: 'On its way' }, plan: 'quick_confirm', callId: 'fc-1' },
    );
    assert.deepEqual(door.confirmations, [], 'not waited for, not answered by the adapter');

    first.result.state.approve(asked.item);
    const second = await agents.run(agent, first.result.state);
    assert.deepEqual(door.confirmations, [{ requestId: 'oa:fc-1', body: { decision: 'confirm', digest: asked.digest } }]);
    assert.equal(second.result.finalOutput, 'Sent.');
    assert.match(JSON.stringify(model.lastCall?.request.input), /On its way/);
  });

  test('reject → the decline is relayed before the run resumes; a plain run(agent, state) gets it through relayEndUserAnswers', async () => {
    const door = new EndUserFrontDoor();
    const agents = new ToolgateAgents({ gateway: door.gateway(), scope: 'oa', wait: 0 });
    const model = new ScriptedModel([
      [functionCall('send_note', { text: 'A' }, { callId: 'fc-1' })],
      [assistantMessage('Not sent.')],
      [functionCall('send_note', { text: 'B' }, { callId: 'fc-2' })],
      [assistantMessage('Not sent either.')],
    ]);
    const agent = new Agent({ name: 'support', instructions: 'Help.', model, tools: agents.tools([fnTool('send_note')]) });
    const first = await agents.run(agent, 'Tell the customer.');
    first.result.state.reject(first.endUser[0]!.item, { message: 'the customer said no' });
    const second = await agents.run(agent, first.result.state);
    assert.equal(second.result.finalOutput, 'Not sent.');
    assert.deepEqual(door.confirmations, [
      { requestId: 'oa:fc-1', body: { decision: 'decline', digest: first.endUser[0]!.digest, reason: 'the customer said no' } },
    ]);
    assert.equal(door.requests.get('oa:fc-1')?.outcome?.status, 'rejected');

    // The application drives the SDK itself: relayEndUserAnswers before run().
    const paused = await run(agent, 'Again.');
    assert.equal(paused.interruptions.length, 1);
    paused.state.reject(paused.interruptions[0]!);
    assert.deepEqual(await agents.relayEndUserAnswers(paused.state), ['fc-2']);
    assert.equal(door.requests.get('oa:fc-2')?.outcome?.status, 'rejected');
    const resumed = await run(agent, paused.state);
    assert.equal(resumed.finalOutput, 'Not sent either.');
  });

  test('a plan without the end user keeps the old behaviour: resolveInterruptions waits for toolgate and lists it pending', async () => {
    const door = new EndUserFrontDoor();
    const agents = new ToolgateAgents({ gateway: door.gateway(), scope: 'oa', wait: 0 });
    const model = new ScriptedModel([[functionCall('refund', { text: 'A-1' }, { callId: 'fc-1' })], [assistantMessage('Done.')]]);
    const agent = new Agent({ name: 'support', instructions: 'Help.', model, tools: agents.tools([fnTool('refund')]) });
    const first = await agents.run(agent, 'Refund.');
    assert.deepEqual(first.endUser, []);
    assert.deepEqual(
      first.pending.map((p) => p.requestId),
      ['oa:fc-1'],
    );
    assert.deepEqual(door.confirmations, []);
  });
});

describe('MCP: the elicitation form and what an answer means', () => {
  const schema = {
    type: 'object',
    required: ['orderId', 'amount', 'items'],
    properties: {
      orderId: { type: 'string', description: 'The order' },
      amount: { type: 'number', minimum: 0, maximum: 1000 },
      count: { type: 'integer' },
      notify: { type: 'boolean' },
      speed: { type: 'string', enum: ['slow', 'fast'] },
      items: { type: 'array', items: { type: 'string' } },
      address: { type: 'object' },
    },
  };
  const proposed = { orderId: 'A-1', amount: 120, notify: true, speed: 'fast', items: ['x'], address: { city: 'Lyon' } };

  test('flat primitive arguments only, with the proposed values as defaults', () => {
    const form = elicitationForm(schema, proposed);
    assert.deepEqual(form.editable, ['orderId', 'amount', 'count', 'notify', 'speed']);
    assert.deepEqual(form.requestedSchema, {
      type: 'object',
      properties: {
        orderId: { type: 'string', description: 'The order', default: 'A-1' },
        amount: { type: 'number', minimum: 0, maximum: 1000, default: 120 },
        count: { type: 'integer' },
        notify: { type: 'boolean', default: true },
        speed: { type: 'string', enum: ['slow', 'fast'], default: 'fast' },
      },
      required: ['orderId', 'amount'],
    });
    assert.deepEqual(elicitationForm(undefined, proposed).editable, [], 'no schema: nothing to adjust, still a yes/no');
  });

  test('accept unchanged → confirm; accept changed → adjust merged into the proposal; decline → decline; cancel → nothing', () => {
    const editable = elicitationForm(schema, proposed).editable;
    const proposal = { digest: 'd'.repeat(64), args: proposed };
    assert.deepEqual(answerOf({ action: 'accept', content: { orderId: 'A-1', amount: 120, notify: true, speed: 'fast' } }, proposal, editable), {
      decision: 'confirm',
      digest: proposal.digest,
    });
    assert.deepEqual(answerOf({ action: 'accept', content: { orderId: 'A-1', amount: 80 } }, proposal, editable), {
      decision: 'adjust',
      digest: proposal.digest,
      args: { ...proposed, amount: 80 },
    });
    assert.deepEqual(
      answerOf({ action: 'accept', content: { address: 'elsewhere' } }, proposal, editable),
      { decision: 'confirm', digest: proposal.digest },
      'only form fields count',
    );
    assert.equal(answerOf({ action: 'decline' }, proposal, editable)?.decision, 'decline');
    assert.equal(answerOf({ action: 'cancel' }, proposal, editable), undefined);
  });
});

describe('relayEndUserAnswer', () => {
  test('refusals that leave the request as it was are reported, not thrown', async () => {
    const door = new EndUserFrontDoor();
    const gateway = door.gateway();
    const handle = await gateway.start({ requestId: 'r1', tool: 'refund', args: { orderId: 'A' } });
    assert.deepEqual(await relayEndUserAnswer(handle, { decision: 'confirm', digest: 'f'.repeat(64) }), {
      relayed: false,
      code: 'not_eligible',
      message: 'the plan does not accept the end user',
    });
    const note = await gateway.start({ requestId: 'r2', tool: 'send_note', args: { text: 'x' } });
    assert.equal(((await relayEndUserAnswer(note, { decision: 'confirm', digest: 'f'.repeat(64) })) as { code: string }).code, 'digest_mismatch');
  });
});
