/** Structured JSON logs (pino). Library code takes a logger; only the CLI creates one. */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { redactText, redactValue } from './egress/redact.js';

/**
 * Redacts every argument of every log call (messages, merged objects, errors) with all redaction
 * rules before pino serialises it: logs leave the gateway too.
 */
export const redactingHooks: NonNullable<LoggerOptions['hooks']> = {
  logMethod(args, method) {
    const redacted = args.map((arg: unknown) =>
      typeof arg === 'string' ? redactText(arg) : arg !== null && typeof arg === 'object' ? redactValue(arg).value : arg,
    );
    method.apply(this, redacted as Parameters<typeof method>);
  },
};

/**
 * Redacts a child logger's bindings (`logger.child({ ... })`): pino serialises them once, when the
 * child is made, and never passes them through `logMethod`. They are parsed back, redacted as a
 * value, and serialised again, so a match can never cut through JSON syntax.
 */
export function redactChildBindings(child: Logger): void {
  const sym = pino.symbols.chindingsSym;
  const holder = child as unknown as Record<symbol, unknown>;
  const chindings = holder[sym];
  if (typeof chindings !== 'string' || chindings.length === 0) return;
  try {
    const bindings = JSON.parse(`{${chindings.slice(1)}}`) as Record<string, unknown>;
    const redacted = JSON.stringify(redactValue(bindings).value);
    holder[sym] = redacted === '{}' ? '' : `,${redacted.slice(1, -1)}`;
  } catch {
    // Bindings pino could not serialise as JSON are not ours to rewrite.
  }
}

/** Creates the process logger (redacting, see `redactingHooks` and `redactChildBindings`); level from `TOOLGATE_LOG_LEVEL`. @default 'info', to stderr */
export function createLogger(
  name = 'toolgate',
  level = process.env.TOOLGATE_LOG_LEVEL ?? 'info',
  destination: DestinationStream = pino.destination(2),
): Logger {
  return pino({ name, level, base: { service: name }, hooks: redactingHooks, onChild: redactChildBindings }, destination);
}

/** A logger that discards everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
