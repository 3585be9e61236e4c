/**
 * What policy decides about a request: denial codes, approval plans, break-glass grants, the
 * decision itself, the proposal approvers sign (with its dry-run preview), the shadow policy's
 * decision and the evaluation that carries them all. Types only, apart from the denial codes.
 */
import type { Actor, Principal, RequestLink, Risk } from './requests.js';
import type { Provenance } from './provenance.js';

/** Why a request was refused before any approval or execution. */
export const DENIAL_CODES = [
  'invalid_request',
  'unknown_tool',
  'invalid_arguments',
  'environment_not_allowed',
  'tenant_not_allowed',
  'role_not_allowed',
  'rule_denied',
  'policy_unavailable',
  'rate_limited',
  'kill_switch',
  'unverified_request',
  'manifest_changed',
  /** A break-glass override that no break-glass rule of the policy allows (or a request that was not denied). */
  'override_refused',
  /** A rollback the original's manifest does not allow (no undo tool, or not this one). */
  'rollback_refused',
] as const;
export type DenialCode = (typeof DENIAL_CODES)[number];

/** One step of an approval plan's escalation: after `afterMs` from the request, `groups` are notified and may approve. */
export interface EscalationTier {
  afterMs: number;
  groups: string[];
}

/**
 * A resolved approval plan, carried inside the decision so the workflow needs nothing else.
 * Approval is reached when at least `minApprovals` distinct people approved and, when `allOf` is
 * set, each listed group was filled by a different person.
 */
export interface ApprovalPlan {
  name: string;
  groups: string[];
  allOf: string[];
  minApprovals: number;
  /** Distinct rejections that end the request. @default 1 */
  rejectionsToDeny: number;
  escalation: EscalationTier[];
  expiresAfterMs: number;
  /** Re-notify the eligible groups at this interval while the request waits; absent = no reminders. */
  remindEveryMs?: number;
  /**
   * The end user in the conversation (the request's first `onBehalfOf` principal) may confirm the
   * call through the agent framework (channel `end_user`): their confirmation alone satisfies the
   * plan, and their refusal rejects it. Never counted as an approver's vote. Absent = not accepted.
   */
  endUser?: true;
}

/**
 * A break-glass override of a denial, as policy granted it to a linked `override` request: which
 * rule allowed it, what it overrides, who asked and why, and the groups that are always notified.
 */
export interface OverrideGrant {
  /** The break-glass rule's name. */
  breakGlass: string;
  deniedRule: string;
  deniedCode: DenialCode;
  deniedReasons: string[];
  /** The person who asked for the override (`link.by.id`). */
  by: string;
  reason: string;
  /** Groups notified of the override (security), whatever its outcome. */
  notify: string[];
}

/** The policy's verdict on one request. */
export interface PolicyDecision {
  outcome: 'allow' | 'deny' | 'approve';
  tool: string;
  risk: Risk;
  /** The rule that decided, `tool:<name>` for the tool's defaults, or the check that refused. */
  rule: string;
  reasons: string[];
  code?: DenialCode;
  policyDigest: string;
  approval?: ApprovalPlan;
  /** The identity the side effect runs as (from the tool manifest). */
  runAs?: string;
  /** The digest of the tool's manifest entry: its identity, not just its name. */
  toolDigest?: string;
  /**
   * Who signed that manifest entry, verified against the deployment's trusted keys when the
   * policy was loaded (co-signed manifests; absent when the entry carries no verified signature).
   */
  toolSigners?: ManifestSigner[];
  /**
   * Set when a break-glass rule turned a denial of a linked `override` request into an approval
   * round by a second person: the decision is then `approve` with the rule's plan.
   */
  override?: OverrideGrant;
  /**
   * Set on an `allow` of a low-risk tool whose manifest says `idempotent: true`: the workflow runs
   * it as a local activity, in the same workflow task as the decision, instead of a regular
   * activity (one task and two server round trips fewer). A local activity is retried by its
   * worker and re-run after a worker crash without heartbeats, which only an idempotent tool may
   * take (it deduplicates by the idempotency key); a call that waits for people, is riskier, or
   * cannot be repeated keeps the regular activity with heartbeats and at-most-once checks.
   */
  localExecution?: true;
}

/** A verified signer of a tool's manifest entry: the role it signed as and its key id (`k-<16 hex>`). */
export interface ManifestSigner {
  role: string;
  key: string;
}

/**
 * What an approver signs off: everything that determines the side effect. Its `digest`
 * (SHA-256 over RFC 8785 canonical JSON) binds approvals to this exact request.
 */
export interface Proposal {
  requestId: string;
  workflowId: string;
  tenant: string;
  environment: string;
  actor: Actor;
  /** The actor followed by the principals it acts for. */
  actorChain: Principal[];
  tool: { name: string; digest: string };
  args: Record<string, unknown>;
  policyDigest: string;
  decision: { outcome: PolicyDecision['outcome']; risk: Risk; rule: string };
  approval: ApprovalPlan | null;
  /**
   * The request's provenance (untrusted arguments, prompt metadata), when it has one: approvers
   * see it and sign it with the rest. Absent otherwise, so earlier proposals keep their digests.
   */
  provenance?: Provenance;
  /**
   * The tool's dry-run preview, when its manifest declares one: what the call says it would do,
   * redacted and cut, or why there is no answer. Approvers see it and sign it with the rest;
   * absent for tools without a preview, so their proposals keep their digests.
   */
  preview?: ProposalPreview;
  /** The earlier request this one overrides or rolls back, who asked and why (linked requests only). */
  link?: RequestLink;
  /** The break-glass grant, on an override: approvers sign that they override this denial. */
  override?: OverrideGrant;
}

/**
 * What a tool's dry-run preview answered, as approvers are shown it: `ok` with the answer
 * (redacted with every rule; when `truncated`, the answer's text cut to the manifest's
 * `preview.max_bytes`; `bytes` is its JSON size before redaction), or `failed` / `timed_out`
 * with a redacted message. Either way the approval goes on.
 */
export type ProposalPreview =
  | { status: 'ok'; result: unknown; bytes: number; truncated?: boolean; redactions?: Record<string, number>; at: string }
  | { status: 'failed' | 'timed_out'; message: string; at: string };

/**
 * How a shadow policy's decision compares with the enforced policy's own decision (before kill
 * switches and rate limits): `agree`, or a kind of change as `toolgate policy replay` names them
 * (`allow->deny`, `plan`, `risk`, …, see src/policy/replay.ts).
 */
export type ShadowDisagreementKind = `${PolicyDecision['outcome']}->${PolicyDecision['outcome']}` | 'plan' | 'risk';

/**
 * A candidate policy's decision on a live request, recorded beside the enforced one and never
 * acted on. `unavailable`: the shadow policy could not decide (not loaded); `not_comparable`: no
 * enforced policy was in force, so there is nothing to compare with.
 */
export type ShadowDecision =
  | {
      kind: 'agree' | 'not_comparable' | ShadowDisagreementKind;
      policyDigest: string;
      outcome: PolicyDecision['outcome'];
      rule: string;
      risk: Risk;
      /** The approval plan's name, for `approve`. */
      plan?: string;
      /** The denial code, for `deny`. */
      code?: DenialCode;
      /** What differs, for `plan` and `risk`. */
      detail?: string;
    }
  | { kind: 'unavailable'; reason: string };

/** The result of the policy activity: the decision, and the proposal with its digest when there is one. */
export interface Evaluation {
  decision: PolicyDecision;
  proposal?: Proposal;
  digest?: string;
  /**
   * The shadow policy's decision on the same request, when the worker runs one. Informational:
   * nothing reads it to decide, approve or execute. Inside the evaluation, so the seal covers it.
   */
  shadow?: ShadowDecision;
  /**
   * Set when policy asks for approval and the tool declares a dry-run preview: the preview's
   * timeout. The workflow then runs the preview (activity `previewTool`) before approvers are
   * asked, and approvals bind to the proposal with the preview in it.
   */
  previewTimeoutMs?: number;
}
