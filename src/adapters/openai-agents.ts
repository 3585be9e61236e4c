/**
 * The OpenAI Agents SDK adapter. `agents.tool(fnTool)` routes a function tool through the gateway,
 * and maps the SDK's own approval flow onto toolgate's: when policy says a call needs people, the
 * tool's `needsApproval` answers true, the run pauses with an interruption, and
 * `agents.resolveInterruptions(state)` approves or rejects that interruption from the toolgate
 * decision, so `run(agent, state)` resumes the paused run. `agents.run(agent, input)` does the
 * loop for you. Where policy accepts the end user's confirmation (a plan with `end_user: true`),
 * the interruption stands for the end user's confirmation instead: the application shows it to
 * them, `state.approve(item)` and a resumed run relay the confirmation (bound to the digest shown),
 * `state.reject(item)` relays a decline. The side effect runs on a toolgate worker (register the original implementations
 * there with `openAiToolHandlers(tools)`), once, under the manifest's identity. The agent is who
 * the gateway's token says; the options carry no identity.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the SDK's Agent, RunState and FunctionTool generics are invariant in context and output types; these helpers accept any agent. */
import {
  RunContext,
  RunState as RunStateClass,
  run,
  type Agent,
  type FunctionTool,
  type RunResult,
  type RunState,
  type RunToolApprovalItem,
} from '@openai/agents';
import { ToolGatewayError } from '../client/errors.js';
import type { Provenance } from '../shared/index.js';
import type { ToolContext, ToolRegistry } from '../tools/types.js';
import type { ToolCallInput } from '../client/gateway.js';
import {
  awaitRequest,
  confirmShownAndAwait,
  endUserProposalOf,
  existingRequest,
  relayEndUserAnswer,
  resolveProvenance,
  resultForModel,
  runRequest,
  sameArgs,
  settledView,
  toolCallRequestId,
  toolRequest,
  type AdapterOptions,
  type CallResult,
  type EndUserProposal,
  type PendingApprovalResult,
  type ProvenanceOption,
} from './core.js';

/** Options of the OpenAI Agents SDK adapter. */
export interface OpenAiAgentsAdapterOptions extends AdapterOptions {
  /** How long `needsApproval` waits for the policy decision, in ms. @default 15000 */
  decisionTimeoutMs?: number;
  /**
   * What the runtime knows of each call's provenance (untrusted arguments, prompt metadata): one
   * value, or a function of the call, whose `context` is the run's `RunContext` (your own
   * `context.context` is where a runtime keeps what it retrieved). The SDK hands a tool neither
   * the conversation nor the prompt, so nothing is inferred beyond what this says.
   */
  provenance?: ProvenanceOption<RunContext<unknown>>;
}

/** What `resolveInterruptions` did with a paused run's toolgate interruptions. */
export interface InterruptionResolution {
  /** Interruptions approved (toolgate approved; the resumed run executes them through the gateway). */
  approved: string[];
  /** Interruptions rejected, with the toolgate refusal as the message the model sees. */
  rejected: string[];
  /** Requests still waiting for people after `wait`; their interruptions stay open. */
  pending: PendingApprovalResult[];
  /** Interruptions of tools toolgate does not govern, left for the application to decide. */
  foreign: RunToolApprovalItem[];
  /**
   * Interruptions that stand for the end user's confirmation (the request waits under a plan that
   * accepts it), not yet answered: show each proposal to the end user, then `state.approve(item)`
   * or `state.reject(item)` and resume with `agents.run(agent, state)`.
   */
  endUser: EndUserInterruption[];
  /** End-user interruptions the application approved: the resumed run's invoke relays the confirmation. */
  confirmed: string[];
  /** End-user interruptions the application rejected, relayed to toolgate as the end user's decline. */
  declined: string[];
}

/** An interruption that asks the end user to confirm a call, with what to show them. */
export interface EndUserInterruption extends EndUserProposal {
  item: RunToolApprovalItem;
  callId: string;
}

/** The end of `ToolgateAgents.run`: the last run result, and what still waits for people. */
export interface ToolgateRunResult<A extends Agent<any, any>> {
  result: RunResult<any, A>;
  pending: PendingApprovalResult[];
  /** Calls waiting for the end user's answer (approve or reject each on `result.state`, then `run(agent, result.state)`). */
  endUser: EndUserInterruption[];
}

type AnyFunctionTool = FunctionTool<any, any, any>;

/** toolgate for the OpenAI Agents SDK: wraps function tools and resolves their approval interruptions. */
export class ToolgateAgents {
  private readonly governed = new Set<string>();
  /**
   * Arguments (and provenance) `needsApproval` submitted, by call id, so `invoke` submits the
   * identical request — and the proposal the end user is asked to confirm, when policy accepts them.
   */
  private readonly submitted = new Map<string, { args: Record<string, unknown>; provenance?: Provenance; endUser?: { digest: string } }>();

  constructor(private readonly options: OpenAiAgentsAdapterOptions) {}

  /** Wraps a function tool so its calls, and its approvals, go through the gateway. */
  tool<T extends AnyFunctionTool>(original: T): T {
    const name = original.name;
    this.governed.add(name);
    const requestIdOf = (callId: string) => toolCallRequestId(this.options, callId);
    const provenanceOf = (context: unknown, args: Record<string, unknown>, callId: string | undefined) =>
      resolveProvenance(this.options.provenance, {
        tool: name,
        args,
        ...(callId !== undefined && { callId }),
        ...(context !== undefined && context !== null && { context: context as RunContext<unknown> }),
      });
    return {
      ...original,
      needsApproval: async (context: unknown, input: unknown, callId?: string) => {
        if (callId === undefined) return true; // no id to bind the approval to: fail closed
        const args = (input ?? {}) as Record<string, unknown>;
        const provenance = await provenanceOf(context, args, callId);
        const asked = await this.needsPeople(toolRequest(this.options, name, args, await requestIdOf(callId), provenance));
        this.submitted.set(callId, {
          args,
          ...(provenance !== undefined && { provenance }),
          ...(asked.endUser && { endUser: { digest: asked.endUser.digest } }),
        });
        return asked.needed;
      },
      invoke: async (context: unknown, input: string, details?: { toolCall?: { callId?: string } }) => {
        const callId = details?.toolCall?.callId;
        const call = callId !== undefined ? this.submitted.get(callId) : undefined;
        const runOptions = {
          wait: this.options.wait,
          ...(details && 'signal' in details && details.signal instanceof AbortSignal && { signal: details.signal }),
        };
        const submit = async (submitted: { args: Record<string, unknown>; provenance?: Provenance }) =>
          runRequest(
            this.options.gateway,
            toolRequest(this.options, name, submitted.args, callId !== undefined ? await requestIdOf(callId) : undefined, submitted.provenance),
            runOptions,
          );
        let result: CallResult | undefined;
        if (!call) {
          let args: Record<string, unknown>;
          try {
            args = JSON.parse(input || '{}') as Record<string, unknown>;
          } catch {
            return JSON.stringify({ ok: false, status: 'invalid_request', message: `the arguments of ${name} are not valid JSON` });
          }
          // Resumed where needsApproval did not run (a run state restored in another process):
          // attach to the request it submitted rather than submit again with other provenance.
          if (callId !== undefined) result = await this.resumeApproved(name, await requestIdOf(callId), args, undefined, runOptions);
          if (!result) {
            const provenance = await provenanceOf(context, args, callId);
            result = await submit({ args, ...(provenance !== undefined && { provenance }) });
          }
        } else {
          // With endUser: the run reached invoke, so the interruption that asked the end user was approved.
          if (call.endUser && callId !== undefined)
            result = await this.resumeApproved(name, await requestIdOf(callId), call.args, call.endUser.digest, runOptions);
          result ??= await submit(call);
        }
        if (callId !== undefined && result.kind !== 'pending') this.submitted.delete(callId);
        const value = resultForModel(result);
        return typeof value === 'string' ? value : JSON.stringify(value ?? null);
      },
    };
  }

  /** Wraps several function tools. */
  tools<T extends AnyFunctionTool>(originals: T[]): T[] {
    return originals.map((original) => this.tool(original));
  }

  /**
   * Decides the toolgate interruptions of a paused run from toolgate: waits (up to `wait` ms)
   * for each request's outcome, then approves or rejects the interruption on `state`. An
   * interruption that stands for the end user's confirmation is not waited for: unanswered, it is
   * listed in `endUser` for the application to put to the end user; rejected by the application,
   * the decline is relayed to toolgate.
   */
  async resolveInterruptions(state: RunState<any, any>, options: { wait?: number } = {}): Promise<InterruptionResolution> {
    const resolution: InterruptionResolution = { approved: [], rejected: [], pending: [], foreign: [], endUser: [], confirmed: [], declined: [] };
    const wait = options.wait ?? this.options.wait;
    await Promise.all(
      state.getInterruptions().map(async (item) => {
        const callId = (item.rawItem as { callId?: string }).callId;
        if (!item.name || !this.governed.has(item.name) || callId === undefined) {
          resolution.foreign.push(item);
          return;
        }
        const requestId = await toolCallRequestId(this.options, callId);
        const handle = await this.options.gateway.get(requestId);
        const proposal = endUserProposalOf(await handle.status(), item.name);
        if (proposal) {
          const answered = this.answerOf(state, item, callId);
          if (answered === true) resolution.confirmed.push(callId);
          else if (answered === false) {
            await this.relayDecline(state, item, callId, proposal);
            resolution.declined.push(callId);
          } else resolution.endUser.push({ ...proposal, item, callId });
          return;
        }
        const call = await awaitRequest(this.options.gateway, handle, item.name, { ...(wait !== undefined && { wait }) });
        if (call.kind === 'pending') {
          resolution.pending.push(call.toolResult);
        } else if (call.kind === 'refused' && ['rejected', 'expired', 'denied'].includes(call.toolResult.status)) {
          state.reject(item, { message: JSON.stringify(call.toolResult) });
          resolution.rejected.push(callId);
        } else {
          // Completed, or failed after approval: the resumed run's invoke attaches to the request and reports it.
          state.approve(item);
          resolution.approved.push(callId);
        }
      }),
    );
    return resolution;
  }

  /**
   * Relays the end user's rejections on a paused run to toolgate: every interruption of a
   * toolgate tool that waits for the end user and that the application rejected
   * (`state.reject(item)`) is sent as the end user's decline, bound to the digest they were
   * shown. The SDK runs nothing for a rejected call and gives a tool no hook for it, so call this
   * before resuming with the SDK's own `run(agent, state)`; `agents.run(agent, state)` calls it.
   * Returns the call ids declined.
   */
  async relayEndUserAnswers(state: RunState<any, any>): Promise<string[]> {
    const declined: string[] = [];
    for (const item of state.getInterruptions()) {
      const callId = (item.rawItem as { callId?: string }).callId;
      if (!item.name || !this.governed.has(item.name) || callId === undefined || this.answerOf(state, item, callId) !== false) continue;
      const existing = await existingRequest(this.options.gateway, await toolCallRequestId(this.options, callId));
      const proposal = existing && endUserProposalOf(existing.view, item.name);
      if (!proposal) continue;
      await this.relayDecline(state, item, callId, proposal);
      declined.push(callId);
    }
    return declined;
  }

  /**
   * Runs an agent to the end, resuming after each toolgate approval. Returns early, with the
   * pending requests, when people have not decided within `wait`, when a call waits for the end
   * user's answer (`endUser`), or when an interruption of a tool toolgate does not govern needs
   * the application (decide it, then call `run(agent, result.state)`). Given a paused run's state,
   * it first relays the end user's rejections on it.
   */
  async run<A extends Agent<any, any>>(
    agent: A,
    input: Parameters<typeof run>[1],
    options?: { maxTurns?: number; context?: unknown },
  ): Promise<ToolgateRunResult<A>> {
    if (input instanceof RunStateClass) await this.relayEndUserAnswers(input);
    let result = (await run(agent, input, options as never)) as RunResult<any, A>;
    for (;;) {
      if (result.interruptions.length === 0) return { result, pending: [], endUser: [] };
      const resolution = await this.resolveInterruptions(result.state);
      if (resolution.pending.length > 0 || resolution.foreign.length > 0 || resolution.endUser.length > 0)
        return { result, pending: resolution.pending, endUser: resolution.endUser };
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- run() returns RunResult<unknown, Agent>, not the caller's agent type
      result = (await run(agent, result.state, options as never)) as RunResult<any, A>;
    }
  }

  /** The application's answer to an interruption on `state`: approved, rejected, or not yet (undefined). */
  private answerOf(state: RunState<any, any>, item: RunToolApprovalItem, callId: string): boolean | undefined {
    return state._context.isToolApproved({ toolName: item.toolName ?? item.name ?? '', callId });
  }

  /** Sends the end user's decline of `proposal` (the digest needsApproval saw, else the pending one when its arguments are the call's). */
  private async relayDecline(state: RunState<any, any>, item: RunToolApprovalItem, callId: string, proposal: EndUserProposal): Promise<void> {
    const digest = this.submitted.get(callId)?.endUser?.digest ?? (sameArgs(proposal.args, parseArgs(item.arguments)) ? proposal.digest : undefined);
    this.submitted.delete(callId);
    if (digest === undefined) return; // the proposal is not the one in the interruption: nothing the user said applies to it
    const reason = state._context.getRejectionMessage(item.toolName ?? item.name ?? '', callId);
    await relayEndUserAnswer(await this.options.gateway.get(proposal.requestId), { decision: 'decline', digest, ...(reason !== undefined && { reason }) });
  }

  /**
   * The approved call of an interruption that asked the end user: relays the confirmation of the
   * digest shown (or, when this process did not ask, of the pending proposal if its arguments
   * are the call's) and waits for the outcome. Undefined when there is no such request: invoke
   * then submits it as usual.
   */
  private async resumeApproved(
    name: string,
    requestId: string,
    args: Record<string, unknown>,
    digest: string | undefined,
    runOptions: { wait?: number; signal?: AbortSignal },
  ): Promise<CallResult | undefined> {
    return confirmShownAndAwait(
      this.options.gateway,
      requestId,
      name,
      (proposal) => digest ?? (proposal && sameArgs(proposal.args, args) ? proposal.digest : undefined),
      runOptions,
    );
  }

  /**
   * Submits the request and waits for the policy, from what the front door answers: needed when
   * the request waits for people (state `pending_approval`) — with the end user's proposal when
   * its plan accepts the end user —, not needed once it has an outcome (it ran, or was refused —
   * `invoke` reports either) or went on to execute without people. A refusal the model can act on
   * is not needed either (`invoke` reports the same refusal); a refusal of the credential itself
   * (`GatewayRequestError`) propagates.
   */
  private async needsPeople(request: ToolCallInput): Promise<{ needed: boolean; endUser?: EndUserProposal }> {
    let handle;
    try {
      handle = await this.options.gateway.start(request);
    } catch (err) {
      if (err instanceof ToolGatewayError) return { needed: false };
      throw err;
    }
    const status = await settledView(handle, this.options.decisionTimeoutMs ?? 15_000);
    if (status.outcome) return { needed: false };
    const endUser = endUserProposalOf(status, request.tool);
    if (endUser) return { needed: true, endUser };
    if (status.state === 'pending_approval') return { needed: true };
    // Still evaluating at the deadline: pause the run rather than proceed.
    return { needed: status.state === 'evaluating' || status.state === 'reevaluating' };
  }
}

/** The arguments of an interruption (JSON text), or undefined when they are not an object. */
function parseArgs(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text ?? '{}');
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The original implementations of OpenAI Agents SDK function tools as toolgate code handlers, to
 * register on a worker with `adapter: {type: code}` manifest entries of the same names.
 */
export function openAiToolHandlers(tools: AnyFunctionTool[]): ToolRegistry {
  const handlers: ToolRegistry = {};
  for (const original of tools) {
    handlers[original.name] = async (context: ToolContext) => {
      const output: unknown = await original.invoke(new RunContext(), JSON.stringify(context.args), {
        toolCall: { type: 'function_call', callId: context.requestId, name: original.name, arguments: JSON.stringify(context.args) },
      });
      if (typeof output === 'string') {
        try {
          return JSON.parse(output) as unknown;
        } catch {
          return output;
        }
      }
      return output;
    };
  }
  return handlers;
}
