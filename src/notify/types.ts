/**
 * The notifier contract: what a notification says and who delivers it. Its own module because both
 * the notifiers (notifier.ts) and the wire formats they send (facts.ts and the formats beside it)
 * are built on it, and neither should import the other for it.
 */
import type { OutcomeDetails } from '../shared/outcome-details.js';
import type { OverrideGrant, Principal, ProposalPreview, Provenance, RequestLink, Risk, ToolOutcome } from '../shared/index.js';

/** One notification to approver groups. */
export interface ApprovalNotification {
  /** requested: a request waits; escalated: a tier fired; reminder: still waiting; outcome: it ended. */
  /** override: the groups a break-glass rule names (security) hear that an override round opened; no decision link. */
  kind: 'requested' | 'escalated' | 'reminder' | 'outcome' | 'override';
  tier: number;
  /** The groups to notify: the tier's new groups on escalation, all eligible groups otherwise. */
  groups: string[];
  requestId: string;
  tenant: string;
  tool: string;
  risk: Risk;
  /** The requester's id; they never receive a link to decide their own request. */
  actor: string;
  /**
   * The principals the requester acts for (the rest of the actor chain), when the caller passes
   * them. Like the requester, none of them receives a link to decide the request.
   */
  onBehalfOf?: Principal[];
  digest: string;
  expiresAt?: string;
  /** Where an approver reviews and decides the request (approver sign-in required). */
  reviewUrl: string;
  /** How the request ended, on `outcome` notifications. */
  outcome?: ToolOutcome['status'];
  /** The environment the tool would act in, shown to approvers when given. */
  environment?: string;
  /** The requester's stated reason, shown to approvers when given (untrusted text). */
  reason?: string;
  /**
   * The arguments the tool would run with (the current proposal's, after any edit), when the
   * caller passes them. Messages show them redacted with every rule and shortened (see facts.ts).
   */
  args?: Record<string, unknown>;
  /** On `outcome` notifications: who decided and what happened (`notificationOutcome`). */
  outcomeDetails?: OutcomeDetails;
  /** The current proposal's dry-run preview (not on `outcome`): messages show it, redacted and shortened. */
  preview?: ProposalPreview;
  /** The request's untrusted-content provenance (not on `outcome`): messages mark each flagged argument. */
  provenance?: Provenance;
  /**
   * The break-glass grant the request runs under (`PolicyDecision.override`), on every notification
   * of an override request: messages say "BREAK-GLASS override" first, with what it overrides.
   */
  override?: OverrideGrant;
  /**
   * The earlier request this one overrides or rolls back (`ToolRequest.link`): messages name it.
   * Not called `link`: in a message, `link` is only ever a personal decision link.
   */
  requestLink?: RequestLink;
}

/** Delivers approval notifications; throwing makes Temporal retry the delivery. */
export interface Notifier {
  notify(notification: ApprovalNotification): Promise<void>;
}
