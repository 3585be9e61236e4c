/**
 * The OpenAI Agents SDK adapter. `agents.tool(fnTool)` routes a function tool through the gateway,
 * and maps the SDK's own approval flow onto toolgate's: when policy says a call needs people, the
 * tool's `needsApproval` answers true, the run pauses with an interruption, and
 * `agents.resolveInterruptions(state)` approves or rejects that interruption from the toolgate
 * decision, so `run(agent, state)` resumes the paused run. `agents.run(agent, input)` does the
 * loop for you. The side effect runs on a toolgate worker (register the original implementations
 * there with `openAiToolHandlers(tools)`), once, under the manifest's identity. The agent is who
 * the gateway's token says; the options carry no identity.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the SDK's Agent, RunState and FunctionTool generics are invariant in context and output types; these helpers accept any agent. */
import { RunContext, run, type Agent, type FunctionTool, type RunResult, type RunState, type RunToolApprovalItem } from '@openai/agents';
import { ToolGatewayError } from '../client/errors.js';
import type { Provenance } from '../shared/index.js';
import type { ToolContext, ToolRegistry } from '../tools/types.js';
import type { ToolCallInput } from '../client/gateway.js';
import {
  awaitRequest,
  requestIdForToolCall,
  resolveProvenance,
  resultForModel,
  runRequest,
  scopeOf,
  toolRequest,
  type AdapterOptions,
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
}

/** The end of `ToolgateAgents.run`: the last run result, and what still waits for people. */
export interface ToolgateRunResult<A extends Agent<any, any>> {
  result: RunResult<any, A>;
  pending: PendingApprovalResult[];
}

type AnyFunctionTool = FunctionTool<any, any, any>;

/** toolgate for the OpenAI Agents SDK: wraps function tools and resolves their approval interruptions. */
export class ToolgateAgents {
  private readonly governed = new Set<string>();
  /** Arguments (and provenance) `needsApproval` submitted, by call id, so `invoke` submits the identical request. */
  private readonly submitted = new Map<string, { args: Record<string, unknown>; provenance?: Provenance }>();

  constructor(private readonly options: OpenAiAgentsAdapterOptions) {}

  /** Wraps a function tool so its calls, and its approvals, go through the gateway. */
  tool<T extends AnyFunctionTool>(original: T): T {
    const name = original.name;
    this.governed.add(name);
    const requestIdOf = async (callId: string) => requestIdForToolCall(await scopeOf(this.options), callId);
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
        this.submitted.set(callId, { args, ...(provenance !== undefined && { provenance }) });
        return this.needsPeople(toolRequest(this.options, name, args, await requestIdOf(callId), provenance));
      },
      invoke: async (context: unknown, input: string, details?: { toolCall?: { callId?: string } }) => {
        const callId = details?.toolCall?.callId;
        let call = callId !== undefined ? this.submitted.get(callId) : undefined;
        if (!call) {
          let args: Record<string, unknown>;
          try {
            args = JSON.parse(input || '{}') as Record<string, unknown>;
          } catch {
            return JSON.stringify({ ok: false, status: 'invalid_request', message: `the arguments of ${name} are not valid JSON` });
          }
          const provenance = await provenanceOf(context, args, callId);
          call = { args, ...(provenance !== undefined && { provenance }) };
        }
        const result = await runRequest(
          this.options.gateway,
          toolRequest(this.options, name, call.args, callId !== undefined ? await requestIdOf(callId) : undefined, call.provenance),
          { wait: this.options.wait, ...(details && 'signal' in details && details.signal instanceof AbortSignal && { signal: details.signal }) },
        );
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
   * for each request's outcome, then approves or rejects the interruption on `state`.
   */
  async resolveInterruptions(state: RunState<any, any>, options: { wait?: number } = {}): Promise<InterruptionResolution> {
    const resolution: InterruptionResolution = { approved: [], rejected: [], pending: [], foreign: [] };
    const wait = options.wait ?? this.options.wait;
    await Promise.all(
      state.getInterruptions().map(async (item) => {
        const callId = (item.rawItem as { callId?: string }).callId;
        if (!item.name || !this.governed.has(item.name) || callId === undefined) {
          resolution.foreign.push(item);
          return;
        }
        const requestId = requestIdForToolCall(await scopeOf(this.options), callId);
        const handle = await this.options.gateway.get(requestId);
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
   * Runs an agent to the end, resuming after each toolgate approval. Returns early, with the
   * pending requests, when people have not decided within `wait`, or when an interruption of a
   * tool toolgate does not govern needs the application (decide it, then call `run(agent, result.state)`).
   */
  async run<A extends Agent<any, any>>(
    agent: A,
    input: Parameters<typeof run>[1],
    options?: { maxTurns?: number; context?: unknown },
  ): Promise<ToolgateRunResult<A>> {
    let result = (await run(agent, input, options as never)) as RunResult<any, A>;
    for (;;) {
      if (result.interruptions.length === 0) return { result, pending: [] };
      const resolution = await this.resolveInterruptions(result.state);
      if (resolution.pending.length > 0 || resolution.foreign.length > 0) return { result, pending: resolution.pending };
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- run() returns RunResult<unknown, Agent>, not the caller's agent type
      result = (await run(agent, result.state, options as never)) as RunResult<any, A>;
    }
  }

  /**
   * Submits the request and waits for the policy, from what the front door answers: true when the
   * request waits for people (state `pending_approval`), false once it has an outcome (it ran, or
   * was refused — `invoke` reports either) or went on to execute without people. A refusal the
   * model can act on is false too (`invoke` reports the same refusal); a refusal of the
   * credential itself (`GatewayRequestError`) propagates.
   */
  private async needsPeople(request: ToolCallInput): Promise<boolean> {
    let handle;
    try {
      handle = await this.options.gateway.start(request);
    } catch (err) {
      if (err instanceof ToolGatewayError) return false;
      throw err;
    }
    const deadline = Date.now() + (this.options.decisionTimeoutMs ?? 15_000);
    for (;;) {
      const status = await handle.status();
      if (status.outcome) return false;
      if (status.state === 'pending_approval') return true;
      if (status.state !== 'evaluating' && status.state !== 'reevaluating') return false;
      if (Date.now() > deadline) return true; // undecided: pause the run rather than proceed
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
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
