/**
 * The `toolgate` command: `dev`, `worker`, `api`, `policy check|test`, `token issue`.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { Command, InvalidArgumentError } from 'commander';
import { hostname } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createAgentIdentityRouter, createAgentRouter } from '../api/agents.js';
import { createApiApp } from '../api/app.js';
import { FrontDoor } from '../api/front-door.js';
import { AgentTokenVerifier, issueAgentToken } from '../auth/agent-tokens.js';
import { createApproverVerifier, createLinkVerifier } from '../auth/config.js';
import { AesGcmCodec, dataConverterFor, defaultKeyringFile, ensureKeyringFile, loadKeyring, type CodecKeyring } from '../codec/index.js';
import { ensureLocalKeyPair, issueApproverToken } from '../auth/tokens.js';
import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../logger.js';
import { createNotifier } from '../notify/config.js';
import { RateLimits, checkPolicyFiles, manifestTrustFromConfig, runPolicyTests } from '../policy/index.js';
import { PolicyStore } from '../policy/store.js';
import { createInboxRouter, inboxOptionsFromEnv } from '../inbox/index.js';
import { IDENTIFIER_PATTERN, SEARCH_ATTRIBUTE_CLI_ARGS, TASK_QUEUE, searchAttributes } from '../shared/index.js';
import { KILL_SWITCH_CACHE_MS, KillSwitches } from '../policy/kill-switch-client.js';
import { requireTemporalCli } from '../temporal/cli.js';
import { devExportLine, startDevServer } from '../temporal/dev-server.js';
import { startMetricsServer } from '../metrics.js';
import { startTelemetry, tracedClient } from '../telemetry.js';
import { createExampleTools } from '../tools/examples.js';
import { createUndoExampleTools } from '../tools/undo-examples.js';
import type { ToolRegistry } from '../tools/types.js';
import { createToolgateWorker } from '../worker.js';
import { loadFrontDoorKeys, loadWorkerTrust } from '../trust/store.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerMcpCommands } from './mcp-commands.js';
import { registerKeysCommands } from './keys-commands.js';
import { registerPolicyCommands } from './policy-commands.js';
import { registerArchiverCommand, runDevArchiver } from './archiver-commands.js';
import { registerManifestCommands } from './manifest-commands.js';
import { registerRequestCommands } from './request-commands.js';
import { installRuntime } from '../temporal/runtime.js';

/** The shipped example tools the demo policies name (see policies/), on the state directory's ticket desk. */
function demoTools(stateDir: string | undefined): ToolRegistry {
  return { ...createExampleTools({ stateDir }), ...createUndoExampleTools({ stateDir }) };
}

async function loadPolicyStore(config: Config, logger: Logger, signal?: AbortSignal): Promise<PolicyStore> {
  // The deployment's manifest signers (never the policy files') check every load and reload; an unusable signers file stops the process.
  const store = new PolicyStore({ manifestTrust: await manifestTrustFromConfig(config) });
  const state = await store.load(config.policyPaths);
  if (state.error) {
    logger.error({ err: state.error.message }, 'policy failed to load: every request will be denied until it is fixed');
  } else {
    logger.info({ files: state.policy.files, digest: state.policy.digest }, 'policy loaded');
  }
  // Edits take effect without a restart; a broken edit is logged and the policy in force stays.
  const stop = await store.watch(config.policyPaths, { logger, signal: 'SIGHUP' });
  if (signal) onAbort(signal, stop);
  return store;
}

/** Why the shadow's search attribute cannot be used on `namespace`, or undefined when it is registered. */
async function shadowAttributeProblem(connection: NativeConnection, namespace: string): Promise<string | undefined> {
  const name = searchAttributes.shadowDisagreement.name;
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    if (customAttributes && Object.hasOwn(customAttributes, name)) return undefined;
    return `namespace ${namespace} has no search attribute ${name}: register it (temporal operator search-attribute create --name ${name} --type Keyword) and restart the worker`;
  } catch (err) {
    return `could not check that namespace ${namespace} has the search attribute ${name}: ${(err as Error).message}`;
  }
}

/**
 * The shadow policy (`TOOLGATE_SHADOW_POLICY`), loaded and watched like the policy in force, or
 * undefined when none is configured or its search attribute is not registered. A shadow that
 * does not load never stops the worker: it is logged here, and each request records the shadow
 * as unavailable while the policy in force decides.
 */
async function loadShadowPolicyStore(config: Config, logger: Logger, connection: NativeConnection, signal?: AbortSignal): Promise<PolicyStore | undefined> {
  if (config.shadowPolicyPaths.length === 0) return undefined;
  const log = logger.child({ policyRole: 'shadow' });
  // A disagreement is upserted as a search attribute; an attribute the namespace does not know
  // fails the workflow task, which would stall the request: without it, no shadow at all.
  const unregistered = await shadowAttributeProblem(connection, config.namespace);
  if (unregistered) {
    log.error({ err: unregistered }, 'shadow policy disabled: requests are enforced without it');
    return undefined;
  }
  const store = new PolicyStore();
  try {
    const state = await store.load(config.shadowPolicyPaths);
    if (state.error) log.error({ err: state.error.message }, 'shadow policy failed to load: requests record it as unavailable; enforcement is unaffected');
    else log.info({ files: state.policy.files, digest: state.policy.digest }, 'shadow policy loaded: every request is also decided by it, never enforced');
    const stop = await store.watch(config.shadowPolicyPaths, { logger: log, signal: 'SIGHUP' });
    if (signal) onAbort(signal, stop);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'shadow policy could not be watched: requests record it as unavailable until a restart');
  }
  return store;
}

/**
 * Runs `action` when `signal` aborts, or now if it already has: a listener added after the abort
 * would never run (a Ctrl-C during start-up would then leave a worker or watcher running).
 */
function onAbort(signal: AbortSignal, action: () => unknown): void {
  if (signal.aborted) void action();
  else signal.addEventListener('abort', () => void action(), { once: true });
}

/**
 * The payload-encryption keys of this process: `TOOLGATE_CODEC_KEYS`, else `TOOLGATE_CODEC_KEYS_FILE`,
 * else the key file under the state directory. Only `toolgate dev` creates that file (`create`);
 * every other process refuses to start without it, naming the three ways to provide keys,
 * because a key of its own could not read what the rest of the deployment wrote.
 */
export async function codecKeyring(config: Config, options: { create?: boolean } = {}): Promise<CodecKeyring> {
  return loadKeyring({ stateDir: config.stateDir, create: options.create ?? false });
}

/** What `runWorker` may add to the environment's notifier. */
interface WorkerOptions {
  /** Print each notification here too (`toolgate dev`: the review link of each waiting request). */
  notifyConsole?: (text: string) => void;
}

/** Starts a worker; resolves when it has shut down (at once if `signal` aborts during start-up). */
async function runWorker(config: Config, logger: Logger, tools: ToolRegistry, signal: AbortSignal, options: WorkerOptions = {}): Promise<void> {
  // Keys first: without them the worker must not start at all, whatever else is reachable.
  const dataConverter = dataConverterFor(await codecKeyring(config));
  if (signal.aborted) return;
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  // Counters shared by every worker given the same store; its description never holds the URL's password.
  const rateLimits = RateLimits.fromStore(config.rateLimitStore);
  try {
    if (signal.aborted) return;
    logger.info({ rateLimits: rateLimits.description }, 'rate limits counted in this store');
    const worker = await createToolgateWorker({
      connection,
      namespace: config.namespace,
      dataConverter,
      policy: await loadPolicyStore(config, logger, signal),
      tools,
      notifier: await createNotifier({
        publicUrl: config.publicUrl,
        stateDir: config.stateDir,
        logger,
        ...(options.notifyConsole ? { console: options.notifyConsole } : {}),
      }),
      logger,
      publicApiUrl: config.publicUrl,
      trust: await loadWorkerTrust(config.stateDir),
      rateLimits,
      shadowPolicy: await loadShadowPolicyStore(config, logger, connection, signal),
    });
    // Run even when a signal came during start-up: a created worker holds the connection until it
    // has run and shut down. `run()` marks it running at once, so shutting down right after is valid.
    const running = worker.run();
    onAbort(signal, () => {
      try {
        worker.shutdown();
      } catch {
        // Already stopping (the Temporal runtime reacts to the same signal).
      }
    });
    if (!signal.aborted) logger.info({ address: config.temporalAddress }, 'worker running');
    await running;
  } finally {
    await connection.close();
    await rateLimits.close();
  }
}

/** Starts the approval API; resolves with the listening server. */
async function startApi(
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
  const frontDoor = new FrontDoor(client, signers.requests);
  const app = createApiApp({
    client,
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

/** Asks a long-running command to stop: on SIGINT/SIGTERM, or from inside (`stop`). */
interface Shutdown {
  signal: AbortSignal;
  /** Starts the shutdown for `reason` (logged), as a signal would. */
  stop(reason: string): void;
}

/**
 * Graceful shutdown of `dev`, `worker` and `api`: the first SIGINT or SIGTERM (a Ctrl-C sends
 * SIGINT to the whole foreground process group) aborts the returned signal and the command stops
 * its parts in order; a second one exits at once with 130. Once the command has finished, a
 * process kept alive by a stray handle is made to exit (see `exitWhenDone`).
 */
function shutdownOnSignals(logger: Logger): Shutdown {
  const controller = new AbortController();
  const stop = (reason: string) => {
    if (controller.signal.aborted) {
      if (reason === 'SIGINT' || reason === 'SIGTERM') {
        logger.warn('second signal: exiting now');
        process.exit(130);
      }
      return;
    }
    logger.info({ signal: reason }, 'shutting down');
    controller.abort();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return { signal: controller.signal, stop };
}

function onShutdown(logger: Logger): AbortSignal {
  return shutdownOnSignals(logger).signal;
}

/**
 * After a long-running command has shut everything down: exit with its code even if a library
 * left a handle open (an open handle must not turn Ctrl-C into a hang). Unref'd, so a process
 * whose event loop empties first exits on its own, with its output flushed.
 */
function exitWhenDone(): void {
  setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
}

const program = new Command().name('toolgate').description('A gateway between AI agents and the tools that change the world.').showHelpAfterError();

program
  .command('dev')
  .description('Run everything locally: Temporal dev server (SQLite under .toolgate/, Web UI), worker and approval API')
  .option('--port <port>', 'Temporal frontend port', '7233')
  .option('--ui-port <port>', 'Temporal Web UI port', '8233')
  .action(async (options: { port: string; uiPort: string }) => {
    const logger = createLogger();
    // Worker and API share this process: the API's /metrics serves the worker's and the SDK's metrics too.
    await installRuntime(logger, { sdkMetrics: true });
    const telemetry = await startTelemetry({ serviceName: 'toolgate', logger });
    const base = loadConfig();
    const port = Number(options.port);
    const uiPort = Number(options.uiPort);
    // The dev server's Web UI decodes payloads through the API's codec endpoint (ops tokens only).
    const uiOrigins = [`http://127.0.0.1:${uiPort}`, `http://localhost:${uiPort}`];
    const config: Config = { ...base, temporalAddress: `127.0.0.1:${port}`, uiOrigins: [...base.uiOrigins, ...uiOrigins] };
    const codecEndpoint = `http://127.0.0.1:${config.apiPort}/codec`;
    const shutdown = shutdownOnSignals(logger);
    const signal = shutdown.signal;
    const keysCreated = await ensureLocalKeyPair({ privateKeyFile: config.privateKeyFile, publicKeyFile: config.publicKeyFile });
    if (keysCreated) logger.info({ publicKeyFile: config.publicKeyFile }, 'created the local approver-token key pair');
    await ensureDevCodecKeys(config, logger);
    const server = await startDevServer({
      cliPath: requireTemporalCli(),
      dbFile: `${config.stateDir}/temporal.db`,
      port,
      uiPort,
      searchAttributes: SEARCH_ATTRIBUTE_CLI_ARGS,
      // Explicit retention (TOOLGATE_RETENTION): the audit archiver appends each closed request before it leaves.
      retention: config.retention,
      uiCodecEndpoint: codecEndpoint,
      onOutput: (line) => logger.debug({ source: 'temporal' }, line),
      // Ctrl-C reaches toolgate alone; the server is stopped last, after the worker and API.
      ownProcessGroup: true,
    });
    // A server that dies under us (crash, or a signal sent to it) ends the session, as an error.
    void server.exited.then((code) => {
      if (!server.exitedOnItsOwn() || signal.aborted) return;
      logger.error({ code }, 'the Temporal dev server exited: shutting down');
      process.exitCode = 1;
      shutdown.stop('temporal-exited');
    });
    let api: Awaited<ReturnType<typeof startApi>> | undefined;
    try {
      if (signal.aborted) return;
      // The local UI has no login: on a loopback-only API, the codec trusts the dev UI's origin.
      // Not when it is reachable from elsewhere: beyond loopback, or published through a public URL
      // (a tunnel or proxy connects from loopback on behalf of anyone).
      const loopbackApi = /^(127\.|localhost$|::1$)/.test(config.apiHost) && /^https?:\/\/(127\.[\d.]+|localhost|\[::1\])(:\d+)?(\/|$)/.test(config.publicUrl);
      if (!loopbackApi)
        logger.warn(
          { apiHost: config.apiHost, publicUrl: config.publicUrl },
          'the API is reachable beyond loopback: the Temporal UI decodes payloads only with an ops token',
        );
      api = await startApi(config, logger, loopbackApi ? { devTrustedUiOrigins: uiOrigins, signal } : { signal });
      const workerDone = runWorker(config, logger, demoTools(config.stateDir), signal, {
        // Approving locally needs no webhook: each waiting request's review link is printed here.
        notifyConsole: (text) => process.stdout.write(text),
      });
      if (!signal.aborted) process.stdout.write(devBanner(config, server, { port, uiPort, codecEndpoint }));
      // The audit archiver in-process: its schedule, its worker, and the audit key created if missing.
      await Promise.all([workerDone, runDevArchiver(config, logger, signal)]);
    } finally {
      if (api) {
        await closeServer(api.server);
        await api.connection.close();
      }
      await server.stop();
      await telemetry?.shutdown();
      logger.info('stopped');
      exitWhenDone();
    }
  });

/**
 * Creates the payload key file under the state directory when no keys are configured: `toolgate
 * dev` (with `toolgate keys init`) is the only command that may, so the worker, API and CLI of
 * this state directory share its key.
 */
async function ensureDevCodecKeys(config: Config, logger: Logger): Promise<void> {
  if (process.env.TOOLGATE_CODEC_KEYS || process.env.TOOLGATE_CODEC_KEYS_FILE) return;
  const file = defaultKeyringFile(config.stateDir);
  const { keyring, created } = await ensureKeyringFile(file);
  if (created) logger.info({ file, keyId: keyring.current }, 'created the payload encryption key');
}

/** The inbox page where approvers sign in and decide. */
function inboxUrl(config: Config): string {
  return `${config.publicUrl.replace(/\/+$/, '')}/inbox/`;
}

/** What `toolgate dev` prints once everything runs. */
function devBanner(config: Config, server: { address: string; uiUrl?: string }, ports: { port: number; uiPort: number; codecEndpoint: string }): string {
  const exportLine = devExportLine({
    publicUrl: config.publicUrl,
    apiHost: config.apiHost,
    apiPort: config.apiPort,
    publicUrlSet: Boolean(process.env.TOOLGATE_PUBLIC_URL),
    temporalAddress: config.temporalAddress,
    port: ports.port,
    uiPort: ports.uiPort,
    stateDir: config.stateDir,
  });
  return [
    '',
    'toolgate is running',
    `  Temporal:     ${server.address} (state in ${config.stateDir}/temporal.db)`,
    `  Temporal UI:  ${server.uiUrl ?? '(disabled)'}`,
    `  API:          ${config.publicUrl}  (agents: /v1/tool-requests; approvers: /v1/approvals; ops: /v1/audit)`,
    `  Inbox:        ${inboxUrl(config)}  (approvers review and decide here)`,
    `  Codec:        ${ports.codecEndpoint}  (the local UI decodes without a token, as can any process of this machine: dev only; elsewhere an ops token: --groups ops)`,
    `  Policy:       ${config.policyPaths.join(', ')}`,
    `  Audit:        archive in ${config.auditArchiveDir} every ${Math.round(config.auditArchiveIntervalMs / 60_000)} min; namespace retention ${config.retention}`,
    '',
    ...(exportLine ? ['In another terminal, first point the demo and the CLI at this instance:', `  ${exportLine}`, ''] : []),
    ...(server.uiUrl ? ['Ready-made views in the Temporal UI:', ...opsQueryLinks(server.uiUrl, config.namespace), ''] : []),
    'Get an agent token (the only credential an agent needs) and an approver token:',
    '  npx toolgate token issue --agent --sub support-bot --tenant acme --environment production --roles agent_runtime',
    '  npx toolgate token issue --sub alice --groups manager --tenant acme',
    `Approve in the inbox: open ${inboxUrl(config)} and sign in with the approver token from:`,
    '  npx toolgate token issue --sub alice --groups manager --tenant acme',
    'Each request that waits for approval is printed below with its review link.',
    'Play the support-triage demo in another terminal:',
    '  npm run demo',
    '',
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}

program
  .command('health')
  .description("Exit 0 when a worker on this host polls toolgate's task queue (a container health check)")
  .option('--max-age <seconds>', 'how recently the poller must have been seen', '60')
  .option('--task-queue <name>', 'the task queue', TASK_QUEUE)
  .action(async (options: { maxAge: string; taskQueue: string }) => {
    const maxAgeSeconds = Number(options.maxAge);
    if (!Number.isFinite(maxAgeSeconds) || maxAgeSeconds <= 0) {
      process.stderr.write(`--max-age must be a positive number of seconds, not ${options.maxAge}\n`);
      process.exit(2);
    }
    const config = loadConfig();
    const connection = await Connection.connect({ address: config.temporalAddress, connectTimeout: 5_000 }).catch((err: unknown) => {
      process.stderr.write(`unhealthy: cannot reach Temporal at ${config.temporalAddress}: ${(err as Error).message}\n`);
      process.exit(1);
    });
    try {
      // A worker's identity is <pid>@<hostname>: in a container, this host's worker is this container's.
      const host = hostname();
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace: config.namespace,
        taskQueue: { name: options.taskQueue },
        taskQueueType: 1,
      });
      const seen = (pollers ?? []).filter((poller) => (poller.identity ?? '').endsWith(`@${host}`));
      const freshest = Math.max(0, ...seen.map((poller) => Number(poller.lastAccessTime?.seconds ?? 0) * 1000));
      const ageSeconds = (Date.now() - freshest) / 1000;
      if (seen.length === 0 || ageSeconds > maxAgeSeconds) {
        process.stderr.write(
          seen.length === 0
            ? `unhealthy: no worker of host ${host} polls task queue ${options.taskQueue} (${pollers?.length ?? 0} poller(s) of other hosts)\n`
            : `unhealthy: the worker of host ${host} last polled ${Math.round(ageSeconds)} s ago (more than ${maxAgeSeconds} s)\n`,
        );
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`healthy: ${seen.map((poller) => poller.identity).join(', ')} polled ${Math.round(ageSeconds)} s ago\n`);
    } finally {
      await connection.close();
    }
  });

program
  .command('worker')
  .description('Run a worker against TEMPORAL_ADDRESS (policy from TOOLGATE_POLICY)')
  .action(async () => {
    const logger = createLogger('toolgate-worker');
    const config = loadConfig();
    const metrics = config.metricsAddress !== 'off';
    await installRuntime(logger, { sdkMetrics: metrics });
    const telemetry = await startTelemetry({ serviceName: 'toolgate-worker', logger });
    let metricsServer: Server | undefined;
    try {
      // This process's counters and the SDK's, at TOOLGATE_METRICS_ADDRESS (no authentication: not for public networks).
      if (metrics) metricsServer = await startMetricsServer(config.metricsAddress, logger);
      await runWorker(config, logger, demoTools(config.stateDir), onShutdown(logger));
      logger.info('stopped');
    } finally {
      if (metricsServer) await closeServer(metricsServer);
      await telemetry?.shutdown();
      exitWhenDone();
    }
  });

program
  .command('api')
  .description('Run the approval API against TEMPORAL_ADDRESS')
  .action(async () => {
    const logger = createLogger('toolgate-api');
    const config = loadConfig();
    const telemetry = await startTelemetry({ serviceName: 'toolgate-api', logger });
    const signal = onShutdown(logger);
    try {
      const { server, connection } = await startApi(config, logger, { signal });
      logger.info({ url: config.publicUrl }, 'approval API listening');
      await new Promise<void>((resolveStop) => onAbort(signal, () => resolveStop()));
      await closeServer(server);
      await connection.close();
      logger.info('stopped');
    } finally {
      await telemetry?.shutdown();
      exitWhenDone();
    }
  });

const policy = program.command('policy').description('Work with policy files');
policy
  .command('check')
  .description('Validate policy files; exits non-zero with file, line and field of every error')
  .argument('[paths...]', 'policy files or directories', ['policies'])
  .action(async (paths: string[]) => {
    const { ok, lines } = await checkPolicyFiles(paths);
    for (const line of lines) (ok ? process.stdout : process.stderr).write(`${line}\n`);
    process.exitCode = ok ? 0 : 1;
  });
policy
  .command('test')
  .description('Run the *.test.yaml cases beside the policies')
  .argument('[paths...]', 'test files or directories', ['policies'])
  .action(async (paths: string[]) => {
    const results = await runPolicyTests(paths);
    for (const r of results) {
      process.stdout.write(`${r.passed ? 'ok  ' : 'FAIL'} ${r.file}: ${r.name}${r.message ? ` — ${r.message}` : ''}\n`);
    }
    const failed = results.filter((r) => !r.passed).length;
    process.stdout.write(`${results.length - failed} passed, ${failed} failed\n`);
    process.exitCode = failed === 0 && results.length > 0 ? 0 : 1;
  });

program
  .command('kill-switch')
  .description('Refuse every new request of a tenant (or one tool) and deny the pending ones; --lift restores service')
  .option('--tenant <tenant>', 'the tenant to stop')
  .option('--tool <tool>', 'only this tool')
  .option('--reason <text>', 'why, for the audit trail', 'kill switch')
  .option('--by <who>', 'who pulls the switch, for the audit trail', process.env.USER ?? 'operator')
  .option('--lift', 'lift the switch of exactly this scope')
  .option('--list', 'list the switches that are on')
  .action(async (options: { tenant?: string; tool?: string; reason: string; by: string; lift?: boolean; list?: boolean }) => {
    const config = loadConfig();
    // Keys before the connection: without the deployment's key there is nothing to do.
    const dataConverter = dataConverterFor(await codecKeyring(config));
    const connection = await Connection.connect({ address: config.temporalAddress });
    try {
      const switches = new KillSwitches(new Client({ connection, namespace: config.namespace, dataConverter }));
      if (options.list) {
        for (const s of await switches.list({ fresh: true })) {
          process.stdout.write(`${s.tenant}${s.tool ? `/${s.tool}` : ' (all tools)'}  by ${s.by} at ${s.at}: ${s.reason}\n`);
        }
        return;
      }
      if (!options.tenant || !IDENTIFIER_PATTERN.test(options.tenant)) throw new InvalidArgumentError('--tenant <tenant> is required (an identifier)');
      if (options.tool !== undefined && !IDENTIFIER_PATTERN.test(options.tool)) throw new InvalidArgumentError('--tool must be a tool name');
      const scope = { tenant: options.tenant, ...(options.tool ? { tool: options.tool } : {}), by: options.by };
      if (options.lift) {
        const lifted = await switches.lift(scope);
        process.stdout.write(
          lifted.length > 0
            ? `lifted ${lifted.length} switch(es) for ${options.tenant}${options.tool ? `/${options.tool}` : ''}\n`
            : 'no switch of exactly this scope was on\n',
        );
        return;
      }
      const on = await switches.set({ ...scope, reason: options.reason });
      process.stderr.write(`kill switch on for ${on.tenant}${on.tool ? `/${on.tool}` : ' (all tools)'}; new requests are refused\n`);
      // Workers read the switches at most KILL_SWITCH_CACHE_MS old: wait that long before reporting, then deny what waits.
      await new Promise((resolve) => setTimeout(resolve, KILL_SWITCH_CACHE_MS));
      const denied = await switches.denyPending(on);
      process.stdout.write(`kill switch ${on.id} on; ${denied} pending request(s) denied\n`);
    } finally {
      await connection.close();
    }
  });

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number of seconds');
  return n;
};

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

registerMcpCommands(program);
registerAuditCommands(program);
registerKeysCommands(program);
registerPolicyCommands(policy);
registerArchiverCommand(program);
registerManifestCommands(program);
registerRequestCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`toolgate: ${(err as Error).message}\n`);
  process.exitCode = 1;
});

/** Links to the Temporal UI's workflow list filtered by the queries ops use most (docs/operations.md, "Ops: the Temporal UI"). */
function opsQueryLinks(uiUrl: string, namespace: string): string[] {
  const views: [string, string][] = [
    ['waiting for approval', "ToolgateStatus = 'pending_approval'"],
    ['denied today', `ToolgateStatus = 'denied' AND CloseTime > '${new Date(Date.now() - 86_400_000).toISOString()}'`],
    ['outcome unknown', "ToolgateStatus = 'outcome_unknown'"],
  ];
  return views.map(
    ([label, query]) => `  ${`${label}:`.padEnd(22)}${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows?query=${encodeURIComponent(query)}`,
  );
}

/** The address this process reaches its own API at: a wildcard bind is reached on loopback. */
function loopbackFor(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
