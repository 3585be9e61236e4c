/**
 * The frame the long-running service commands (`api`, `worker`, `archiver`) share: a logger named
 * after the process, the configuration, a shutdown on SIGINT/SIGTERM (./lifecycle.ts: a second
 * signal exits at once), `stopped` logged once the service has returned, and an exit even when a
 * library left a handle open.
 */
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../logger.js';
import { startTelemetry } from '../telemetry.js';
import { exitWhenDone, onShutdown } from './lifecycle.js';

/** What a service command's body is given. */
export interface ServiceContext {
  logger: Logger;
  config: Config;
  /** Aborts on the first SIGINT or SIGTERM: the service then stops its parts and returns. */
  signal: AbortSignal;
}

/** One long-running service command. */
export interface ServiceCommand {
  /** The command's name; its logger (and its telemetry's service) is `toolgate-<name>`. */
  name: string;
  description: string;
  /** Runs once the configuration is loaded, before the service (e.g. installing the Temporal runtime). */
  prepare?: (logger: Logger, config: Config) => Promise<void>;
  /** Whether the process exports traces when tracing is configured (src/telemetry.ts); flushed after the service returns. */
  telemetry?: boolean;
  /** The service itself: runs until `signal` aborts, then stops what it started. */
  run: (context: ServiceContext) => Promise<void>;
}

/** Adds a long-running service command to the program. */
export function registerServiceCommand(program: Command, command: ServiceCommand): void {
  program
    .command(command.name)
    .description(command.description)
    .action(async () => {
      const serviceName = `toolgate-${command.name}`;
      const logger = createLogger(serviceName);
      const config = loadConfig();
      await command.prepare?.(logger, config);
      const telemetry = command.telemetry ? await startTelemetry({ serviceName, logger }) : undefined;
      const signal = onShutdown(logger);
      try {
        await command.run({ logger, config, signal });
        logger.info('stopped');
      } finally {
        await telemetry?.shutdown();
        exitWhenDone();
      }
    });
}
