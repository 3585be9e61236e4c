/**
 * The Vercel AI SDK adapter: `withToolgate(tools, options)` returns the same tool set with every
 * `execute` routed through the gateway. The model keeps seeing the same tools; denials,
 * rejections, expiries and pending approvals come back to it as tool results, never as crashes.
 * The side effect itself runs on a toolgate worker (register the original implementations there
 * with `aiSdkToolHandlers(tools)`), under the identity the manifest names, exactly once. The agent
 * is who the gateway's token says; the options carry no identity.
 */
import { jsonSchema, tool, type Tool, type ToolExecutionOptions, type ToolSet } from 'ai';
import type { Provenance } from '../shared/index.js';
import type { ToolContext, ToolRegistry } from '../tools/types.js';
import {
  checkRequest,
  flagVerbatim,
  mergeProvenance,
  requestIdForToolCall,
  resolveProvenance,
  resultForModel,
  runRequest,
  scopeOf,
  toolRequest,
  type AdapterOptions,
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
 * `needsApproval` is dropped: toolgate's policy decides who approves what.
 */
export function withToolgate<TOOLS extends ToolSet>(tools: TOOLS, options: AiSdkAdapterOptions): TOOLS {
  const wrapped: Record<string, unknown> = {};
  for (const [name, original] of Object.entries(tools)) {
    const rest: Record<string, unknown> = { ...original };
    delete rest.needsApproval;
    wrapped[name] = {
      ...rest,
      execute: async (input: unknown, execution: ToolExecutionOptions<unknown>) => {
        const requestId = requestIdForToolCall(await scopeOf(options), execution.toolCallId);
        const args = (input ?? {}) as Record<string, unknown>;
        const provenance = await aiSdkProvenance(options, name, args, execution);
        const result = await runRequest(options.gateway, toolRequest(options, name, args, requestId, provenance), {
          wait: options.wait,
          ...(execution.abortSignal && { signal: execution.abortSignal }),
        });
        return resultForModel(result);
      },
    };
  }
  return wrapped as TOOLS;
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
