/**
 * How the long-running commands (`dev`, `worker`, `api`, `archiver`) stop: on SIGINT/SIGTERM in order, a
 * second signal at once, and an exit even when a library left a handle open.
 */
import type { Server } from 'node:http';
import type { Logger } from 'pino';

/**
 * Runs `action` when `signal` aborts, or now if it already has: a listener added after the abort
 * would never run (a Ctrl-C during start-up would then leave a worker or watcher running).
 */
export function onAbort(signal: AbortSignal, action: () => unknown): void {
  if (signal.aborted) void action();
  else signal.addEventListener('abort', () => void action(), { once: true });
}

/** Asks a long-running command to stop: on SIGINT/SIGTERM, or from inside (`stop`). */
export interface Shutdown {
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
export function shutdownOnSignals(logger: Logger): Shutdown {
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

/** The signal of {@link shutdownOnSignals}, for a command that only waits for it. */
export function onShutdown(logger: Logger): AbortSignal {
  return shutdownOnSignals(logger).signal;
}

/**
 * After a long-running command has shut everything down: exit with its code even if a library
 * left a handle open (an open handle must not turn Ctrl-C into a hang). Unref'd, so a process
 * whose event loop empties first exits on its own, with its output flushed.
 */
export function exitWhenDone(): void {
  setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
}

/** Closes a server now: its open connections (keep-alive included) are dropped, not waited for. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
}
