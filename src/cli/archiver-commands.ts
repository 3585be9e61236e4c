/**
 * `toolgate archiver`: the process that keeps the audit archive. It holds exactly what archival
 * needs — the codec keys (to read histories) and the audit-signing private key (to sign segments)
 * — keeps the `toolgate-audit-archive` Temporal Schedule in place (created, or updated to this
 * configuration, at every start) and runs the worker of the `toolgate-audit` task queue, where the
 * schedule's `auditArchive` workflow and its activity run. `toolgate dev` runs the same in-process.
 */
import { createRequire } from 'node:module';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { Client, Connection, ScheduleAlreadyRunning, ScheduleOverlapPolicy, type ScheduleHandle, type ScheduleOptions } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { createArchiveActivities, type AuditArchiveInput } from '../../activities/archive.js';
import { ARCHIVE_LAG_MS } from '../audit/archive.js';
import { ARCHIVE_SCHEDULE_ID, ARCHIVE_TASK_QUEUE, ARCHIVE_WORKFLOW_TYPE, retentionWarning } from '../audit/archive-schedule.js';
import { ensureAuditKeyPair } from '../audit/keys.js';
import { keyIdOf } from '../audit/chain.js';
import { dataConverterFor, loadKeyring } from '../codec/index.js';
import type { Config } from '../config.js';
import { namespaceRetentionMs } from '../temporal/dev-server.js';
import { installRuntime } from '../temporal/runtime.js';
import { auditSigningKeyFile, defaultAuditKeyFiles, readAuditSigningKey } from './audit-key-files.js';
import { registerServiceCommand } from './service-command.js';

const require = createRequire(import.meta.url);

/** Entry point of the archiver's workflow bundle: only `auditArchive`, apart from the request workflows' bundle. */
export const ARCHIVE_WORKFLOWS_PATH = require.resolve('../../workflows/audit-archive.ts');

/** What the schedule is made of. */
export interface ArchiveScheduleSettings {
  /** How often a run starts, in ms (`TOOLGATE_AUDIT_ARCHIVE_INTERVAL`). */
  intervalMs: number;
  /** @default ARCHIVE_LAG_MS */
  lagMs?: number;
  /** @default ARCHIVE_TASK_QUEUE */
  taskQueue?: string;
}

/**
 * The schedule: every `intervalMs`, start `auditArchive`. Overlap SKIP: a run still going (a long
 * first archival) is never doubled. Catch-up window of two intervals: after an outage of the
 * server one missed run is taken at once; more would add nothing, since any run archives
 * everything closed up to its own now − lag.
 */
export function archiveScheduleOptions(settings: ArchiveScheduleSettings) {
  const input: AuditArchiveInput = { lagMs: settings.lagMs ?? ARCHIVE_LAG_MS };
  return {
    scheduleId: ARCHIVE_SCHEDULE_ID,
    spec: { intervals: [{ every: settings.intervalMs }] },
    action: {
      type: 'startWorkflow' as const,
      workflowType: ARCHIVE_WORKFLOW_TYPE,
      workflowId: ARCHIVE_SCHEDULE_ID,
      taskQueue: settings.taskQueue ?? ARCHIVE_TASK_QUEUE,
      args: [input],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(2 * settings.intervalMs, 60_000), pauseOnFailure: false },
  } satisfies ScheduleOptions;
}

/**
 * Creates the schedule, or brings an existing one to these settings (spec, action, policies; a
 * pause set by an operator stays). Idempotent: every archiver start calls it.
 */
export async function ensureArchiveSchedule(client: Client, settings: ArchiveScheduleSettings): Promise<{ handle: ScheduleHandle; created: boolean }> {
  const options = archiveScheduleOptions(settings);
  try {
    return { handle: await client.schedule.create(options), created: true };
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const handle = client.schedule.getHandle(options.scheduleId);
  await handle.update((previous) => ({ ...previous, spec: options.spec, action: options.action, policies: options.policies }));
  return { handle, created: false };
}

/** Options of {@link runArchiver}. */
export interface RunArchiverOptions {
  /** @default ARCHIVE_LAG_MS */
  lagMs?: number;
  /** Start one run right away (an archiver that was down catches up now, not an interval later). @default true */
  triggerNow?: boolean;
}

/**
 * Runs the archiver until `signal` aborts: loads the audit-signing key and the codec keys (and
 * refuses to start without them), warns when the namespace's retention is too short for the
 * interval, ensures the schedule, and runs the `toolgate-audit` worker.
 */
export async function runArchiver(config: Config, logger: Logger, signal: AbortSignal, options: RunArchiverOptions = {}): Promise<void> {
  // Keys first: without them there is nothing this process may do.
  const keyFile = auditSigningKeyFile(config);
  const privateKey: KeyObject = await readAuditSigningKey(keyFile);
  const dataConverter = dataConverterFor(await loadKeyring({ stateDir: config.stateDir }));
  const lagMs = options.lagMs ?? ARCHIVE_LAG_MS;
  if (signal.aborted) return;
  const connection = await Connection.connect({ address: config.temporalAddress });
  let native: NativeConnection | undefined;
  try {
    const client = new Client({ connection, namespace: config.namespace, dataConverter });
    const retentionMs = await namespaceRetentionMs(connection, config.namespace);
    const warning = retentionMs === undefined ? undefined : retentionWarning({ retentionMs, intervalMs: config.auditArchiveIntervalMs, lagMs });
    if (warning) logger.warn({ namespace: config.namespace, retentionMs, intervalMs: config.auditArchiveIntervalMs, lagMs }, `audit archive: ${warning}`);
    const { handle, created } = await ensureArchiveSchedule(client, { intervalMs: config.auditArchiveIntervalMs, lagMs });
    if ((await handle.describe()).state.paused)
      logger.warn({ scheduleId: handle.scheduleId }, 'audit archive: the schedule is paused; nothing is archived until it is unpaused');
    if (signal.aborted) return;
    native = await NativeConnection.connect({ address: config.temporalAddress });
    const worker = await Worker.create({
      connection: native,
      namespace: config.namespace,
      taskQueue: ARCHIVE_TASK_QUEUE,
      workflowsPath: ARCHIVE_WORKFLOWS_PATH,
      dataConverter,
      activities: createArchiveActivities({
        client,
        archiveDir: config.auditArchiveDir,
        privateKey,
        minLagMs: Math.min(lagMs, ARCHIVE_LAG_MS),
        logger: logger.child({ component: 'audit-archive' }),
      }),
    });
    // From here the worker holds the connection: whatever happens, it is shut down and has stopped
    // before the connection closes (Temporal refuses to close a connection a worker still uses).
    const running = worker.run();
    const stop = () => {
      try {
        worker.shutdown();
      } catch {
        // Already stopping.
      }
    };
    try {
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
      if (!signal.aborted) {
        if (options.triggerNow ?? true) await handle.trigger(ScheduleOverlapPolicy.SKIP);
        logger.info(
          {
            scheduleId: handle.scheduleId,
            created,
            intervalMs: config.auditArchiveIntervalMs,
            archiveDir: config.auditArchiveDir,
            keyId: keyIdOf(createPublicKey(privateKey)),
            taskQueue: ARCHIVE_TASK_QUEUE,
          },
          'audit archiver running',
        );
      }
    } catch (err) {
      stop();
      await running.catch(() => undefined);
      throw err;
    }
    await running;
  } finally {
    await native?.close();
    await connection.close();
  }
}

/** Adds `toolgate archiver` to the program. */
export function registerArchiverCommand(program: Command): void {
  registerServiceCommand(program, {
    name: 'archiver',
    description: 'Keep the audit archive: the archival schedule and its worker (holds the codec keys and the audit-signing key)',
    prepare: (logger) => installRuntime(logger),
    run: ({ logger, config, signal }) => runArchiver(config, logger, signal),
  });
}

/**
 * `toolgate dev`'s archiver: the audit-signing key is created under the state directory when no
 * key file is configured (as `audit keygen` would), then the archiver runs in-process until
 * `signal` aborts. A failure is logged, not fatal: the local gateway keeps running, unarchived.
 */
export async function runDevArchiver(config: Config, logger: Logger, signal: AbortSignal): Promise<void> {
  try {
    if (!process.env.TOOLGATE_AUDIT_SIGNING_KEY_FILE) {
      const { keyId, created } = await ensureAuditKeyPair(defaultAuditKeyFiles(config.stateDir));
      if (created) logger.info({ keyId, file: defaultAuditKeyFiles(config.stateDir).privateKeyFile }, 'created the audit-signing key pair');
    }
    await runArchiver(config, logger, signal);
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'the audit archiver stopped: closed requests are not archived');
  }
}
