/**
 * One round of approval: the proposal it decides (the plan, the digest), what settles it (the
 * approvers' quorum or rejection, the end user's answer where the plan accepts them), and its
 * clock (expiry, escalation tiers, reminders). Pure: the workflow's timers wake it, and each
 * question about time takes the time. Part of the RequestMachine (workflows/request-machine.ts).
 */
import { endUserDecline, isApprovalSatisfied, isConfirmedByEndUser, isRejected } from '../src/shared/approval.js';
import { HISTORY_BOUNDS } from '../src/shared/messages.js';
import type { ApprovalPlan, EscalationTier } from '../src/shared/policy-decisions.js';
import type { RequestStatus } from '../src/shared/request-status.js';

/** The votes and answers a round is settled by (the request's status, across rounds: each names its digest). */
type Decisions = Pick<RequestStatus, 'approvals' | 'confirmations'>;

/** One round of approval, opened at `startedAt` on the proposal with `digest`. */
export class ApprovalRound {
  /** When the round expires (the request with it). */
  readonly expiresAt: number;
  private reminders = 0;
  private nextReminder: number;

  constructor(
    readonly plan: ApprovalPlan,
    readonly digest: string,
    readonly startedAt: number,
  ) {
    this.expiresAt = startedAt + plan.expiresAfterMs;
    this.nextReminder = plan.remindEveryMs ? startedAt + plan.remindEveryMs : Infinity;
  }

  /** Whether the proposal is approved: by the approvers' quorum, or by the end user where the plan accepts them. */
  approved(decisions: Decisions): boolean {
    return isApprovalSatisfied(this.plan, decisions.approvals, this.digest) || isConfirmedByEndUser(this.plan, decisions.confirmations, this.digest);
  }

  /** Who ended the round with a refusal: enough approvers (the first of them), or the end user where the plan accepts them. */
  rejection(decisions: Decisions): { by: string; reason?: string } | undefined {
    const { plan, digest } = this;
    if (isRejected(plan, decisions.approvals, digest)) {
      const vote = decisions.approvals.find((v) => v.decision === 'reject' && v.digest === digest);
      if (vote) return { by: vote.approverId, ...(vote.reason === undefined ? {} : { reason: vote.reason }) };
    }
    const declined = endUserDecline(plan, decisions.confirmations, digest);
    return declined && { by: declined.principal, ...(declined.reason === undefined ? {} : { reason: declined.reason }) };
  }

  /** When the workflow must next wake, at escalation `tier`: the next escalation, the next reminder or the expiry. */
  wakeAt(tier: number): number {
    const next = this.plan.escalation[tier];
    return Math.min(next ? this.startedAt + next.afterMs : Infinity, this.expiresAt, this.nextReminder);
  }

  /** Whether the round has expired at `now`. */
  isExpired(now: number): boolean {
    return now >= this.expiresAt;
  }

  /** The escalation past `tier` that is due at `now`, if one is. */
  escalationDue(tier: number, now: number): EscalationTier | undefined {
    const next = this.plan.escalation[tier];
    return next && now >= this.startedAt + next.afterMs ? next : undefined;
  }

  /** Whether a reminder is due at `now` (then counted). Bounded, so a long wait cannot grow the history without end. */
  reminderDue(now: number): boolean {
    if (now < this.nextReminder) return false;
    this.reminders += 1;
    this.nextReminder = this.reminders < HISTORY_BOUNDS.reminders ? now + (this.plan.remindEveryMs ?? Infinity) : Infinity;
    return true;
  }
}
