/**
 * `toolgate api`: the approval API (approvers, agents' front door, the inbox, the codec endpoint,
 * the audit API) against a Temporal deployment.
 */
import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { createAgentIdentityRouter, createAgentRouter } from '../api/agents.js';
import { createApiApp } from '../api/app.js';
import { FrontDoor } from '../api/front-door.js';
import { AgentTokenVerifier } from '../auth/agent-tokens.js';
import { createApproverVerifier, createLinkVerifier } from '../auth/config.js';
import { ensureLocalKeyPair } from '../auth/tokens.js';
import { AesGcmCodec, dataConverterFor } from '../codec/index.js';
import type { Config } from '../config.js';
import { createInboxRouter, inboxOptionsFromEnv } from '../inbox/index.js';
import { tracedClient } from '../telemetry.js';
import { loadFrontDoorKeys } from '../trust/store.js';
import { closeServer, onAbort } from './lifecycle.js';
import { codecKeyring, loadPolicyStore } from './loaders.js';
import { registerServiceCommand } from './service-command.js';
import { KnownRuns } from '../api/known-runs.js';

/** Starts the approval API; resolves with the listening server. */
export async function startApi(
  config: Config,
  logger: Logger,
  options: { devTrustedUiOrigins?: readonly string[]; signal?: AbortSignal } = {},
): Promise<{ server: Server; connection: Connection }> {
  const keyring = await codecKeyring(config);
  const connection = await Connection.connect({ address: config.temporalAddress });
  // With tracing on, workflow starts, updates and queries carry the HTTP request's trace.
  const client = tracedClient(new Client({ connection, namespace: config.namespace, dataConverter: dataConverterFor(keyring) }));
  const verifier = await createApproverVerifier({ stateDir: config.stateDir });
  // The approver inbox at /inbox: server-rendered pages over this process's own JSON API.
  const inbox = createInboxRouter(
    await inboxOptionsFromEnv({ stateDir: config.stateDir, apiBaseUrl: `http://${loopbackFor(config.apiHost)}:${config.apiPort}`, verifier, logger }),
  );
  const linkVerifier = await createLinkVerifier({ stateDir: config.stateDir });
  // With the local issuer's default key files (a local state directory), create the pair as `dev` does.
  if (!process.env.TOOLGATE_TOKEN_PUBLIC_KEY_FILE && !process.env.TOOLGATE_TOKEN_PRIVATE_KEY_FILE) {
    await ensureLocalKeyPair({ privateKeyFile: config.privateKeyFile, publicKeyFile: config.publicKeyFile });
  }
  const agentVerifier = existsSync(config.publicKeyFile) ? await AgentTokenVerifier.fromPublicKeyFile(config.publicKeyFile, config.tokenIssuer) : undefined;
  if (!agentVerifier) logger.warn({ publicKeyFile: config.publicKeyFile }, 'no local token key: the agent API (/v1/tool-requests) is disabled');
  const signers = await loadFrontDoorKeys(config.stateDir);
  // The same policy files as the workers: approvers see argument schemas and preview edits with them.
  const policy = await loadPolicyStore(config, logger, options.signal);
  // One front door: agents' requests and the linked requests (overrides, rollbacks) approvers start are signed and started alike.
  // The runs the front door starts are remembered, so approvers' decisions need no describe first.
  const runs = new KnownRuns();
  const frontDoor = new FrontDoor(client, signers.requests, undefined, runs);
  const app = createApiApp({
    client,
    runs,
    policy,
    verifier,
    decisions: signers.decisions,
    frontDoor,
    links: { verify: (token, expected) => linkVerifier.verifyLink(token, expected) },
    logger,
    codec: {
      codec: new AesGcmCodec(keyring),
      uiOrigins: config.uiOrigins,
      ...(options.devTrustedUiOrigins ? { devTrustedUiOrigins: options.devTrustedUiOrigins } : {}),
    },
    mount: (api) => {
      api.use('/inbox', inbox);
      if (agentVerifier) {
        api.use('/v1/tool-requests', createAgentRouter({ frontDoor, verifier: agentVerifier, logger, decisions: signers.decisions }));
        api.use('/v1/agent', createAgentIdentityRouter({ verifier: agentVerifier, logger }));
      }
    },
  });
  const server = await new Promise<Server>((resolveServer, reject) => {
    const listening = app.listen(config.apiPort, config.apiHost, (err?: Error) => (err ? reject(err) : resolveServer(listening)));
  });
  return { server, connection };
}

/** The address this process reaches its own API at: a wildcard bind is reached on loopback. */
function loopbackFor(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Registers `toolgate api`. */
export function registerApiCommand(program: Command): void {
  registerServiceCommand(program, {
    name: 'api',
    description: 'Run the approval API against TEMPORAL_ADDRESS',
    telemetry: true,
    run: async ({ logger, config, signal }) => {
      const { server, connection } = await startApi(config, logger, { signal });
      logger.info({ url: config.publicUrl }, 'approval API listening');
      await new Promise<void>((resolveStop) => onAbort(signal, () => resolveStop()));
      await closeServer(server);
      await connection.close();
    },
  });
}
