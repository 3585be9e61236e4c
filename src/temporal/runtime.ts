/**
 * The Temporal SDK's process-global runtime, as every long-running toolgate command installs it:
 * the SDK's own logs go to the process's JSON logger, and with `sdkMetrics` its core exports
 * Prometheus text on a free loopback port that the process's `/metrics` appends to its own. Call it
 * before any NativeConnection; library code and tests never call it (a test process runs many
 * workers under the default runtime).
 */
import { Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import type { Logger } from 'pino';
import { serveTemporalSdkMetricsFrom } from '../metrics.js';
import { findFreePort } from './dev-server.js';

/** Installs the runtime once for this process. */
export async function installRuntime(logger: Logger, options: { sdkMetrics?: boolean } = {}): Promise<void> {
  const sdkMetricsAddress = options.sdkMetrics ? `127.0.0.1:${await findFreePort('127.0.0.1')}` : undefined;
  Runtime.install({
    logger: {
      // The SDK's own info lines (bundle sizes, state changes) are detail for operators: debug.
      log: (level, message, meta) => logger[level === 'INFO' ? 'debug' : (level.toLowerCase() as 'warn')]({ ...meta }, message),
      trace: (message, meta) => logger.trace({ ...meta }, message),
      debug: (message, meta) => logger.debug({ ...meta }, message),
      info: (message, meta) => logger.debug({ ...meta }, message),
      warn: (message, meta) => logger.warn({ ...meta }, message),
      error: (message, meta) => logger.error({ ...meta }, message),
    },
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} },
      ...(sdkMetricsAddress ? { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } } : {}),
    },
  });
  if (sdkMetricsAddress) serveTemporalSdkMetricsFrom(`http://${sdkMetricsAddress}/metrics`);
}
