/**
 * The Vercel AI SDK adapter: `withToolgate(tools, options)` returns the same tool set with every
 * `execute` routed through the gateway. The model keeps seeing the same tools; denials,
 * rejections, expiries and pending approvals come back to it as tool results, never as crashes.
 * The side effect itself runs on a toolgate worker (register the original implementations there
 * with `aiSdkToolHandlers(tools)`), under the identity the manifest names, exactly once. The agent
 * is who the gateway's token says; the options carry no identity.
 */
import { jsonSchema, tool, type Tool, type ToolExecutionOptions, type ToolSet } from 'ai';
import type { ToolContext, ToolRegistry } from '../tools/types.js';
import { checkRequest, requestIdForToolCall, resultForModel, runRequest, scopeOf, toolRequest, type AdapterOptions } from './core.js';

/** Options of the AI SDK adapter. */
export type AiSdkAdapterOptions = AdapterOptions;

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
        const result = await runRequest(options.gateway, toolRequest(options, name, input, requestId), {
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
