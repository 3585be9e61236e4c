/** Creating a toolgate worker: the workflow bundle, the activities and their dependencies. */
import { createRequire } from 'node:module';
import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { Worker, type ActivityInterceptorsFactory, type NativeConnection, type WorkflowBundleOption } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { ActivityDeps } from '../activities/deps.js';
import { createActivities } from '../activities/index.js';
import { KillSwitches } from './policy/kill-switch-client.js';
import { workflowMetricsSinks } from './metrics.js';
import { TASK_QUEUE } from './shared/index.js';
import { WORKFLOW_TRACING_MODULE, activeTelemetry, tracedClient } from './telemetry.js';
import { TemporalRunGuard } from './trust/runs.js';

const require = createRequire(import.meta.url);

/** Path of the workflow bundle's entry point. */
export const WORKFLOWS_PATH = require.resolve('../workflows/index.ts');

/**
 * The workflow interceptor modules a prebuilt bundle needs for the workers of this process
 * (`bundleWorkflowCode({ workflowInterceptorModules })`): Temporal's OpenTelemetry workflow
 * interceptors when tracing is on (src/telemetry.ts), none otherwise. A worker that bundles at
 * start adds them itself.
 */
export function workflowInterceptorModules(): string[] {
  return activeTelemetry() ? [WORKFLOW_TRACING_MODULE] : [];
}

/** Options of a toolgate worker. */
export interface ToolgateWorkerOptions extends ActivityDeps {
  connection: NativeConnection;
  namespace?: string;
  /** @default TASK_QUEUE */
  taskQueue?: string;
  /**
   * A prebuilt workflow bundle (tests bundle once, with `dataConverter.failureConverterPath`);
   * otherwise the workflows are bundled at start. With tracing on, build it with
   * `workflowInterceptorModules()` to trace the workflows too.
   */
  workflowBundle?: WorkflowBundleOption;
  /** How payloads and failures are stored: `dataConverterFor(keyring)` encrypts them. @default Temporal's (clear JSON) */
  dataConverter?: DataConverter;
  /** Activity interceptors of the deployment's own (timing, tracing of its own), after toolgate's. */
  activityInterceptors?: ActivityInterceptorsFactory[];
  logger: Logger;
}

/**
 * Creates a worker that runs tool requests with the given policy, tools and notifier. It counts
 * into this process's Prometheus registry (src/metrics.ts: the workflow's metrics sinks) and, when
 * this process started tracing (src/telemetry.ts), traces workflows and activities.
 */
export async function createToolgateWorker(options: ToolgateWorkerOptions): Promise<Worker> {
  const { connection, namespace, taskQueue, workflowBundle, dataConverter, activityInterceptors, ...deps } = options;
  const telemetry = activeTelemetry();
  const traced = telemetry?.workerInterceptors();
  const client = tracedClient(new Client({ connection, namespace: namespace ?? 'default', ...(dataConverter && { dataConverter }) }));
  const killSwitches = deps.killSwitches ?? new KillSwitches(client, { taskQueue: taskQueue ?? TASK_QUEUE });
  const runs = deps.runs ?? new TemporalRunGuard(client, taskQueue ?? TASK_QUEUE);
  return Worker.create({
    connection,
    namespace: namespace ?? 'default',
    taskQueue: taskQueue ?? TASK_QUEUE,
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    ...(dataConverter && { dataConverter }),
    // After a worker dies, its sticky queue holds tasks until this timeout: keep recovery quick.
    stickyQueueScheduleToStartTimeout: '3s',
    activities: createActivities({ ...deps, killSwitches, runs }),
    sinks: { ...workflowMetricsSinks(), ...telemetry?.workerSinks() },
    ...(traced || activityInterceptors ? { interceptors: { ...traced, activity: [...(traced?.activity ?? []), ...(activityInterceptors ?? [])] } } : {}),
  });
}
