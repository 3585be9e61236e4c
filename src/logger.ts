/** Structured JSON logs (pino). Library code takes a logger; only the CLI creates one. */
import { pino, type Logger } from 'pino';

/** Creates the process logger; level from `TOOLGATE_LOG_LEVEL`. @default 'info' */
export function createLogger(name = 'toolgate', level = process.env.TOOLGATE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { service: name } }, pino.destination(2));
}

/** A logger that discards everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
