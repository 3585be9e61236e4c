/**
 * `toolgate token issue`: an approver token, or with `--agent` an agent token (the only credential
 * an agent holds), minted from the local key (created under the state directory if missing).
 */
import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { issueAgentToken } from '../auth/agent-tokens.js';
import { ensureLocalKeyPair, issueApproverToken } from '../auth/tokens.js';
import { loadConfig } from '../config.js';

/** A `--ttl` value: a positive whole number of seconds. */
const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number of seconds');
  return n;
};

/** Registers `toolgate token issue`. */
export function registerTokenCommands(program: Command): void {
  program
    .command('token')
    .description('Approver tokens')
    .command('issue')
    .description('Mint an approver token from the local key (created under .toolgate/keys/ if missing)')
    .requiredOption('--sub <id>', 'the approver id')
    .requiredOption('--tenant <tenant>', 'the tenant the approver decides for')
    .option('--groups <groups>', 'comma-separated approver groups', '')
    .option('--ttl <seconds>', 'lifetime in seconds', positiveInt, 8 * 3600)
    .option('--agent', 'mint an agent token (the credential of the client SDK, the adapters, `toolgate mcp` and the agent API) instead of an approver token')
    .option('--roles <roles>', 'with --agent: comma-separated actor roles', '')
    .option('--environment <env>', 'with --agent: the environment the agent acts in (required with --agent)')
    .option('--tools <tools>', 'with --agent: only these tools (comma-separated); default: whatever policy allows')
    .option('--on-behalf-of <principals>', 'with --agent: the principals the agent acts for, nearest first, as type:id (e.g. human:maria)')
    .action(
      async (options: {
        sub: string;
        tenant: string;
        groups: string;
        ttl: number;
        agent?: boolean;
        roles: string;
        environment?: string;
        tools?: string;
        onBehalfOf?: string;
      }) => {
        const config = loadConfig();
        await ensureLocalKeyPair({ privateKeyFile: config.privateKeyFile, publicKeyFile: config.publicKeyFile });
        if (options.agent) {
          const split = (value: string | undefined) =>
            (value ?? '')
              .split(',')
              .map((r) => r.trim())
              .filter(Boolean);
          if (!options.environment) throw new InvalidArgumentError('--environment <env> is required with --agent: an agent token binds where the agent acts');
          const onBehalfOf = split(options.onBehalfOf).map((entry) => {
            const [type, ...id] = entry.split(':');
            if (type !== 'human' && type !== 'agent' && type !== 'service')
              throw new InvalidArgumentError(`--on-behalf-of: ${entry} must be type:id with type human, agent or service`);
            return { type, id: id.join(':') } as const;
          });
          const agentToken = await issueAgentToken(
            {
              sub: options.sub,
              tenant: options.tenant,
              roles: split(options.roles),
              environment: options.environment,
              ...(onBehalfOf.length > 0 ? { onBehalfOf } : {}),
              ...(options.tools ? { tools: split(options.tools) } : {}),
            },
            { privateKeyPem: await readFile(config.privateKeyFile, 'utf8'), ttlSeconds: options.ttl, issuer: config.tokenIssuer },
          );
          process.stdout.write(`${agentToken}\n`);
          return;
        }
        const token = await issueApproverToken(
          {
            sub: options.sub,
            tenant: options.tenant,
            groups: options.groups
              .split(',')
              .map((g) => g.trim())
              .filter(Boolean),
          },
          { privateKeyPem: await readFile(config.privateKeyFile, 'utf8'), ttlSeconds: options.ttl, issuer: config.tokenIssuer },
        );
        process.stdout.write(`${token}\n`);
      },
    );
}
