/**
 * The worker side of `mcp` adapter tools: connect to the downstream server, check that the tool
 * is still the one pinned in the manifest, call it once with the request's idempotency key in
 * `_meta`, and return its `CallToolResult`. Wire it into the execution activity with
 * `if (manifest.adapter.type === 'mcp') result = await callMcpTool(manifest.adapter, context)`.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { LoadedPolicy, McpAdapter } from '../policy/model.js';
import { ToolNotReachedError, ToolRejectedError, type ToolContext, type ToolRegistry } from '../tools/types.js';
import { connectDownstream, listDownstreamTools } from './downstream.js';
import { pinProblem } from './identity.js';

/** The `_meta` keys toolgate sends with every downstream call. */
export const MCP_META_KEYS = { idempotencyKey: 'toolgate/idempotencyKey', requestId: 'toolgate/requestId', runAs: 'toolgate/runAs' } as const;

/**
 * Calls an `mcp` adapter tool once. Throws `ToolNotReachedError` when the server cannot be
 * reached or listed before the call (nothing was called: safe to retry), `ToolRejectedError` when the tool changed since it was
 * pinned or reports an error (`isError`), and lets a failure during the call propagate.
 */
export async function callMcpTool(adapter: McpAdapter, context: ToolContext): Promise<CallToolResult> {
  let client;
  try {
    client = await connectDownstream(adapter.server, adapter.connection);
  } catch (err) {
    throw new ToolNotReachedError((err as Error).message, { cause: err });
  }
  try {
    let definitions;
    try {
      definitions = await listDownstreamTools(client);
    } catch (err) {
      throw new ToolNotReachedError(`cannot list the tools of MCP server ${adapter.server}: ${(err as Error).message}`, { cause: err });
    }
    const problem = pinProblem(
      adapter,
      definitions.find((tool) => tool.name === adapter.tool),
    );
    if (problem) throw new ToolRejectedError(problem);
    const result = (await client.callTool(
      {
        name: adapter.tool,
        arguments: context.args,
        _meta: { [MCP_META_KEYS.idempotencyKey]: context.idempotencyKey, [MCP_META_KEYS.requestId]: context.requestId, [MCP_META_KEYS.runAs]: context.runAs },
      },
      undefined,
      // The attempt's signal stops the call when the attempt is over (deadline, cancellation, lost worker).
      { timeout: adapter.timeoutMs, signal: context.signal },
    )) as CallToolResult;
    if (result.isError) {
      const text = result.content.map((part) => (part.type === 'text' ? part.text : `[${part.type}]`)).join(' ');
      throw new ToolRejectedError(`${adapter.tool} on MCP server ${adapter.server} reported an error: ${text || '(no message)'}`);
    }
    return result;
  } finally {
    await client.close().catch(() => undefined);
  }
}

/**
 * Code handlers for every `mcp` adapter tool of a policy, under the adapter's `handler` name —
 * for workers whose execution activity does not dispatch `mcp` adapters natively yet. Given a
 * function, each call reads the adapter (and so its pin) from the policy in force at that moment.
 */
export function mcpToolHandlers(policy: LoadedPolicy | (() => LoadedPolicy | undefined)): ToolRegistry {
  const current = typeof policy === 'function' ? policy : () => policy;
  const handlers: ToolRegistry = {};
  for (const name of current()?.toolNames ?? []) {
    const adapter = current()?.manifest(name)?.adapter;
    if (adapter?.type !== 'mcp') continue;
    handlers[adapter.handler] = async (context) => {
      const now = current()?.manifest(context.tool)?.adapter;
      if (now?.type !== 'mcp') throw new ToolRejectedError(`${context.tool} is no longer an mcp tool in the policy in force`);
      return callMcpTool(now, context);
    };
  }
  return handlers;
}
