/**
 * Telling approvers that a request waits for them over webhooks. (The console, fan-out and
 * log-only notifiers are in local-notifiers.ts.) The notifier contract they implement (`Notifier`,
 * `ApprovalNotification`) is defined in types.ts and re-exported here.
 *
 * The webhook notifier sends two kinds of message. Shared targets (`TOOLGATE_WEBHOOKS`, typically
 * channels) get the facts and the review URL, which needs approver sign-in. Each eligible approver
 * with a personal `notify` target in the directory gets a message of their own carrying their own
 * single-use decision link. A decision link is a bearer credential for one decision by one person:
 * delivered to a channel, anyone there could use everyone's links and count as several approvers.
 */
import { Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import type { LinkSigner } from '../approvals/links.js';
import { canonicalId, sameIdentity } from '../shared/identity.js';
import type { ApproverDirectory, DirectoryEntry } from './directory.js';
import { requesterIdsOf } from '../shared/approval.js';
import { isDecisionNotification, type ApprovalLink, type DecisionNotification } from './facts.js';
import { personalJsonPayload, sharedJsonPayload } from './json-payloads.js';
import { personalSlackPayload, sharedSlackPayload } from './slack-payloads.js';
import { describeTarget, parseWebhookTarget, sameDestination, WebhookTargetError, type WebhookTarget } from './targets.js';
import type { ApprovalNotification, Notifier } from './types.js';
import { ToolgateError } from '../errors.js';

// Re-exported: the target parser moved to targets.ts (the directory parses `notify` with it), and
// the notifier contract to types.ts (the message formats, facts.ts and the rest, build on it too); other code imports these names
// from here.
export { parseWebhookTarget, WebhookTargetError, type WebhookTarget };
export type { ApprovalNotification, Notifier };

/** Some webhook targets did not accept a notification; Temporal retries the activity. */
export class NotificationDeliveryError extends ToolgateError {
  override readonly name = 'NotificationDeliveryError';

  constructor(
    /** Each failed target, by format and host (and approver, for a personal target), with the reason. */
    readonly failures: readonly { target: string; reason: string }[],
  ) {
    super('notification_failed', `notification failed for ${failures.map((failure) => `${failure.target}: ${failure.reason}`).join('; ')}`);
  }
}

/** What a webhook notifier needs to mint per-approver links and find each approver's own target. */
export interface LinkMinting {
  signer: LinkSigner;
  /** The approvers; only those with a `notify` target receive a link, delivered there. */
  directory: ApproverDirectory;
  /** Base URL of the approval API; links are `${publicUrl}/v1/links/${token}`. */
  publicUrl: string;
}

/** Options of a webhook notifier. */
export interface WebhookNotifierOptions {
  /** Time allowed for each POST, in milliseconds. @default 5000 */
  timeoutMs?: number;
  logger?: Logger;
  /**
   * Mint one link per eligible approver who has a personal target, and send it there alone.
   * Without it, only the shared targets are notified, with the review URL.
   */
  links?: LinkMinting;
}

/** A directory entry that can receive a personal message. */
type Recipient = DirectoryEntry & { notify: WebhookTarget };

/** How many deliveries with partial progress are remembered for their retries; the oldest go first. */
const MAX_REMEMBERED_DELIVERIES = 1000;

/**
 * Posts each notification to every shared webhook (review URL only) and, for each eligible
 * approver with a personal target, a message to that target alone with that approver's own
 * single-use link; never to the requester or anyone they act for. Any failed target throws, so
 * the activity is retried.
 *
 * Retries: within one worker process, a retried activity attempt skips the targets an earlier
 * attempt of the same activity already delivered to (see `deliveryKey`). When the retry runs on
 * another worker, or outside an activity, every target is sent again; a personal target then gets
 * a freshly minted link, and the earlier one stays valid until it expires. That gives nobody more
 * power: both links are for the same person, and the workflow counts one vote per person.
 */
export class WebhookNotifier implements Notifier {
  private readonly targets: WebhookTarget[];
  /** Per delivery (one activity, all its attempts): the targets that already accepted it. */
  private readonly delivered = new Map<string, Set<string>>();

  /**
   * Targets are the shared `WebhookTarget`s, or strings as `parseWebhookTarget` reads them. Throws
   * `WebhookTargetError` when an approver's personal target is also a shared one: the channel
   * would receive that approver's links.
   */
  constructor(
    targets: readonly (string | WebhookTarget)[],
    private readonly options: WebhookNotifierOptions = {},
  ) {
    this.targets = targets.map((target) => (typeof target === 'string' ? parseWebhookTarget(target) : parseWebhookTarget(`${target.format}=${target.url}`)));
    for (const entry of options.links?.directory.withPersonalTargets() ?? []) {
      const shared = this.targets.find((target) => sameDestination(target, entry.notify));
      if (shared) {
        throw new WebhookTargetError(
          `${describeTarget(shared)}/…`,
          `the notify target of approver ${entry.id} (tenant ${entry.tenant}) is also a shared webhook (${describeTarget(shared)}/…): ` +
            'shared webhooks never receive decision links, so give the approver a target of their own',
        );
      }
    }
  }

  async notify(notification: ApprovalNotification): Promise<void> {
    const key = deliveryKey();
    const done = new Set(key === undefined ? [] : this.delivered.get(key));
    const recipients = this.recipients(notification);
    // The two kinds of send are built apart: shared sends never have a link in scope, and each
    // personal send mints the link of the one recipient whose target it posts to.
    const sends: { id: string; label: string; send: () => Promise<void> }[] = [
      ...this.targets.map((target) => ({
        id: `shared ${target.url}`,
        label: describeTarget(target),
        send: () => this.sendShared(target, notification),
      })),
      ...recipients.eligible.map(({ recipient, notification: decision }) => ({
        id: `personal ${recipient.tenant} ${canonicalId(recipient.id)} ${recipient.notify.url}`,
        label: `${recipient.id}'s ${describeTarget(recipient.notify)}`,
        send: () => this.sendPersonal(recipient, decision),
      })),
    ];
    const failures: { target: string; reason: string }[] = [];
    let skipped = 0;
    await Promise.all(
      sends.map(async ({ id, label, send }) => {
        if (done.has(id)) {
          skipped += 1;
          return;
        }
        try {
          await send();
          done.add(id);
        } catch (err) {
          failures.push({ target: label, reason: errorReason(err) });
        }
      }),
    );
    if (key !== undefined) this.remember(key, failures.length > 0 ? done : undefined);
    this.options.logger?.info(
      {
        requestId: notification.requestId,
        kind: notification.kind,
        groups: notification.groups,
        shared: this.targets.length,
        personal: recipients.eligible.length,
        withoutTarget: recipients.withoutTarget,
        alreadyDelivered: skipped,
        failed: failures.length,
      },
      'approvers notified',
    );
    if (failures.length > 0) throw new NotificationDeliveryError(failures);
  }

  /**
   * The approvers who get a personal message: members of the notified groups who have a target,
   * never the requester or anyone in their chain (ids compared in canonical form). None on
   * `outcome`, once the request expired, or without a proposal digest to bind links to.
   */
  private recipients(notification: ApprovalNotification): { eligible: { recipient: Recipient; notification: DecisionNotification }[]; withoutTarget: number } {
    const minting = this.options.links;
    if (!minting || !isDecisionNotification(notification)) return { eligible: [], withoutTarget: 0 };
    if (notification.expiresAt !== undefined && Date.parse(notification.expiresAt) <= Date.now()) return { eligible: [], withoutTarget: 0 };
    if (!/^[a-f0-9]{64}$/.test(notification.digest)) {
      this.options.logger?.warn({ requestId: notification.requestId }, 'notification has no proposal digest: no approval links minted');
      return { eligible: [], withoutTarget: 0 };
    }
    // Whoever asked for a linked request (an override) is a requester too: they get no link to approve it.
    const requesters = requesterIdsOf({
      actor: { id: notification.actor },
      ...(notification.onBehalfOf ? { onBehalfOf: notification.onBehalfOf } : {}),
      ...(notification.requestLink ? { link: notification.requestLink } : {}),
    });
    const members = minting.directory
      .membersOf(notification.tenant, notification.groups)
      .filter((member) => !requesters.some((requester) => sameIdentity(requester, member.id)));
    const eligible = members.filter((member): member is Recipient => member.notify !== undefined).map((recipient) => ({ recipient, notification }));
    return { eligible, withoutTarget: members.length - eligible.length };
  }

  /** The shared message: facts and review URL. Its builders take no link, so none can reach a channel. */
  private async sendShared(target: WebhookTarget, notification: ApprovalNotification): Promise<void> {
    const body = target.format === 'slack' ? sharedSlackPayload(notification) : sharedJsonPayload(notification);
    await this.post(target, body, `${notification.requestId}:${notification.kind}:${notification.tier}`);
  }

  /** Mints `recipient`'s own link and posts it to `recipient`'s own target, nowhere else. */
  private async sendPersonal(recipient: Recipient, notification: DecisionNotification): Promise<void> {
    const link = await this.mintLink(recipient, notification);
    const body = recipient.notify.format === 'slack' ? personalSlackPayload(notification, link) : personalJsonPayload(notification, link);
    await this.post(recipient.notify, body, `${notification.requestId}:${notification.kind}:${notification.tier}:${recipient.id}`);
  }

  private async mintLink(recipient: Recipient, notification: DecisionNotification): Promise<ApprovalLink> {
    const minting = this.options.links;
    if (!minting) throw new Error('no link signer configured'); // unreachable: recipients() needs one
    // Least privilege: the link carries only the recipient's groups this notification is about.
    const groups = recipient.groups.filter((group) => notification.groups.includes(group));
    const minted = await minting.signer.mintLink({
      requestId: notification.requestId,
      digest: notification.digest,
      approver: { id: recipient.id, tenant: recipient.tenant, groups },
      requestExpiresAt: notification.expiresAt,
    });
    const link: ApprovalLink = {
      approver: recipient.id,
      url: `${minting.publicUrl.replace(/\/+$/, '')}/v1/links/${minted.token}`,
      expiresAt: minted.expiresAt,
    };
    if (recipient.name) link.name = recipient.name;
    if (recipient.email) link.email = recipient.email;
    return link;
  }

  /** POSTs `body`; throws on a transport error, a redirect, a timeout or a non-2xx answer. */
  private async post(target: WebhookTarget, body: unknown, notificationId: string): Promise<void> {
    const response = await fetch(target.url, {
      method: 'POST',
      // A redirect could take a payload (with a link, for personal targets) somewhere else.
      redirect: 'error',
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      headers: {
        'content-type': 'application/json',
        // Lets receivers drop the duplicates a retried delivery produces.
        'x-toolgate-notification': notificationId,
      },
      body: JSON.stringify(body),
    });
    await response.body?.cancel().catch(() => undefined);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
  }

  /** Keeps the delivered targets of a delivery that will be retried; forgets a delivery that completed. */
  private remember(key: string, done: Set<string> | undefined): void {
    this.delivered.delete(key);
    if (done === undefined) return;
    this.delivered.set(key, done);
    // Bounded: deliveries that never retry (the workflow gave up) must not pile up.
    for (const oldest of this.delivered.keys()) {
      if (this.delivered.size <= MAX_REMEMBERED_DELIVERIES) break;
      this.delivered.delete(oldest);
    }
  }
}

/**
 * The identity of the delivery being attempted: the activity's workflow, run and activity id,
 * which stay the same across the retries of one activity and differ between notifications (two
 * reminders of one tier are two activities). Undefined outside an activity: no deduplication.
 */
export function deliveryKey(): string | undefined {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return undefined;
  }
  const { workflowExecution, activityId } = context.info;
  return workflowExecution ? `${workflowExecution.workflowId}/${workflowExecution.runId}/${activityId}` : activityId;
}

/** Why a delivery failed, in a few words (a timeout, or the error and its cause). */
function errorReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return 'timed out';
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
}
