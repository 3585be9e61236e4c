/**
 * The MCP gateway: an MCP server in front of the downstream MCP servers of the manifest. It lists
 * the downstream tools policy lets this agent call (under their toolgate names) and sends every
 * `tools/call` through the gateway, so each call is decided, approved where policy says so,
 * executed once by a worker and recorded. A tool whose definition no longer matches its pin is
 * refused, saying so. While a call waits for people, progress notifications keep the client informed.
 * When a call waits under a plan that accepts the end user's confirmation and the client can ask
 * its user (capability `elicitation`), the gateway asks them (`elicitation/create`): accept
 * confirms (or adjusts, when they changed an argument), decline rejects, cancel leaves the call
 * to the approvers.
 *
 * It is agent-side code: it holds the agent's credential (a `ToolGateway`) and nothing else — no
 * Temporal connection, no codec key. Who the agent is comes from that credential (`GET /v1/agent`),
 * both for what it lists and for what the front door records.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  type CallToolResult,
  type ElicitRequestFormParams,
  type ElicitResult,
  type PrimitiveSchemaDefinition,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  awaitRequest,
  checkRequest,
  endUserProposalOf,
  relayEndUserAnswer,
  runRequest,
  settledView,
  toolRequest,
  type CallResult,
  type EndUserAnswer,
  type EndUserProposal,
  type RunOptions,
} from '../adapters/core.js';
import { ToolGatewayError } from '../client/errors.js';
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
  /**
   * Ask the end user through the client (`elicitation/create`) when a call waits under a plan
   * that accepts their confirmation and the client declared the `elicitation` capability. Never
   * over stateless Streamable HTTP (each POST is its own session there, so the client's answer
   * could not reach the call that asked). @default true
   */
  elicitation?: boolean;
  /** How long a call waits for the policy's decision before it is no longer put to the end user, in ms. @default 15000 */
  decisionTimeoutMs?: number;
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
    const toolCall = toolRequest({}, name, args, requestId, provenance);
    if (item && canElicit()) return toMcpResult(await runWithEndUser(toolCall, item, runOptions, extra.requestId));
    return toMcpResult(await runRequest(gateway, toolCall, runOptions));
  });

  /** Whether this session can ask the client's user: the client said it can, and its answer can come back to this call. */
  const canElicit = (): boolean => {
    if (options.elicitation === false || !server.getClientCapabilities()?.elicitation?.form) return false;
    const transport = server.transport;
    return !(transport instanceof StreamableHTTPServerTransport && transport.sessionId === undefined);
  };

  /**
   * Runs a call like `runRequest`, but once policy has decided it, a request that waits under a
   * plan accepting the end user is put to them through the client, and their answer relayed
   * (bound to the digest of what they were shown) before waiting for the outcome as usual.
   */
  const runWithEndUser = async (
    request: ReturnType<typeof toolRequest>,
    item: Exposed,
    runOptions: RunOptions,
    relatedRequestId: string | number,
  ): Promise<CallResult> => {
    try {
      const handle = await gateway.start(request);
      const proposal = endUserProposalOf(await settledView(handle, options.decisionTimeoutMs ?? 15_000), request.tool);
      if (proposal) {
        const answer = await askEndUser(item, proposal, relatedRequestId, runOptions.signal);
        if (answer) {
          const relayed = await relayEndUserAnswer(handle, answer);
          if (!relayed.relayed)
            options.logger.warn(
              { tool: item.name, requestId: proposal.requestId, code: relayed.code },
              "the end user's answer was not recorded; the call waits for approvers",
            );
        }
      }
      return await awaitRequest(gateway, handle, request.tool, runOptions);
    } catch (err) {
      if (err instanceof ToolGatewayError) return { kind: 'refused', toolResult: err.toToolResult(), ...(err.outcome && { outcome: err.outcome }) };
      throw err;
    }
  };

  /** Asks the client's user about `proposal`; the answer to relay, or undefined (cancelled, no answer in time, or the client failed). */
  const askEndUser = async (
    item: Exposed,
    proposal: EndUserProposal,
    relatedRequestId: string | number,
    signal: AbortSignal | undefined,
  ): Promise<EndUserAnswer | undefined> => {
    const form = elicitationForm(item.tool.manifest.argsSchema, proposal.args);
    const expiresIn = proposal.expiresAt === undefined ? Number.POSITIVE_INFINITY : Date.parse(proposal.expiresAt) - Date.now();
    const timeout = Math.max(1_000, Math.min(wait, expiresIn, 2_147_483_647));
    let result: ElicitResult;
    try {
      result = await server.elicitInput(
        { mode: 'form', message: elicitationMessage(item, proposal, form.editable), requestedSchema: form.requestedSchema },
        { relatedRequestId, timeout, ...(signal && { signal }) },
      );
    } catch (err) {
      options.logger.warn(
        { tool: item.name, requestId: proposal.requestId, err: (err as Error).message },
        'the client did not answer the confirmation request; the call waits for approvers',
      );
      return undefined;
    }
    return answerOf(result, proposal, form.editable);
  };

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

/** The JSON Schema type of a property, when it is a flat primitive an elicitation form can carry. */
function primitiveOf(schema: unknown, proposed: unknown): PrimitiveSchemaDefinition | undefined {
  if (schema === null || typeof schema !== 'object') return undefined;
  const { type, title, description, enum: choices, minimum, maximum, minLength, maxLength } = schema as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const num = (value: unknown) => (typeof value === 'number' ? value : undefined);
  const labels = { ...(text(title) !== undefined && { title: text(title) }), ...(text(description) !== undefined && { description: text(description) }) };
  if (type === 'string') {
    if (Array.isArray(choices)) {
      if (!choices.every((choice) => typeof choice === 'string')) return undefined;
      return { type: 'string', ...labels, enum: choices, ...(typeof proposed === 'string' && { default: proposed }) };
    }
    return {
      type: 'string',
      ...labels,
      ...(num(minLength) !== undefined && { minLength: num(minLength) }),
      ...(num(maxLength) !== undefined && { maxLength: num(maxLength) }),
      ...(typeof proposed === 'string' && { default: proposed }),
    };
  }
  if (type === 'number' || type === 'integer') {
    return {
      type,
      ...labels,
      ...(num(minimum) !== undefined && { minimum: num(minimum) }),
      ...(num(maximum) !== undefined && { maximum: num(maximum) }),
      ...(typeof proposed === 'number' && { default: proposed }),
    };
  }
  if (type === 'boolean') return { type: 'boolean', ...labels, ...(typeof proposed === 'boolean' && { default: proposed }) };
  return undefined;
}

/**
 * The elicitation form of a proposal: the tool's arguments that are flat primitives (string,
 * number, integer, boolean; a string enum), each with the proposed value as its default, so the
 * end user may change them. Other arguments are not in the form and stay as proposed.
 */
export function elicitationForm(
  argsSchema: Record<string, unknown> | undefined,
  proposed: Record<string, unknown>,
): { requestedSchema: ElicitRequestFormParams['requestedSchema']; editable: string[] } {
  const properties: Record<string, PrimitiveSchemaDefinition> = {};
  const declared = (argsSchema?.properties ?? {}) as Record<string, unknown>;
  for (const [key, schema] of Object.entries(declared)) {
    const proposedValue = proposed[key];
    // Only a value the form can show as it is: an object or array in place of a primitive stays as proposed.
    if (proposedValue !== undefined && (proposedValue === null || typeof proposedValue === 'object')) continue;
    const primitive = primitiveOf(schema, proposedValue);
    if (primitive) properties[key] = primitive;
  }
  const required = (Array.isArray(argsSchema?.required) ? (argsSchema.required as unknown[]) : []).filter(
    (key): key is string => typeof key === 'string' && key in properties,
  );
  return { requestedSchema: { type: 'object', properties, ...(required.length > 0 && { required }) }, editable: Object.keys(properties) };
}

/** What the end user is told: the tool, what it does, the arguments it will run with, and the preview when there is one. */
function elicitationMessage(item: Exposed, proposal: EndUserProposal, editable: string[]): string {
  const lines = [`Confirm ${item.name}${item.tool.manifest.description ? ` — ${item.tool.manifest.description}` : ''}`];
  lines.push(`It will run with: ${JSON.stringify(proposal.args)}`);
  if (proposal.preview?.status === 'ok') lines.push(`Preview of what it will do: ${JSON.stringify(proposal.preview.result)}`);
  else if (proposal.preview) lines.push(`The preview could not be made (${proposal.preview.status}): ${proposal.preview.message}`);
  lines.push(
    editable.length > 0
      ? `Accept to run it (change ${editable.join(', ')} first if they are not right), decline to refuse it, or cancel to leave it to the approvers.`
      : 'Accept to run it, decline to refuse it, or cancel to leave it to the approvers.',
  );
  return lines.join('\n');
}

/**
 * The answer to relay for an elicitation result: accept with the proposed values → confirm; with
 * changed values → adjust (the changes merged into the proposed arguments); decline → decline;
 * cancel → nothing (the approvers, or expiry, decide).
 */
export function answerOf(result: ElicitResult, proposal: Pick<EndUserProposal, 'digest' | 'args'>, editable: readonly string[]): EndUserAnswer | undefined {
  if (result.action === 'decline') return { decision: 'decline', digest: proposal.digest, reason: 'declined by the end user' };
  if (result.action !== 'accept') return undefined;
  const content = result.content ?? {};
  const changes: Record<string, unknown> = {};
  for (const key of editable) {
    if (!(key in content)) continue;
    const value = content[key];
    if (value !== proposal.args[key]) changes[key] = value;
  }
  if (Object.keys(changes).length === 0) return { decision: 'confirm', digest: proposal.digest };
  return { decision: 'adjust', digest: proposal.digest, args: { ...proposal.args, ...changes } };
}
