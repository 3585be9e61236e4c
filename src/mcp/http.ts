/**
 * The MCP gateway over Streamable HTTP, stateless: each POST to `/mcp` authenticates the agent's
 * bearer token (an agent token), builds a session for that agent and answers on the same request
 * (JSON or an SSE stream carrying progress notifications).
 */
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express, { type Request, type Response } from 'express';
import type { AgentVerifier } from '../auth/agent-tokens.js';
import { createMcpGatewayServer, type McpGatewayOptions } from './gateway-server.js';

/** Options of the HTTP MCP gateway. */
export interface McpHttpOptions extends McpGatewayOptions {
  verifier: AgentVerifier;
  /** The environment every request of this gateway is for (e.g. production). */
  environment: string;
}

/** Creates the express app serving MCP at `/mcp`. */
export function createMcpHttpApp(options: McpHttpOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const jsonRpcError = (res: Response, status: number, message: string) =>
    res.status(status).json({ jsonrpc: '2.0', error: { code: -32001, message }, id: null });

  app.post('/mcp', express.json({ limit: '300kb' }), async (req: Request, res: Response) => {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(req.get('authorization') ?? '');
    if (!match?.[1]) {
      res.set('WWW-Authenticate', 'Bearer');
      jsonRpcError(res, 401, 'Authorization: Bearer <agent token> is required');
      return;
    }
    let agent;
    try {
      agent = await options.verifier.verify(match[1]);
    } catch (err) {
      res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      jsonRpcError(res, 401, (err as Error).message);
      return;
    }
    const server = createMcpGatewayServer(options, {
      actor: { id: agent.id, type: 'agent', roles: agent.roles },
      tenant: agent.tenant,
      environment: options.environment,
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (err) {
      options.logger.error({ err }, 'MCP request failed');
      if (!res.headersSent) jsonRpcError(res, 500, 'internal error');
    }
  });
  app.all('/mcp', (_req, res) => {
    res.set('Allow', 'POST');
    jsonRpcError(res, 405, 'this gateway is stateless: POST JSON-RPC messages to /mcp');
  });
  return app;
}
