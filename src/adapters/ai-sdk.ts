/**
 * The Vercel AI SDK adapter: `withToolgate(tools, options)` returns the same tool set with every
 * `execute` routed through the gateway. The model keeps seeing the same tools; denials,
 * rejections, expiries and pending approvals come back to it as tool results, never as crashes.
 * The side effect itself runs on a toolgate worker (register the original implementations there
 * with `aiSdkToolHandlers(tools)`), under the identity the manifest names, exactly once. The agent
 * is who the gateway's token says; the options carry no identity.
 */
import { jsonSchema, tool, type ModelMessage, type Tool, type ToolExecutionOptions, type ToolSet } from 'ai';
import { ToolGatewayError } from '../client/errors.js';
import type { ToolGateway } from '../client/gateway.js';
import type { Provenance } from '../shared/index.js';
import type { ToolContext, ToolRegistry } from '../tools/types.js';
import {
  checkRequest,
  confirmShownAndAwait,
  endUserProposalOf,
  existingRequest,
  flagVerbatim,
  mergeProvenance,
  relayEndUserAnswer,
  requestIdForToolCall,
  resolveProvenance,
  resultForModel,
  runRequest,
  sameArgs,
  scopeOf,
  settledView,
  toolCallRequestId,
  toolRequest,
  type AdapterOptions,
  type CallResult,
  type ProvenanceOption,
} from './core.js';

/** Options of the AI SDK adapter. */
export interface AiSdkAdapterOptions extends AdapterOptions {
  /**
   * What the runtime knows of each call's provenance — which arguments came from retrieved
   * documents, web pages, uploads or e-mail, and the prompt metadata (model, system-prompt
   * digest, source ids): one value, or a function of the call (its `context` is the AI SDK's
   * execution options, with `messages` and `toolCallId`). Merged with the `tool_output` flags.
   */
  provenance?: ProvenanceOption<ToolExecutionOptions<unknown>>;
  /**
   * Flag as `tool_output` every argument whose string value (4 characters or more) appears
   * verbatim in the output of an earlier tool call in the step's `messages`. The AI SDK gives a
   * tool those messages (without the system prompt); nothing else of the prompt's sources.
   * @default true
   */
  flagToolOutputs?: boolean;
  /**
   * Let the end user in the conversation confirm the calls policy lets them confirm (a plan with
   * `end_user: true`; the end user is the token's first `on_behalf_of` principal). The wrapped
   * tool's `needsApproval` submits the request and answers true when it waits under such a plan,
   * so the AI SDK's own approval flow asks the user; the approved call's `execute` relays the
   * confirmation, bound to the digest of what was shown, then waits for the outcome as usual. A
   * denial is relayed by `declineToolgateCalls(messages, options)`. Requests under other plans
   * behave as without this option (`needsApproval` false; `execute` waits for approvers).
   * @default false
   */
  endUserConfirmation?: boolean;
  /** How long `needsApproval` waits for the policy's decision, in ms (then false: `execute` waits as usual). @default 15000 */
  decisionTimeoutMs?: number;
}

/** A proposal `needsApproval` had the AI SDK show the end user: the digest their answer is bound to. */
interface ShownProposal {
  digest: string;
  args: Record<string, unknown>;
}

/** The most proposals remembered per gateway client (the oldest are forgotten; `execute` then falls back to comparing arguments). */
const MAX_SHOWN = 1000;
/** Proposals shown, by gateway client and request id: `execute` and `declineToolgateCalls` answer exactly those. */
const shownProposals = new WeakMap<ToolGateway, Map<string, ShownProposal>>();

function rememberShown(gateway: ToolGateway, requestId: string, shown: ShownProposal): void {
  let byRequest = shownProposals.get(gateway);
  if (!byRequest) {
    byRequest = new Map<string, ShownProposal>();
    shownProposals.set(gateway, byRequest);
  }
  byRequest.delete(requestId);
  byRequest.set(requestId, shown);
  if (byRequest.size > MAX_SHOWN) byRequest.delete(byRequest.keys().next().value as string);
}

/**
 * The digest to answer for the end user: the one `needsApproval` showed them, else — when this
 * process did not ask (the approval came back to another instance) — the pending proposal's, but
 * only if its arguments are the call's arguments the AI SDK showed. Undefined: nothing to answer.
 */
function digestShown(
  gateway: ToolGateway,
  requestId: string,
  pending: { digest: string; args: Record<string, unknown> },
  shownArgs: unknown,
): string | undefined {
  const remembered = shownProposals.get(gateway)?.get(requestId);
  if (remembered) return remembered.digest;
  return sameArgs(pending.args, shownArgs) ? pending.digest : undefined;
}

/** The AI SDK's prompt parts this adapter reads: tool calls, approval requests and responses. */
interface ApprovalParts {
  calls: Map<string, { toolName: string; input: unknown }>;
  /** Approval id → tool-call id. */
  requests: Map<string, string>;
  /** Tool-call id → the (first) response to its approval request. */
  responses: Map<string, { approved: boolean; reason?: string }>;
}

function approvalParts(messages: readonly unknown[]): ApprovalParts {
  const parts: ApprovalParts = { calls: new Map(), requests: new Map(), responses: new Map() };
  const contents = messages.map((message) => (message as { content?: unknown } | null)?.content).filter((content) => Array.isArray(content)) as unknown[][];
  for (const content of contents) {
    for (const part of content as { type?: unknown; toolCallId?: unknown; approvalId?: unknown; toolName?: unknown; input?: unknown }[]) {
      if (part?.type === 'tool-call' && typeof part.toolCallId === 'string' && typeof part.toolName === 'string')
        parts.calls.set(part.toolCallId, { toolName: part.toolName, input: part.input });
      if (part?.type === 'tool-approval-request' && typeof part.approvalId === 'string' && typeof part.toolCallId === 'string')
        parts.requests.set(part.approvalId, part.toolCallId);
    }
  }
  for (const content of contents) {
    for (const part of content as { type?: unknown; approvalId?: unknown; approved?: unknown; reason?: unknown }[]) {
      if (part?.type !== 'tool-approval-response' || typeof part.approvalId !== 'string' || typeof part.approved !== 'boolean') continue;
      const toolCallId = parts.requests.get(part.approvalId);
      // Like the AI SDK, only the first response to a call counts.
      if (toolCallId === undefined || parts.responses.has(toolCallId)) continue;
      parts.responses.set(toolCallId, { approved: part.approved, ...(typeof part.reason === 'string' && { reason: part.reason }) });
    }
  }
  return parts;
}

/** The most text of earlier tool outputs searched per call (a long conversation is cut, newest kept). */
const MAX_OUTPUT_CHARS = 4 * 1024 * 1024;

/** The string leaves of a JSON value (keys too), bounded by `budget` characters in all. */
function stringsOf(value: unknown, out: string[], budget: { left: number }): void {
  const pending: unknown[] = [value];
  while (pending.length > 0 && budget.left > 0) {
    const item = pending.pop();
    if (typeof item === 'string') {
      out.push(item);
      budget.left -= item.length;
    } else if (Array.isArray(item)) {
      pending.push(...(item as unknown[]));
    } else if (item !== null && typeof item === 'object') {
      for (const [key, nested] of Object.entries(item)) pending.push(key, nested);
    }
  }
}

/**
 * The text of every tool result in `messages` (the AI SDK's `ModelMessage`s: `tool-result` parts
 * of tool messages, and of assistant messages for provider-executed tools): text and error text,
 * the strings of JSON outputs, the text parts of content outputs. Newest first, within a budget.
 */
export function toolOutputTexts(messages: readonly unknown[]): string[] {
  const texts: string[] = [];
  const budget = { left: MAX_OUTPUT_CHARS };
  for (const message of [...messages].reverse()) {
    const content = (message as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) continue;
    for (const part of content as unknown[]) {
      if (budget.left <= 0) return texts;
      const p = part as { type?: unknown; output?: unknown; result?: unknown } | null;
      if (p?.type !== 'tool-result') continue;
      const output = p.output as { type?: unknown; value?: unknown } | undefined;
      if (output === undefined) {
        stringsOf(p.result, texts, budget); // the shape of older AI SDK versions
      } else if (output.type === 'content' && Array.isArray(output.value)) {
        for (const item of output.value as { type?: unknown; text?: unknown; data?: { type?: unknown; text?: unknown } }[]) {
          if (item?.type === 'text') stringsOf(item.text, texts, budget);
          else if (item?.data?.type === 'text') stringsOf(item.data.text, texts, budget);
        }
      } else if (output.type !== 'execution-denied') {
        stringsOf(output.value, texts, budget);
      }
    }
  }
  return texts;
}

/**
 * The provenance of one AI SDK tool call: the runtime's own (the `provenance` option) merged with
 * `tool_output` flags on arguments copied verbatim from earlier tool results in `messages`.
 */
export async function aiSdkProvenance(
  options: Pick<AiSdkAdapterOptions, 'provenance' | 'flagToolOutputs'>,
  name: string,
  args: Record<string, unknown>,
  execution: ToolExecutionOptions<unknown>,
): Promise<Provenance | undefined> {
  const given = await resolveProvenance(options.provenance, { tool: name, args, callId: execution.toolCallId, context: execution });
  if (options.flagToolOutputs === false) return given;
  const flags = flagVerbatim(args, toolOutputTexts(execution.messages ?? []), 'tool_output');
  return mergeProvenance(given, Object.keys(flags).length > 0 ? { untrusted: flags } : undefined);
}

/**
 * Wraps a tool set so that every execution goes through the gateway. The request id derives
 * from the AI SDK's `toolCallId`, so a retried tool call is one request. A tool's own
 * `needsApproval` is dropped: toolgate's policy decides who approves what. With
 * `endUserConfirmation`, `needsApproval` asks the end user where policy accepts their confirmation.
 */
export function withToolgate<TOOLS extends ToolSet>(tools: TOOLS, options: AiSdkAdapterOptions): TOOLS {
  const wrapped: Record<string, unknown> = {};
  for (const [name, original] of Object.entries(tools)) {
    const rest: Record<string, unknown> = { ...original };
    delete rest.needsApproval;
    const run = (execution: ToolExecutionOptions<unknown>) => ({
      wait: options.wait,
      ...(execution.abortSignal && { signal: execution.abortSignal }),
    });
    wrapped[name] = {
      ...rest,
      ...(options.endUserConfirmation && {
        needsApproval: async (input: unknown, call: { toolCallId: string; messages: ModelMessage[]; context?: unknown }) =>
          askEndUser(options, name, (input ?? {}) as Record<string, unknown>, call),
      }),
      execute: async (input: unknown, execution: ToolExecutionOptions<unknown>) => {
        const requestId = await toolCallRequestId(options, execution.toolCallId);
        const args = (input ?? {}) as Record<string, unknown>;
        if (options.endUserConfirmation) {
          const confirmed = await executeConfirmed(options, name, requestId, args, execution);
          if (confirmed) return resultForModel(confirmed);
        }
        const provenance = await aiSdkProvenance(options, name, args, execution);
        const result = await runRequest(options.gateway, toolRequest(options, name, args, requestId, provenance), run(execution));
        return resultForModel(result);
      },
    };
  }
  return wrapped as TOOLS;
}

/**
 * `needsApproval` under `endUserConfirmation`: submits the request (the same one `execute` will
 * attach to) and waits for policy; true only when it waits under a plan that accepts the end user.
 */
async function askEndUser(
  options: AiSdkAdapterOptions,
  name: string,
  args: Record<string, unknown>,
  call: { toolCallId: string; messages: ModelMessage[]; context?: unknown },
): Promise<boolean> {
  // The AI SDK asks again when it resumes an answered call (it re-validates approvals): the
  // answer stands, and the request was submitted the first time.
  if (approvalParts(call.messages).responses.has(call.toolCallId)) return true;
  const requestId = await toolCallRequestId(options, call.toolCallId);
  const execution = { toolCallId: call.toolCallId, messages: call.messages, context: call.context } as ToolExecutionOptions<unknown>;
  const provenance = await aiSdkProvenance(options, name, args, execution);
  let handle;
  try {
    handle = await options.gateway.start(toolRequest(options, name, args, requestId, provenance));
  } catch (err) {
    if (err instanceof ToolGatewayError) return false; // execute submits it again and reports the refusal
    throw err;
  }
  const proposal = endUserProposalOf(await settledView(handle, options.decisionTimeoutMs ?? 15_000), name);
  if (!proposal) return false;
  rememberShown(options.gateway, requestId, { digest: proposal.digest, args: proposal.args });
  return true;
}

/**
 * `execute` under `endUserConfirmation`, for a call the end user approved in the AI SDK's flow
 * (a `tool-approval-response` with approved=true for this call in `messages`, or a proposal
 * `needsApproval` showed in this process): attaches to the request `needsApproval` submitted,
 * relays the confirmation of the digest shown, and waits for the outcome. Undefined when the call
 * was not put to the end user: `execute` then proceeds as without the option.
 */
async function executeConfirmed(
  options: AiSdkAdapterOptions,
  name: string,
  requestId: string,
  args: Record<string, unknown>,
  execution: ToolExecutionOptions<unknown>,
): Promise<CallResult | undefined> {
  const remembered = shownProposals.get(options.gateway)?.get(requestId);
  const approved = approvalParts(execution.messages ?? []).responses.get(execution.toolCallId)?.approved === true;
  if (!remembered && !approved) return undefined;
  const runOptions = { wait: options.wait, ...(execution.abortSignal && { signal: execution.abortSignal }) };
  return confirmShownAndAwait(
    options.gateway,
    requestId,
    name,
    (proposal) => {
      const digest = proposal && digestShown(options.gateway, requestId, proposal, args);
      // Answered now, whatever the front door makes of it: the proposal shown is no longer pending.
      shownProposals.get(options.gateway)?.delete(requestId);
      return digest;
    },
    runOptions,
  );
}

/** What `declineToolgateCalls` did with one denied call. */
export interface DeclinedCall {
  toolCallId: string;
  requestId: string;
  /** True when the front door recorded the decline; false with its code when it refused it (the proposal changed, the request ended…). */
  relayed: boolean;
  code?: string;
}

/**
 * Relays the end user's denials to toolgate. The AI SDK runs nothing for a denied call — it
 * answers the model with `execution-denied` itself and gives a tool no hook — so pass this the
 * messages you are about to give `generateText`/`streamText` (the ones carrying the user's
 * `tool-approval-response` parts): each response with `approved: false` to a call of a toolgate
 * tool (`tools`: the names to consider; default all) whose request still waits for the end user
 * is sent as a decline bound to the digest they were shown, and toolgate rejects the request
 * (`rejectedBy` the end user). Requests that ended or are not this agent's are skipped.
 */
export async function declineToolgateCalls(
  messages: readonly unknown[],
  options: Pick<AiSdkAdapterOptions, 'gateway' | 'scope'> & { tools?: readonly string[] },
): Promise<DeclinedCall[]> {
  const parts = approvalParts(messages);
  const declined: DeclinedCall[] = [];
  const scope = await scopeOf(options);
  for (const [toolCallId, response] of parts.responses) {
    const call = parts.calls.get(toolCallId);
    if (response.approved || !call || (options.tools && !options.tools.includes(call.toolName))) continue;
    const requestId = requestIdForToolCall(scope, toolCallId);
    const existing = await existingRequest(options.gateway, requestId);
    const proposal = existing && endUserProposalOf(existing.view, call.toolName);
    if (!existing || !proposal) continue;
    const digest = digestShown(options.gateway, requestId, proposal, call.input);
    shownProposals.get(options.gateway)?.delete(requestId);
    if (digest === undefined) {
      declined.push({ toolCallId, requestId, relayed: false, code: 'digest_mismatch' });
      continue;
    }
    const relayed = await relayEndUserAnswer(existing.handle, {
      decision: 'decline',
      digest,
      ...(response.reason !== undefined && { reason: response.reason }),
    });
    declined.push({ toolCallId, requestId, relayed: relayed.relayed, ...(!relayed.relayed && { code: relayed.code }) });
  }
  return declined;
}

/**
 * A tool the model can call to check on a request it was told is pending approval
 * (`toolgate_check_request`): it answers with the outcome, or that it is still pending. Only this
 * agent's requests are found (the front door scopes reads to the token's agent).
 */
export function toolgateCheckTool(options: AiSdkAdapterOptions): Tool<{ requestId: string }, unknown> {
  return tool({
    description: 'Check on a tool request that was waiting for human approval, by its requestId.',
    inputSchema: jsonSchema<{ requestId: string }>({
      type: 'object',
      properties: { requestId: { type: 'string', description: 'The requestId of the pending request' } },
      required: ['requestId'],
      additionalProperties: false,
    }),
    execute: async ({ requestId }, execution) =>
      resultForModel(
        await checkRequest(options.gateway, requestId, {
          wait: Number.isFinite(options.wait) ? options.wait : 0,
          ...(execution.abortSignal && { signal: execution.abortSignal }),
        }),
      ),
  });
}

/**
 * The original implementations of an AI SDK tool set as toolgate code handlers, to register on a
 * worker (`createToolgateWorker({ tools: aiSdkToolHandlers(tools) })`) with `adapter: {type: code}`
 * manifest entries of the same names. Each receives the request id as its `toolCallId`.
 */
export function aiSdkToolHandlers(tools: ToolSet): ToolRegistry {
  const handlers: ToolRegistry = {};
  for (const [name, original] of Object.entries(tools)) {
    const execute = original.execute;
    if (!execute) continue;
    handlers[name] = async (context: ToolContext) => {
      const output: unknown = await execute(context.args, { toolCallId: context.requestId, messages: [], context: undefined });
      if (output !== null && typeof output === 'object' && Symbol.asyncIterator in output) {
        let last: unknown;
        for await (const chunk of output as AsyncIterable<unknown>) last = chunk;
        return last;
      }
      return output;
    };
  }
  return handlers;
}
