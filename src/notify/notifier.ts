/**
 * Telling approvers that a request waits for them: the notifier contract, a webhook notifier that
 * posts Slack or generic JSON payloads with one single-use link per eligible approver, and a
 * notifier that only logs.
 */
import type { Logger } from 'pino';
import type { LinkSigner } from '../auth/links.js';
import { isLoopbackHost } from '../auth/oidc.js';
import type { Risk, ToolOutcome } from '../shared/index.js';
import type { ApproverDirectory } from './directory.js';
import { jsonPayload, slackPayload, type ApprovalLink } from './payloads.js';

/** One notification to approver groups. */
export interface ApprovalNotification {
  /** requested: a request waits; escalated: a tier fired; reminder: still waiting; outcome: it ended. */
  kind: 'requested' | 'escalated' | 'reminder' | 'outcome';
  tier: number;
  /** The groups to notify: the tier's new groups on escalation, all eligible groups otherwise. */
  groups: string[];
  requestId: string;
  tenant: string;
  tool: string;
  risk: Risk;
  /** The requester's id; they never receive a link to decide their own request. */
  actor: string;
  digest: string;
  expiresAt?: string;
  /** Where an approver reviews and decides the request. */
  reviewUrl: string;
  /** How the request ended, on `outcome` notifications. */
  outcome?: ToolOutcome['status'];
  /** The environment the tool would act in, shown to approvers when given. */
  environment?: string;
  /** The requester's stated reason, shown to approvers when given (untrusted text). */
  reason?: string;
}

/** Delivers approval notifications; throwing makes Temporal retry the delivery. */
export interface Notifier {
  notify(notification: ApprovalNotification): Promise<void>;
}

/** One webhook destination and the payload format it takes. */
export interface WebhookTarget {
  format: 'slack' | 'json';
  url: string;
}

/** A webhook target setting is invalid; the message says which entry and why. */
export class WebhookTargetError extends Error {
  override readonly name = 'WebhookTargetError';

  constructor(
    /** The entry at fault, with any URL path left out (webhook paths often hold secrets). */
    readonly entry: string,
    message: string,
  ) {
    super(message);
  }
}

/** Some webhook targets did not accept a notification; Temporal retries the activity. */
export class NotificationDeliveryError extends Error {
  override readonly name = 'NotificationDeliveryError';

  constructor(
    /** Each failed target, by format and host, with the reason. */
    readonly failures: readonly { target: string; reason: string }[],
  ) {
    super(`notification failed for ${failures.map((failure) => `${failure.target}: ${failure.reason}`).join('; ')}`);
  }
}

/** Where a webhook goes, for logs and errors: format and host, never the path (it may be a secret). */
function describeTarget(target: WebhookTarget): string {
  return `${target.format} ${new URL(target.url).host}`;
}

/**
 * Parses `slack=https://...`, `json=https://...` or a bare URL (json). URLs must be https, or
 * plain http on a loopback address, because link payloads are credentials.
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

/** What a webhook notifier needs to mint per-approver links. */
export interface LinkMinting {
  signer: LinkSigner;
  directory: ApproverDirectory;
  /** Base URL of the approval API; links are `${publicUrl}/v1/links/${token}`. */
  publicUrl: string;
}

/** Options of a webhook notifier. */
export interface WebhookNotifierOptions {
  /** Time allowed for each POST, in milliseconds. @default 5000 */
  timeoutMs?: number;
  logger?: Logger;
  /** Mint one link per eligible approver; without it, payloads carry only the review URL. */
  links?: LinkMinting;
}

/**
 * Posts each notification to every configured webhook (Slack or generic JSON) with a single-use
 * link per eligible approver, the requester excluded; any failed target throws so it is retried.
 */
export class WebhookNotifier implements Notifier {
  private readonly targets: WebhookTarget[];

  /** Targets are `WebhookTarget`s or strings as `parseWebhookTarget` reads them. */
  constructor(
    targets: readonly (string | WebhookTarget)[],
    private readonly options: WebhookNotifierOptions = {},
  ) {
    this.targets = targets.map((target) => (typeof target === 'string' ? parseWebhookTarget(target) : parseWebhookTarget(`${target.format}=${target.url}`)));
  }

  async notify(notification: ApprovalNotification): Promise<void> {
    if (this.targets.length === 0) return;
    const links = await this.mintLinks(notification);
    const failures: { target: string; reason: string }[] = [];
    await Promise.all(
      this.targets.map(async (target) => {
        const body = target.format === 'slack' ? slackPayload(notification, links) : jsonPayload(notification, links);
        try {
          const response = await fetch(target.url, {
            method: 'POST',
            redirect: 'error',
            signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
            headers: {
              'content-type': 'application/json',
              // Lets receivers drop the duplicates a retried delivery produces.
              'x-toolgate-notification': `${notification.requestId}:${notification.kind}:${notification.tier}`,
            },
            body: JSON.stringify(body),
          });
          await response.body?.cancel().catch(() => undefined);
          if (!response.ok) failures.push({ target: describeTarget(target), reason: `HTTP ${response.status}` });
        } catch (err) {
          failures.push({ target: describeTarget(target), reason: errorReason(err) });
        }
      }),
    );
    this.options.logger?.info(
      { requestId: notification.requestId, kind: notification.kind, groups: notification.groups, links: links.length, failed: failures.length },
      'approvers notified',
    );
    if (failures.length > 0) throw new NotificationDeliveryError(failures);
  }

  /** One link per member of the notified groups, never the requester; none on `outcome` or once expired. */
  private async mintLinks(notification: ApprovalNotification): Promise<ApprovalLink[]> {
    const minting = this.options.links;
    if (!minting || notification.kind === 'outcome') return [];
    if (notification.expiresAt !== undefined && Date.parse(notification.expiresAt) <= Date.now()) return [];
    if (!/^[a-f0-9]{64}$/.test(notification.digest)) {
      this.options.logger?.warn({ requestId: notification.requestId }, 'notification has no proposal digest: no approval links minted');
      return [];
    }
    const base = minting.publicUrl.replace(/\/+$/, '');
    const members = minting.directory.membersOf(notification.tenant, notification.groups).filter((member) => member.id !== notification.actor);
    return Promise.all(
      members.map(async (member) => {
        // Least privilege: the link carries only the member's groups this notification is about.
        const groups = member.groups.filter((group) => notification.groups.includes(group));
        const minted = await minting.signer.mintLink({
          requestId: notification.requestId,
          digest: notification.digest,
          approver: { id: member.id, tenant: member.tenant, groups },
          requestExpiresAt: notification.expiresAt,
        });
        const link: ApprovalLink = { approver: member.id, url: `${base}/v1/links/${minted.token}`, expiresAt: minted.expiresAt };
        if (member.name) link.name = member.name;
        if (member.email) link.email = member.email;
        return link;
      }),
    );
  }
}

function errorReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return 'timed out';
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
}

/** A notifier that only logs: the embedded default when no webhook is configured. */
export class LogNotifier implements Notifier {
  constructor(private readonly logger: Logger) {}

  async notify(notification: ApprovalNotification): Promise<void> {
    this.logger.info({ notification }, 'approval needed');
  }
}
