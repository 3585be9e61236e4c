/**
 * `toolgate worker` (a worker of the request workflows: policy, shadow policy, tools, notifier)
 * and `toolgate health` (the container health check of a worker on this host).
 */
import { hostname } from 'node:os';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { dataConverterFor } from '../codec/index.js';
import { loadConfig, type Config } from '../config.js';
import { startMetricsServer } from '../metrics.js';
import { createNotifier } from '../notify/config.js';
import { RateLimits } from '../policy/index.js';
import { PolicyStore } from '../policy/store.js';
import { TASK_QUEUE, searchAttributes } from '../shared/index.js';
import { installRuntime } from '../temporal/runtime.js';
import { createExampleTools } from '../tools/examples.js';
import type { ToolRegistry } from '../tools/types.js';
import { createUndoExampleTools } from '../tools/undo-examples.js';
import { loadWorkerTrust } from '../trust/store.js';
import { createToolgateWorker } from '../worker.js';
import { closeServer, onAbort } from './lifecycle.js';
import { codecKeyring, loadPolicyStore } from './loaders.js';
import { registerServiceCommand } from './service-command.js';

/** The shipped example tools the demo policies name (see policies/), on the state directory's ticket desk. */
export function demoTools(stateDir: string | undefined): ToolRegistry {
  return { ...createExampleTools({ stateDir }), ...createUndoExampleTools({ stateDir }) };
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

/** What `runWorker` may add to the environment's notifier. */
export interface WorkerOptions {
  /** Print each notification here too (`toolgate dev`: the review link of each waiting request). */
  notifyConsole?: (text: string) => void;
}

/** Starts a worker; resolves when it has shut down (at once if `signal` aborts during start-up). */
export async function runWorker(config: Config, logger: Logger, tools: ToolRegistry, signal: AbortSignal, options: WorkerOptions = {}): Promise<void> {
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

/** Registers `toolgate health` and `toolgate worker`. */
export function registerWorkerCommands(program: Command): void {
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

  registerServiceCommand(program, {
    name: 'worker',
    description: 'Run a worker against TEMPORAL_ADDRESS (policy from TOOLGATE_POLICY)',
    prepare: (logger, config) => installRuntime(logger, { sdkMetrics: config.metricsAddress !== 'off' }),
    telemetry: true,
    run: async ({ logger, config, signal }) => {
      // This process's counters and the SDK's, at TOOLGATE_METRICS_ADDRESS (no authentication: not for public networks).
      const metricsServer = config.metricsAddress !== 'off' ? await startMetricsServer(config.metricsAddress, logger) : undefined;
      try {
        await runWorker(config, logger, demoTools(config.stateDir), signal);
      } finally {
        if (metricsServer) await closeServer(metricsServer);
      }
    },
  });
}
