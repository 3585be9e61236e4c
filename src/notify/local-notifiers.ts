/**
 * The notifiers that deliver nowhere but here: the dev terminal's line per notification, the
 * fan-out to several notifiers, and the log-only default. (The webhook notifier is ./notifier.ts.)
 */
import type { Logger } from 'pino';
import { consoleLine } from './console-line.js';
import { sharedJsonPayload } from './json-payloads.js';
import { deliveryKey } from './notifier.js';
import type { ApprovalNotification, Notifier } from './types.js';

/** How many console deliveries are remembered, so a retried activity does not print its line twice. */
const MAX_REMEMBERED_LINES = 1000;

/**
 * Prints one line per notification for a person at the terminal (`toolgate dev`): tool, tenant,
 * requester, groups and the review URL, or how the request ended. A terminal is a shared place:
 * the line is built like a shared message and never carries a decision link. Printing never
 * fails a delivery.
 */
export class ConsoleNotifier implements Notifier {
  private readonly printed = new Set<string>();

  constructor(private readonly write: (text: string) => void) {}

  async notify(notification: ApprovalNotification): Promise<void> {
    // Another target's failure retries the whole activity: print once per delivery, not per attempt.
    const key = deliveryKey() ?? `${notification.requestId}:${notification.kind}:${notification.tier}:${Date.now()}`;
    if (this.printed.has(key)) return;
    this.printed.add(key);
    for (const oldest of this.printed) {
      if (this.printed.size <= MAX_REMEMBERED_LINES) break;
      this.printed.delete(oldest);
    }
    try {
      this.write(`${consoleLine(notification)}\n`);
    } catch {
      // A closed terminal must not make Temporal retry the other targets.
    }
  }
}

/** Delivers to every notifier; throws the first failure after all have been tried (so Temporal retries). */
export class FanoutNotifier implements Notifier {
  constructor(readonly notifiers: readonly Notifier[]) {}

  async notify(notification: ApprovalNotification): Promise<void> {
    const results = await Promise.allSettled(this.notifiers.map((notifier) => notifier.notify(notification)));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/** A notifier that only logs: the embedded default when no webhook is configured. It never mints links. */
export class LogNotifier implements Notifier {
  constructor(private readonly logger: Logger) {}

  async notify(notification: ApprovalNotification): Promise<void> {
    // The shared form: arguments redacted and shortened, as a channel would see them.
    this.logger.info({ notification: sharedJsonPayload(notification) }, notification.kind === 'outcome' ? 'request ended' : 'approval needed');
  }
}
