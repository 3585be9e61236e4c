/**
 * Webhook targets: where a notification is posted and in which format. The same syntax names the
 * shared targets of `TOOLGATE_WEBHOOKS` and each approver's personal `notify` target in the
 * approver directory, so both are checked by one parser.
 *
 * This module has no dependency on the directory or the notifier, so both can import it.
 */
import { isLoopbackHost } from '../auth/oidc.js';
import { ToolgateError } from '../errors.js';

/** One webhook destination and the payload format it takes. */
export interface WebhookTarget {
  format: 'slack' | 'json';
  url: string;
}

/** A webhook target setting is invalid; the message says which entry and why. */
export class WebhookTargetError extends ToolgateError {
  override readonly name = 'WebhookTargetError';

  constructor(
    /** The entry at fault, with any URL path left out (webhook paths often hold secrets). */
    readonly entry: string,
    message: string,
  ) {
    super('webhook_target_invalid', message);
  }
}

/** Where a webhook goes, for logs and errors: format and host, never the path (it may be a secret). */
export function describeTarget(target: WebhookTarget): string {
  return `${target.format} ${new URL(target.url).host}`;
}

/**
 * Parses `slack=https://...`, `json=https://...` or a bare URL (json). URLs must be https, or
 * plain http on a loopback address, because personal payloads carry approval links and shared
 * payloads still reveal what is being requested.
 */
export function parseWebhookTarget(entry: string): WebhookTarget {
  const match = /^(slack|json)=(.*)$/s.exec(entry.trim());
  const format = (match?.[1] ?? 'json') as WebhookTarget['format'];
  const raw = (match?.[2] ?? entry).trim();
  const shown = `${format}=${raw.replace(/^([a-z]+:\/\/[^/]*).*$/i, '$1/…')}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookTargetError(shown, `webhook ${shown} is not an absolute URL; write slack=https://..., json=https://... or a bare https URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new WebhookTargetError(shown, `webhook ${shown} must use https (plain http only on a loopback address): its payloads carry approval links`);
  }
  if (url.username || url.password) throw new WebhookTargetError(shown, `webhook ${shown} must not carry credentials in the URL`);
  return { format, url: url.toString() };
}

/**
 * Whether two targets post to the same place. Compared on the normalised URL only: the same URL in
 * another format still reaches the same channel.
 */
export function sameDestination(a: WebhookTarget, b: WebhookTarget): boolean {
  return new URL(a.url).toString() === new URL(b.url).toString();
}
