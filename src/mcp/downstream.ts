/** Connecting to a downstream MCP server (stdio or Streamable HTTP) as an MCP client. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { McpServerConnection } from '../policy/model.js';
import { ToolgateError } from '../errors.js';

/** The MCP server could not be reached or did not complete the handshake. */
export class McpServerUnavailableError extends ToolgateError {
  override readonly name = 'McpServerUnavailableError';
  constructor(
    readonly server: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('mcp_server_unavailable', `MCP server ${server} is unavailable: ${message}`, options);
  }
}

/** Opens a client session with a downstream server; close it with `client.close()`. */
export async function connectDownstream(server: string, connection: McpServerConnection): Promise<Client> {
  const client = new Client({ name: 'toolgate', version: '0.1.0' });
  const transport =
    connection.transport === 'stdio'
      ? new StdioClientTransport({
          command: connection.command,
          args: connection.args,
          env: { ...getDefaultEnvironment(), ...connection.env },
          ...(connection.cwd !== undefined && { cwd: connection.cwd }),
          stderr: 'ignore',
        })
      : new StreamableHTTPClientTransport(new URL(connection.url), { requestInit: { headers: connection.headers } });
  try {
    await client.connect(transport);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw new McpServerUnavailableError(server, (err as Error).message, { cause: err });
  }
  return client;
}

/** Every tool a downstream server lists (following pagination). */
export async function listDownstreamTools(client: Client): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  return tools;
}
