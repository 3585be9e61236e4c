/**
 * `toolgate dev`: everything on one machine — a Temporal dev server (SQLite under the state
 * directory, Web UI), a worker with the demo tools, the approval API and the audit archiver — and
 * the banner that says where each part is.
 */
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { ensureLocalKeyPair } from '../auth/tokens.js';
import { defaultKeyringFile, ensureKeyringFile } from '../codec/index.js';
import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../logger.js';
import { SEARCH_ATTRIBUTE_CLI_ARGS } from '../shared/index.js';
import { startTelemetry } from '../telemetry.js';
import { requireTemporalCli } from '../temporal/cli.js';
import { devExportLine, startDevServer } from '../temporal/dev-server.js';
import { installRuntime } from '../temporal/runtime.js';
import { startApi } from './api-commands.js';
import { runDevArchiver } from './archiver-commands.js';
import { closeServer, exitWhenDone, shutdownOnSignals } from './lifecycle.js';
import { demoTools, runWorker } from './worker-commands.js';

/** Registers `toolgate dev`. */
export function registerDevCommand(program: Command): void {
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
        const loopbackApi =
          /^(127\.|localhost$|::1$)/.test(config.apiHost) && /^https?:\/\/(127\.[\d.]+|localhost|\[::1\])(:\d+)?(\/|$)/.test(config.publicUrl);
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
}

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
