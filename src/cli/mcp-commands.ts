/** The `toolgate mcp` and `toolgate tools pin` commands. */
import { dataConverterFor, loadKeyring } from '../codec/index.js';
import type { Server } from 'node:http';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { InvalidArgumentError, type Command } from 'commander';
import { AgentTokenVerifier } from '../auth/agent-tokens.js';
import { ToolGateway } from '../client/gateway.js';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { createMcpGatewayServer } from '../mcp/gateway-server.js';
import { createMcpHttpApp } from '../mcp/http.js';
import { pinTools } from '../mcp/pin.js';
import { PolicyStore } from '../policy-store.js';
import { IDENTIFIER_PATTERN } from '../shared/index.js';

const identifier = (what: string) => (value: string) => {
  if (!IDENTIFIER_PATTERN.test(value)) throw new InvalidArgumentError(`${what} must be 1-128 letters, digits and . _ : @ -`);
  return value;
};
const list = (value: string) => value.split(',').map((item) => item.trim()).filter(Boolean);
const seconds = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds');
  return n;
};

interface McpCommandOptions {
  http?: string;
  host: string;
  environment: string;
  actor?: string;
  roles: string[];
  tenant?: string;
  wait: number;
  taskQueue?: string;
}

/** Adds `mcp` and `tools pin` to the program. */
export function registerMcpCommands(program: Command): void {
  program
    .command('mcp')
    .description('Serve the manifest\'s downstream MCP tools through the gateway (stdio by default, Streamable HTTP with --http)')
    .requiredOption('--environment <env>', 'the environment the calls are for', identifier('environment'))
    .option('--http <port>', 'serve Streamable HTTP at http://<host>:<port>/mcp (agents authenticate with agent tokens)')
    .option('--host <host>', 'with --http: the interface to listen on', '127.0.0.1')
    .option('--actor <id>', 'stdio: the agent id calls are made as', identifier('actor'))
    .option('--roles <roles>', 'stdio: comma-separated roles of the agent', list, [])
    .option('--tenant <tenant>', 'stdio: the tenant', identifier('tenant'))
    .option('--wait <seconds>', 'how long a call waits for approval before answering "pending"', seconds, 300)
    .option('--task-queue <queue>', 'the workers\' task queue (default: toolgate)')
    .action(async (options: McpCommandOptions) => {
      const logger = createLogger('toolgate-mcp');
      const config = loadConfig();
      const store = new PolicyStore();
      const state = await store.load(config.policyPaths);
      if (state.error) logger.error({ err: state.error.message }, 'policy failed to load: no tools are offered');
      const gateway = new ToolGateway({
        address: config.temporalAddress,
        namespace: config.namespace,
        dataConverter: dataConverterFor(await loadKeyring({ devStateDir: config.stateDir })),
        ...(options.taskQueue && { taskQueue: options.taskQueue }),
      });
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
      const gatewayOptions = { gateway, policy, logger, wait: options.wait * 1000 };
      if (options.http !== undefined) {
        const verifier = await AgentTokenVerifier.fromPublicKeyFile(config.publicKeyFile, config.tokenIssuer);
        const app = createMcpHttpApp({ ...gatewayOptions, verifier, environment: options.environment });
        const port = Number(options.http);
        const server = await new Promise<Server>((resolve, reject) => {
          const listening = app.listen(port, options.host, (err?: Error) => (err ? reject(err) : resolve(listening)));
        });
        const address = server.address();
        const actualPort = typeof address === 'object' && address ? address.port : port;
        process.stdout.write(`toolgate MCP gateway listening on http://${options.host}:${actualPort}/mcp\n`);
        const stop = () => {
          server.closeAllConnections();
          server.close(() => void gateway.close());
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        return;
      }
      if (!options.actor || !options.tenant) throw new InvalidArgumentError('stdio mode needs --actor and --tenant (and usually --roles)');
      const server = createMcpGatewayServer(gatewayOptions, {
        actor: { id: options.actor, type: 'agent', roles: options.roles },
        tenant: options.tenant,
        environment: options.environment,
      });
      server.onclose = () => void gateway.close();
      await server.connect(new StdioServerTransport());
      logger.info({ actor: options.actor, tenant: options.tenant, environment: options.environment }, 'MCP gateway serving on stdio');
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
