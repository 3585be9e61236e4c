/**
 * The audit record of one request: what src/audit/record.ts derives from the request's workflow
 * history (the only source of truth), with arguments, results and messages redacted. It answers
 * four questions — who initiated it, who allowed it, under which identity it left, what it
 * produced — and says how far each answer can be trusted (`AssertionCheck`): the front door's
 * request assertion and every decision assertion, verified again against the trust anchors the
 * workflow recorded in the same history.
 */
import type { PreviewView, ProvenanceView } from '../approvals/view.js';
import { ToolgateError, type ToolgateErrorOptions } from '../errors.js';
import type { LinkKind, OverrideGrant, RequestLink, ShadowDecision, ToolRequest } from '../shared/index.js';

/** Longest result summary kept in a record, in characters of JSON. @default 2000 */
export const RESULT_SUMMARY_CHARS = 2000;

/**
 * Whether a signed assertion found in the history verifies with the keys the workflow recorded
 * in that same history. `kid` names the key that verified it; `problem` says why it did not.
 */
export interface AssertionCheck {
  verified: boolean;
  kid?: string;
  problem?: { code: string; message: string };
}

/** The audit record of one request. */
export interface AuditRecord {
  requestId: string;
  workflowId: string;
  runId?: string;
  traceId?: string;
  /** `running` while the workflow is open; otherwise the outcome's status (or how the workflow ended). */
  status: string;
  /** Who initiated it (as the workflow input says; `admission` says whether that is verified). */
  initiatedBy: {
    actor: ToolRequest['actor'];
    onBehalfOf: NonNullable<ToolRequest['onBehalfOf']>;
    tenant: string;
    environment: string;
    reason?: string;
    at: string;
  };
  /**
   * Whether the request carried the front door's assertion (`present`), and whether it verifies
   * for this request, workflow and start time against the request keys recorded in the history.
   * Only then did the identity in `initiatedBy` come from a verified agent credential.
   */
  admission: AssertionCheck & { present: boolean };
  /** The key ids the workflow trusted, each time it read them (first at the start; again after a key rotation). */
  trustAnchors: { at: string; requestKeys: string[]; decisionKeys: string[] }[];
  /**
   * What was asked, with arguments redacted. `toolSigners`: who signed the tool's manifest entry,
   * as verified when the policy that decided was loaded (co-signed manifests).
   */
  proposal: {
    tool: string;
    toolDigest?: string;
    toolSigners?: { role: string; key: string }[];
    digest?: string;
    args: Record<string, unknown>;
    /** The tool's dry-run preview approvers were shown and signed (the last round's), redacted. */
    preview?: PreviewView;
  };
  /**
   * What the agent runtime said came from untrusted content (flagged arguments, prompt metadata),
   * as the admitted request carried it: redacted and bounded. A claim, signed by the front door
   * with the request (`admission` says whether that verifies); absent when the runtime said nothing.
   */
  provenance?: ProvenanceView;
  /** What policy decided (the last evaluation; after an edit, the re-evaluation). `sealed`: the worker sealed it. */
  decision: { outcome: string; rule: string; reasons: string[]; risk: string; policyDigest: string; code?: string; sealed?: boolean } | null;
  /**
   * The shadow policy's decision on the request as admitted (the first evaluation: what the
   * `ToolgateShadowDisagreement` search attribute and the metric report), when the worker ran one.
   * It was recorded, never enforced.
   */
  shadow?: ShadowDecision;
  /** Every accepted vote: who, when, at which tier, on which digest, through which channel, and whether its signed decision verifies. */
  approvals: ({
    who: string;
    decision: 'approve' | 'reject';
    groups: string[];
    at: string;
    tier: number;
    digest: string;
    via: string;
    reason?: string;
  } & AssertionCheck)[];
  /**
   * The end user's answers (decide updates through channel `end_user`, relayed by the front door),
   * each with whether its signed assertion verifies. Never among `approvals`: the end user is no approver.
   * `args`: the adjusted arguments of an `edit` (redacted). Always set by this version (absent only
   * in records built before end-user confirmations existed, e.g. read back from an older export).
   */
  confirmations?: ({
    principal: string;
    decision: 'approve' | 'reject' | 'edit';
    digest: string;
    at: string;
    reason?: string;
    args?: Record<string, unknown>;
  } & AssertionCheck)[];
  /** Every refused decision attempt recorded on the request (`code` in snake case, as the API answers it). */
  refusals: { who: string | null; claimed?: string; at: string; code: string; message: string; via: string; decision?: string; verified: boolean }[];
  /** Approvers' edits of the arguments before approval (arguments redacted), and whether each signed edit verifies. */
  edits: ({ editor: string; at: string; fromDigest: string; toDigest?: string; args: Record<string, unknown>; reason?: string } & AssertionCheck)[];
  /** Under which identity it ran, when it ran. */
  ranAs: { runAs: string; idempotencyKey: string; attempts: number; startedAt?: string; finishedAt?: string } | null;
  /** What it produced. */
  outcome: {
    status: string;
    /** Redacted, truncated JSON of the result. */
    result?: string;
    error?: { type: string; message: string };
    egress?: { bytes: number; redactions: Record<string, number> };
    /** The tool acted, but its result was kept inside the gateway (another tenant's record, too large). */
    withheld?: { code: string; reason: string };
  } | null;
  /**
   * The earlier request this one overrides (break-glass) or rolls back, as the signed request
   * carries it (`admission` says whether that verifies); the reason redacted. Absent otherwise.
   */
  link?: RequestLink;
  /**
   * Whether a policy gate was overridden: policy turned its denial of this (linked `override`)
   * request into an approval round by a second person under a break-glass rule (`override`).
   * Whether the tool then ran is `ranAs` / `outcome`. Always set by this version (absent only in
   * records built before break-glass overrides existed).
   */
  overridden?: boolean;
  /** The break-glass grant of the decision (rule, what it overrode, who asked and why, who is notified); texts redacted. */
  override?: OverrideGrant;
  /**
   * Requests linked to this one (its overrides and rollbacks), from visibility when the record was
   * built with a client (`buildAuditRecord*`); always empty from a history alone. Always set by
   * this version (absent only in records built before linked requests existed).
   */
  linked?: { kind: LinkKind; requestId: string; status: string }[];
  /** Why `linked` could not be listed (visibility refused the query); absent when it was. */
  linkedUnavailable?: string;
  /** The four questions, answered in a sentence each. */
  answers: { whoInitiated: string; whoAllowed: string; underWhichIdentity: string; whatItProduced: string };
  timeline: { at: string; event: string }[];
}

/**
 * Thrown when a request has no workflow, or its history cannot be read as a toolgate request
 * (code `not_found`: for the API both are "no such request"). Never thrown for a history that
 * could not be fetched: Temporal out of reach is the caller's 503, not a missing request.
 */
export class AuditRecordError extends ToolgateError {
  override readonly name = 'AuditRecordError';
  constructor(message: string, options?: ToolgateErrorOptions) {
    super('not_found', message, options);
  }
}
