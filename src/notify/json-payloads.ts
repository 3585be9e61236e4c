/**
 * Notifications as generic JSON events: shared ones (`audience: "shared"`, no link, for channels)
 * and personal ones (one approver's own link). See ./facts.ts for the two kinds and the facts.
 */
import { facts, headline, type ApprovalLink, type DecisionNotification, type NotificationFacts } from './facts.js';
import type { ApprovalNotification } from './types.js';

/** The JSON `type` of a notification kind. */
export type ApprovalEventType = `toolgate.approval.${ApprovalNotification['kind']}`;

/**
 * The generic JSON event posted to shared `json=` targets: every fact, its type and
 * `audience: "shared"`. `links` and `link` are typed `never`: a shared event cannot carry one.
 */
export type SharedApprovalEvent = NotificationFacts & {
  type: ApprovalEventType;
  /** The message's headline, as Slack's header shows it (`BREAK-GLASS override requested: …` on an override). */
  subject: string;
  audience: 'shared';
  links?: never;
  link?: never;
};

/**
 * The generic JSON event posted to one approver's own `json=` target: every fact, its type,
 * `audience: "personal"` and that approver's link.
 */
export type PersonalApprovalEvent = NotificationFacts & {
  kind: DecisionNotification['kind'];
  type: ApprovalEventType;
  /** The message's headline, as Slack's header shows it. */
  subject: string;
  audience: 'personal';
  link: ApprovalLink;
};

/** The shared JSON event: the facts and the review URL, no link. */
export function sharedJsonPayload(notification: ApprovalNotification): SharedApprovalEvent {
  const n = facts(notification);
  return { type: `toolgate.approval.${notification.kind}`, subject: headline(n), audience: 'shared', ...n };
}

/** The personal JSON event: the facts, the review URL and `link`, the recipient's own. */
export function personalJsonPayload(notification: DecisionNotification, link: ApprovalLink): PersonalApprovalEvent {
  const n = facts(notification);
  return {
    type: `toolgate.approval.${notification.kind}`,
    subject: headline(n),
    audience: 'personal',
    ...n,
    kind: notification.kind,
    link: { ...link },
  };
}
