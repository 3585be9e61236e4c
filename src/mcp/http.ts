/**
 * The MCP gateway over Streamable HTTP, stateless: each POST to `/mcp` carries the agent's own
 * bearer token (an agent token). The gateway does not verify or keep it: it forwards it to the
 * front door, building a client of that agent for the one request — the API verifies it and says
 * who the agent is (`GET /v1/agent`). It answers on the same request (JSON, or an SSE stream
 * carrying progress notifications). It holds no Temporal connection and no codec key.
 */
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express, { type Request, type Response } from 'express';
import { GatewayRequestError } from '../client/errors.js';
import { ToolGateway, type ToolGatewayOptions } from '../client/gateway.js';
import { createMcpGatewayServer, type McpGatewayOptions } from './gateway-server.js';

/** Options of the HTTP MCP gateway. */
export interface McpHttpOptions extends McpGatewayOptions {
  /** Base URL of the toolgate API (the front door) each agent's token is forwarded to. */
  apiUrl: string;
  /**
   * When set, only agents whose token is for this environment are served (others get 403): a
   * gateway deployed for one environment. It narrows, never grants — identity stays the token's.
   */
  environment?: string;
  /** Options of the per-request front-door client (e.g. `pollSeconds`, `fetch`). */
  client?: Omit<ToolGatewayOptions, 'url' | 'token'>;
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
    const gateway = new ToolGateway({ ...options.client, url: options.apiUrl, token: match[1] });
    let agent;
    try {
      // The API verifies the token; the answer is the identity this request acts as.
      agent = await gateway.identity();
    } catch (err) {
      if (err instanceof GatewayRequestError && err.status === 401) {
        res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
        jsonRpcError(res, 401, err.message);
        return;
      }
      options.logger.error({ err: (err as Error).message }, 'the toolgate API could not say who the agent is');
      jsonRpcError(res, 502, 'the toolgate API is unavailable; try again');
      return;
    }
    if (options.environment !== undefined && agent.environment !== options.environment) {
      jsonRpcError(res, 403, `this MCP gateway serves environment ${options.environment}; the agent's token is for ${agent.environment}`);
      return;
    }
    const server = createMcpGatewayServer(options, gateway);
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
