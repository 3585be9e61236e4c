/** Structured JSON logs (pino). Library code takes a logger; only the CLI creates one. */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { redactText, redactValue } from './egress/redact.js';

/**
 * Redacts every argument of every log call (messages, merged objects, errors) with all redaction
 * rules before pino serialises it: logs leave the gateway too.
 */
export const redactingHooks: NonNullable<LoggerOptions['hooks']> = {
  logMethod(args, method) {
    const redacted = args.map((arg: unknown) => (typeof arg === 'string' ? redactText(arg) : arg !== null && typeof arg === 'object' ? redactValue(arg).value : arg));
    method.apply(this, redacted as Parameters<typeof method>);
  },
};

/** Creates the process logger (redacting, see `redactingHooks`); level from `TOOLGATE_LOG_LEVEL`. @default 'info', to stderr */
export function createLogger(
  name = 'toolgate',
  level = process.env.TOOLGATE_LOG_LEVEL ?? 'info',
  destination: DestinationStream = pino.destination(2),
): Logger {
  return pino({ name, level, base: { service: name }, hooks: redactingHooks }, destination);
}

/** A logger that discards everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
