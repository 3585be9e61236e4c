/**
 * Where a request stands and how it ended: its states, the status snapshot ops read, the outcome
 * (with its execution and egress account), kill switches and orders, and the view an agent reads.
 * Types only, apart from the list of states.
 */
import type { ApprovalRecord, EditRecord, EndUserConfirmation, NotificationRecord, RefusalRecord } from './approver-decisions.js';
import type { DenialCode, OverrideGrant, PolicyDecision, Proposal, ProposalPreview } from './policy-decisions.js';
import type { Actor, Principal, RequestLink, Risk } from './requests.js';

/** Where a request stands. */
export const REQUEST_STATES = [
  'evaluating',
  'pending_approval',
  'reevaluating',
  'executing',
  'completed',
  'denied',
  'rejected',
  'expired',
  'failed',
  'outcome_unknown',
] as const;
export type RequestState = (typeof REQUEST_STATES)[number];

/** A snapshot of one request, served by the status query. */
export interface RequestStatus {
  requestId: string;
  workflowId: string;
  state: RequestState;
  tenant: string;
  environment: string;
  tool: string;
  actor: Actor;
  /** The principals the actor acts for; like the actor, none of them may approve. */
  onBehalfOf?: Principal[];
  reason?: string;
  traceId?: string;
  decision?: PolicyDecision;
  proposal?: Proposal;
  digest?: string;
  /** ISO time after which the request can no longer be approved. */
  expiresAt?: string;
  /** Index of the escalation tier reached; 0 before any escalation. */
  tier: number;
  /** Groups whose members may approve at this moment. */
  eligibleGroups: string[];
  /** Every accepted vote, across approval rounds (each vote names the digest it approved). */
  approvals: ApprovalRecord[];
  /** Refused decision attempts of authenticated approvers, within the history bounds (see HISTORY_BOUNDS). */
  refusals: RefusalRecord[];
  /** Refused attempts beyond the bounds, which are logged but not recorded (counted only by requests from before signed decisions). */
  refusalsDropped: number;
  /** Edits before approval; each opened a new round with a new digest. */
  edits: EditRecord[];
  notifications: NotificationRecord[];
  /** The kill order that denied the request, if one did. */
  killedBy?: KillOrder;
  /** The earlier request this one overrides or rolls back (set by the approval API, signed with the request). */
  link?: RequestLink;
  /** The end user's answers through the agent framework, across rounds (bounded like votes). */
  confirmations?: EndUserConfirmation[];
  outcome?: ToolOutcome;
}

/** What left the gateway with a result: its JSON size before redaction and the replacements per redaction rule. */
export interface EgressEvent {
  bytes: number;
  redactions: Record<string, number>;
}

/** Why the result of a tool that acted is not returned. */
export interface ResultWithheld {
  /** `tenant_mismatch` (a record of another tenant), `result_too_large` (above the tool's limit or the adapter's). */
  code: 'tenant_mismatch' | 'result_too_large';
  reason: string;
}

/** What the side effect produced and who it ran as. */
export interface Execution {
  runAs: string;
  idempotencyKey: string;
  startedAt: string;
  finishedAt: string;
  attempts: number;
}

interface OutcomeBase {
  requestId: string;
  workflowId: string;
  tool: string;
  tenant: string;
  actor: Actor;
  risk: Risk;
  rule: string;
  policyDigest: string;
  digest?: string;
  approvals: ApprovalRecord[];
  /** The end user's confirmation the call ran on, when a plan accepted one (never an approver's vote). */
  confirmation?: EndUserConfirmation;
  /** The break-glass override this request ran under, when it did. */
  override?: OverrideGrant;
}

/** The end of a tool request, as the agent receives it. */
export type ToolOutcome =
  | (OutcomeBase & {
      status: 'completed';
      result: unknown;
      /** The arguments executed: the approved proposal's. */
      args: Record<string, unknown>;
      execution: Execution;
      /** Who changed the arguments before approving, when someone did. */
      editedBy?: string[];
      /** The proposal that was approved and executed (its digest is `digest`). */
      proposal?: Proposal;
      /** The egress filter's account of the result (size, redactions); absent in histories from before egress filtering. */
      egress?: EgressEvent;
      /**
       * The tool acted, but its result may not leave the gateway (another tenant's record, too
       * large): `result` is null and this says why. The side effect happened; do not repeat it.
       */
      withheld?: ResultWithheld;
    })
  | (OutcomeBase & { status: 'denied'; code: DenialCode; reasons: string[] })
  | (OutcomeBase & { status: 'rejected'; rejectedBy: string; reason?: string })
  | (OutcomeBase & { status: 'expired'; expiresAt: string })
  | (OutcomeBase & { status: 'failed'; error: { type: string; message: string }; execution?: Execution })
  | (OutcomeBase & { status: 'outcome_unknown'; error: { type: string; message: string }; execution?: Execution });

/** A kill switch: while it is on, requests in its scope are refused and pending ones denied. */
export interface KillSwitch {
  id: string;
  tenant: string;
  /** Only this tool; absent = every tool of the tenant. */
  tool?: string;
  reason: string;
  by: string;
  at: string;
}

/** The order to deny a request because a kill switch covers it. */
export interface KillOrder {
  switchId: string;
  reason: string;
  by: string;
  at: string;
}
/** A request as its agent sees it through the agent API: where it stands, and its outcome once it has one. */
export interface AgentRequestView {
  requestId: string;
  state: RequestState;
  tool?: string;
  /** Where to read the request again (agent API path). */
  statusUrl?: string;
  /** While it waits for approval: until when, and which groups may decide. */
  expiresAt?: string;
  eligibleGroups?: string[];
  message?: string;
  outcome?: ToolOutcome;
  /** The tool's result, when it completed. */
  result?: unknown;
  /**
   * While it waits under a plan that accepts the end user's confirmation: what to show them (the
   * arguments, the dry-run preview when there is one) and the digest their answer is bound to.
   * Answer with `POST /v1/tool-requests/:id/confirmation`.
   */
  endUserConfirmation?: { digest: string; args: Record<string, unknown>; preview?: ProposalPreview; plan: string };
}
