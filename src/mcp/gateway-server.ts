/**
 * The MCP gateway: an MCP server in front of the downstream MCP servers of the manifest. It lists
 * the downstream tools policy lets this agent call (under their toolgate names) and sends every
 * `tools/call` through the gateway, so each call is decided, approved where policy says so,
 * executed once by a worker and recorded. A tool whose definition no longer matches its pin is
 * refused, saying so. While a call waits for people, progress notifications keep the client informed.
 *
 * It is agent-side code: it holds the agent's credential (a `ToolGateway`) and nothing else — no
 * Temporal connection, no codec key. Who the agent is comes from that credential (`GET /v1/agent`),
 * both for what it lists and for what the front door records.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import { checkRequest, runRequest, toolRequest, type CallResult } from '../adapters/core.js';
import type { AgentIdentityView, ToolGateway } from '../client/gateway.js';
import type { CompiledTool, LoadedPolicy, McpAdapter } from '../policy/model.js';
import { IDENTIFIER_PATTERN, type Provenance } from '../shared/index.js';
import { connectDownstream, listDownstreamTools } from './downstream.js';
import { pinProblem } from './identity.js';

/** The name of the tool the gateway adds for checking on pending requests. */
export const CHECK_REQUEST_TOOL = 'toolgate_check_request';

/** The `_meta` key a client may set on `tools/call` to fix the request id (retries are then one request). */
export const REQUEST_ID_META_KEY = 'toolgate/requestId';

/**
 * The `_meta` key a client may set on `tools/call` to pass the call's provenance (which arguments
 * came from untrusted content, the prompt metadata; the shape of `provenance` in the agent API).
 * MCP itself says nothing of where arguments came from: only a client that knows can say.
 */
export const PROVENANCE_META_KEY = 'toolgate/provenance';

/** What the MCP gateway needs besides the agent's gateway client. */
export interface McpGatewayOptions {
  /** The policy in force (the same files the workers load); asked before every list and call, so it may reload. */
  policy: () => LoadedPolicy | undefined | Promise<LoadedPolicy | undefined>;
  logger: Logger;
  /** How long a call waits for people before answering with a pending result, in ms. @default 300000 */
  wait?: number;
  /** Interval of progress notifications while a call waits, in ms. @default 2000 */
  progressEveryMs?: number;
}

/**
 * Policy checks that do not depend on the arguments: could this agent, as its token identifies it,
 * ever call the tool here? Only a listing filter — the front door and the workflow decide each call.
 */
function mayCall(name: string, tool: CompiledTool, identity: AgentIdentityView): boolean {
  if (identity.tools && !identity.tools.includes(name)) return false;
  if (tool.environments && !tool.environments.has(identity.environment)) return false;
  if (tool.tenants && !tool.tenants.has(identity.tenant)) return false;
  return identity.roles.some((role) => tool.allowedRoles.has(role));
}

interface Exposed {
  name: string;
  tool: CompiledTool;
  adapter: McpAdapter;
}

/**
 * Creates one MCP server session for an agent (stdio: one per process; HTTP: one per request),
 * speaking to the front door through `gateway` — the agent's own client, with its token.
 */
export function createMcpGatewayServer(options: McpGatewayOptions, gateway: ToolGateway): Server {
  const server = new Server({ name: 'toolgate', version: '0.1.0' }, { capabilities: { tools: {} } });
  const wait = options.wait ?? 300_000;

  const exposed = async (): Promise<Exposed[]> => {
    const policy = await options.policy();
    if (!policy) return [];
    const identity = await gateway.identity();
    const out: Exposed[] = [];
    for (const name of policy.toolNames) {
      const tool = policy.tools.get(name);
      if (tool?.manifest.adapter.type === 'mcp' && mayCall(name, tool, identity)) out.push({ name, tool, adapter: tool.manifest.adapter });
    }
    return out;
  };

  /** The current downstream definitions of the exposed tools, server by server; an unreachable server contributes none. */
  const definitions = async (tools: Exposed[]): Promise<Map<string, Tool | undefined>> => {
    const byServer = new Map<string, Exposed[]>();
    for (const item of tools) byServer.set(item.adapter.server, [...(byServer.get(item.adapter.server) ?? []), item]);
    const found = new Map<string, Tool | undefined>();
    await Promise.all(
      [...byServer].map(async ([serverName, items]) => {
        let client;
        try {
          client = await connectDownstream(serverName, items[0]!.adapter.connection);
          const listed = await listDownstreamTools(client);
          for (const item of items)
            found.set(
              item.name,
              listed.find((t) => t.name === item.adapter.tool),
            );
        } catch (err) {
          options.logger.warn({ server: serverName, err: (err as Error).message }, 'downstream MCP server unavailable; its tools are not offered');
        } finally {
          await client?.close().catch(() => undefined);
        }
      }),
    );
    return found;
  };

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const tools = await exposed();
    const defs = await definitions(tools);
    const listed: Tool[] = [];
    for (const item of tools) {
      if (!defs.has(item.name)) continue;
      const definition = defs.get(item.name);
      if (!definition) continue;
      const problem = pinProblem(item.adapter, definition);
      listed.push({
        name: item.name,
        description: problem ? `[refused until re-pinned] ${problem}` : (item.tool.manifest.description ?? definition.description ?? ''),
        inputSchema: definition.inputSchema,
        ...(definition.annotations && { annotations: definition.annotations }),
      });
    }
    listed.push({
      name: CHECK_REQUEST_TOOL,
      description: 'Check on a tool call that was waiting for human approval, by the requestId it returned.',
      inputSchema: { type: 'object', properties: { requestId: { type: 'string' } }, required: ['requestId'], additionalProperties: false },
    });
    return { tools: listed };
  });

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const { name, arguments: args = {} } = request.params;
    const meta = request.params._meta;
    const progressToken = meta?.progressToken;
    let progress = 0;
    const runOptions = {
      wait,
      signal: extra.signal,
      progressEveryMs: options.progressEveryMs ?? 2000,
      onProgress: async ({ state, elapsedMs, requestId }: { state: string; elapsedMs: number; requestId: string }) => {
        if (progressToken === undefined) return;
        progress += 1;
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress, message: `request ${requestId} is ${state.replace('_', ' ')} (${Math.round(elapsedMs / 1000)}s)` },
        });
      },
    };

    if (name === CHECK_REQUEST_TOOL) {
      const parsed = z.object({ requestId: z.string() }).safeParse(args);
      if (!parsed.success) return refusal({ ok: false, status: 'invalid_request', message: 'requestId (a string) is required' });
      return toMcpResult(await checkRequest(gateway, parsed.data.requestId, { ...runOptions, wait: 0 }));
    }

    const item = (await exposed()).find((candidate) => candidate.name === name);
    if (item) {
      const defs = await definitions([item]);
      if (!defs.has(item.name))
        return refusal({ ok: false, status: 'failed', tool: name, message: `MCP server ${item.adapter.server} is unavailable; ${name} was not called` });
      const problem = pinProblem(item.adapter, defs.get(item.name));
      if (problem) {
        const identity = await gateway.identity();
        options.logger.warn(
          { tool: name, server: item.adapter.server, agent: identity.id, tenant: identity.tenant },
          'refused a call to a tool that does not match its pin',
        );
        return refusal({ ok: false, status: 'denied', tool: name, message: problem, reasons: [problem] });
      }
    }
    // Everything else, known or not, goes to the gateway: an unknown tool is a recorded denial.
    // Only the tool, its arguments and the request id are sent: who asks is the token's to say.
    const requestId =
      typeof meta?.[REQUEST_ID_META_KEY] === 'string' && IDENTIFIER_PATTERN.test(meta[REQUEST_ID_META_KEY]) ? meta[REQUEST_ID_META_KEY] : undefined;
    // Passed as the client gave it, never dropped: the front door validates it (a bad one is refused, naming the field).
    const provenance = meta?.[PROVENANCE_META_KEY] as Provenance | undefined;
    const call = await runRequest(gateway, toolRequest({}, name, args, requestId, provenance), runOptions);
    return toMcpResult(call);
  });

  return server;
}

function refusal(result: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result, isError: true };
}

function isCallToolResult(value: unknown): value is CallToolResult {
  return value !== null && typeof value === 'object' && Array.isArray((value as { content?: unknown }).content);
}

function toMcpResult(call: CallResult): CallToolResult {
  if (call.kind !== 'completed') return refusal({ ...call.toolResult });
  if (isCallToolResult(call.result)) return call.result;
  return { content: [{ type: 'text', text: JSON.stringify(call.result ?? null) }] };
}
