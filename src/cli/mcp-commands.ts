/**
 * The `toolgate mcp` and `toolgate tools pin` commands. The MCP gateway is started by an agent
 * runtime, so it holds only an agent credential: over stdio the agent token in
 * `TOOLGATE_AGENT_TOKEN`, over HTTP each request's own bearer token, forwarded to the front door.
 * It never connects to Temporal and holds no codec or signing key; who the agent is comes from the
 * token (`GET /v1/agent`).
 */
import type { Server } from 'node:http';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { InvalidArgumentError, type Command } from 'commander';
import { GatewayRequestError } from '../client/errors.js';
import { ToolGateway, type AgentIdentityView } from '../client/gateway.js';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { createMcpGatewayServer } from '../mcp/gateway-server.js';
import { createMcpHttpApp } from '../mcp/http.js';
import { pinTools } from '../mcp/pin.js';
import { PolicyStore } from '../policy/store.js';
import { IDENTIFIER_PATTERN, canonicalId } from '../shared/index.js';

const identifier = (what: string) => (value: string) => {
  if (!IDENTIFIER_PATTERN.test(value)) throw new InvalidArgumentError(`${what} must be 1-128 letters, digits and . _ : @ -`);
  return value;
};
const list = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
const seconds = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds');
  return n;
};
const url = (value: string) => {
  try {
    return new URL(value).toString();
  } catch {
    throw new InvalidArgumentError('expected an absolute URL, e.g. http://127.0.0.1:8787');
  }
};

interface McpCommandOptions {
  url: string;
  http?: string;
  host: string;
  environment?: string;
  actor?: string;
  roles?: string[];
  tenant?: string;
  wait: number;
}

/**
 * The options that restate the token's identity but say something else, by option name. They
 * can only confirm the identity (a launcher's safety check), never choose it.
 */
export function identityOptionMismatches(
  identity: AgentIdentityView,
  options: Pick<McpCommandOptions, 'actor' | 'roles' | 'tenant' | 'environment'>,
): string[] {
  const mismatched: string[] = [];
  if (options.actor !== undefined && canonicalId(options.actor) !== identity.id)
    mismatched.push(`--actor ${options.actor} (the token's agent is ${identity.id})`);
  if (options.roles !== undefined) {
    const same = options.roles.length === identity.roles.length && options.roles.every((role) => identity.roles.includes(role));
    if (!same) mismatched.push(`--roles ${options.roles.join(',')} (the token's roles are ${identity.roles.join(',') || 'none'})`);
  }
  if (options.tenant !== undefined && options.tenant !== identity.tenant)
    mismatched.push(`--tenant ${options.tenant} (the token's tenant is ${identity.tenant})`);
  if (options.environment !== undefined && options.environment !== identity.environment) {
    mismatched.push(`--environment ${options.environment} (the token's environment is ${identity.environment})`);
  }
  return mismatched;
}

/** Adds `mcp` and `tools pin` to the program. */
export function registerMcpCommands(program: Command): void {
  program
    .command('mcp')
    .description("Serve the manifest's downstream MCP tools through the gateway (stdio by default, Streamable HTTP with --http) as the agent its token names")
    .option('--url <url>', 'the toolgate API (front door)', url, process.env.TOOLGATE_URL ?? 'http://127.0.0.1:8787')
    .option('--http <port>', 'serve Streamable HTTP at http://<host>:<port>/mcp (each agent sends its own agent token)')
    .option('--host <host>', 'with --http: the interface to listen on', '127.0.0.1')
    .option('--environment <env>', "stdio: must equal the token's environment; --http: serve only tokens of this environment", identifier('environment'))
    .option('--actor <id>', "stdio: must equal the token's agent id (identity comes from TOOLGATE_AGENT_TOKEN)")
    .option('--roles <roles>', "stdio: must equal the token's roles (comma-separated)", list)
    .option('--tenant <tenant>', "stdio: must equal the token's tenant", identifier('tenant'))
    .option('--wait <seconds>', 'how long a call waits for approval before answering "pending"', seconds, 300)
    .action(async (options: McpCommandOptions) => {
      const logger = createLogger('toolgate-mcp');
      const config = loadConfig();
      const store = new PolicyStore();
      const state = await store.load(config.policyPaths);
      if (state.error) logger.error({ err: state.error.message }, 'policy failed to load: no tools are offered');
      // Reload at most once a second, so a `toolgate tools pin` takes effect without a restart.
      let loadedAt = Date.now();
      const policy = async () => {
        if (Date.now() - loadedAt > 1000) {
          loadedAt = Date.now();
          const reloaded = await store.load(config.policyPaths);
          if (reloaded.error) logger.error({ err: reloaded.error.message }, 'policy failed to reload; keeping the previous one');
        }
        return store.current().policy;
      };
      const gatewayOptions = { policy, logger, wait: options.wait * 1000 };
      if (options.http !== undefined) {
        const stdioOnly = (['actor', 'roles', 'tenant'] as const).filter((name) => options[name] !== undefined).map((name) => `--${name}`);
        if (stdioOnly.length > 0) {
          throw new InvalidArgumentError(`${stdioOnly.join(', ')}: stdio only; over --http each agent's own token says who it is`);
        }
        const app = createMcpHttpApp({
          ...gatewayOptions,
          apiUrl: options.url,
          ...(options.environment !== undefined && { environment: options.environment }),
        });
        const port = Number(options.http);
        const server = await new Promise<Server>((resolve, reject) => {
          const listening = app.listen(port, options.host, (err?: Error) => (err ? reject(err) : resolve(listening)));
        });
        const address = server.address();
        const actualPort = typeof address === 'object' && address ? address.port : port;
        process.stdout.write(`toolgate MCP gateway listening on http://${options.host}:${actualPort}/mcp\n`);
        const stop = () => {
          server.closeAllConnections();
          server.close();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        return;
      }
      const token = process.env.TOOLGATE_AGENT_TOKEN;
      if (!token) throw new Error('toolgate mcp (stdio) needs the agent token in TOOLGATE_AGENT_TOKEN (mint one with `toolgate token issue --agent`)');
      const gateway = new ToolGateway({ url: options.url, token });
      let identity;
      try {
        identity = await gateway.identity();
      } catch (err) {
        if (err instanceof GatewayRequestError && err.status === 401)
          throw new Error(`the toolgate API at ${options.url} refused TOOLGATE_AGENT_TOKEN: ${err.message}`, { cause: err });
        throw err;
      }
      const mismatched = identityOptionMismatches(identity, options);
      if (mismatched.length > 0) {
        throw new InvalidArgumentError(`identity comes from TOOLGATE_AGENT_TOKEN, and these options say otherwise: ${mismatched.join('; ')}`);
      }
      const server = createMcpGatewayServer(gatewayOptions, gateway);
      await server.connect(new StdioServerTransport());
      logger.info({ agent: identity.id, tenant: identity.tenant, environment: identity.environment, api: options.url }, 'MCP gateway serving on stdio');
    });

  program
    .command('tools')
    .description('Work with tool definitions')
    .command('pin')
    .description('Pin the current definition (SHA-256) of each mcp adapter tool into the policy files, keeping comments')
    .argument('[paths...]', 'policy files or directories (default: TOOLGATE_POLICY)')
    .option('--tool <names>', 'only these tools (comma-separated)', list)
    .action(async (paths: string[], options: { tool?: string[] }) => {
      const results = await pinTools(paths.length > 0 ? paths : loadConfig().policyPaths, options.tool ? { only: options.tool } : {});
      for (const r of results) {
        const detail = r.digest ? ` sha256 ${r.digest}${r.previous ? ` (was ${r.previous})` : ''}` : r.message ? ` — ${r.message}` : '';
        process.stdout.write(`${r.status.padEnd(11)} ${r.tool} (${r.server})${r.file ? ` in ${r.file}` : ''}${detail}\n`);
      }
      if (results.length === 0) process.stdout.write('no mcp adapter tools in the policy\n');
      process.exitCode = results.some((r) => r.status === 'missing' || r.status === 'unavailable') ? 1 : 0;
    });
}
