/**
 * The wire contract of toolgate: requests, policy decisions, approval plans, outcomes.
 *
 * Every type here is defined once as a zod schema and inferred with `z.infer`, so the client SDK,
 * the HTTP API, the activities and the workflow agree on one shape. This module is pure (no I/O)
 * because the workflow bundle imports it.
 */
import { z } from 'zod';

/** Identifiers that travel in workflow ids, URLs and search attributes. */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

const identifier = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .regex(IDENTIFIER_PATTERN, {
      error: `${what} must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit`,
    });

/** Who asks for a tool call. */
export const ActorSchema = z.strictObject({
  id: identifier('actor.id'),
  type: z.enum(['agent', 'human', 'service'], { error: 'actor.type must be one of agent, human, service' }),
  roles: z.array(identifier('actor.roles[]')).max(64).default([]),
});
export type Actor = z.infer<typeof ActorSchema>;

/** Risk classes, ordered from least to most dangerous. */
export const RISK_LEVELS = ['low', 'medium', 'high', 'critical'] as const;
export const RiskSchema = z.enum(RISK_LEVELS, { error: `risk must be one of ${RISK_LEVELS.join(', ')}` });
export type Risk = z.infer<typeof RiskSchema>;

/** Largest accepted `args` object, measured as JSON text. */
export const MAX_ARGS_BYTES = 256 * 1024;

const argsSchema = z
  .record(z.string(), z.unknown(), { error: 'args must be an object' })
  .refine((value) => JSON.stringify(value).length <= MAX_ARGS_BYTES, {
    error: `args must serialize to at most ${MAX_ARGS_BYTES} bytes of JSON`,
  });

/** A tool call as an agent submits it; `requestId` may be left out and is then generated. */
export const ToolRequestInputSchema = z.strictObject({
  requestId: identifier('requestId').optional(),
  actor: ActorSchema,
  tenant: identifier('tenant'),
  environment: identifier('environment'),
  tool: identifier('tool'),
  args: argsSchema.default({}),
  reason: z.string().max(2000, { error: 'reason must be at most 2000 characters' }).optional(),
  traceId: z.string().max(256, { error: 'traceId must be at most 256 characters' }).optional(),
});
export type ToolRequestInput = z.input<typeof ToolRequestInputSchema>;

/** A validated tool call with its idempotency key (`requestId`) fixed. */
export const ToolRequestSchema = ToolRequestInputSchema.extend({ requestId: identifier('requestId') });
export type ToolRequest = z.infer<typeof ToolRequestSchema>;

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
  escalation: EscalationTier[];
  expiresAfterMs: number;
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
  tool: { name: string; digest: string };
  args: Record<string, unknown>;
  policyDigest: string;
  decision: { outcome: PolicyDecision['outcome']; risk: Risk; rule: string };
  approval: ApprovalPlan | null;
}

/** The result of the policy activity: the decision, and the proposal with its digest when there is one. */
export interface Evaluation {
  decision: PolicyDecision;
  proposal?: Proposal;
  digest?: string;
}

/** An approver as the API has authenticated them. */
export const ApproverSchema = z.strictObject({
  id: identifier('approver.id'),
  tenant: identifier('approver.tenant'),
  groups: z.array(identifier('approver.groups[]')).max(64),
});
export type Approver = z.infer<typeof ApproverSchema>;

/** An approver's decision as the HTTP API accepts it. */
export const DecisionBodySchema = z.strictObject({
  decision: z.enum(['approve', 'reject'], { error: 'decision must be "approve" or "reject"' }),
  digest: z
    .string({ error: 'digest must be a string' })
    .regex(/^[a-f0-9]{64}$/, { error: 'digest must be the 64 hex characters of the proposal digest' }),
  reason: z.string().max(2000, { error: 'reason must be at most 2000 characters' }).optional(),
});
export type DecisionBody = z.infer<typeof DecisionBodySchema>;

/** The argument of the decide update: a decision plus the authenticated approver. */
export interface DecideInput extends DecisionBody {
  approver: Approver;
}

/** One recorded vote. */
export interface ApprovalRecord {
  approverId: string;
  groups: string[];
  decision: 'approve' | 'reject';
  reason?: string;
  digest: string;
  at: string;
  tier: number;
}

/** One notification sent to approver groups. */
export interface NotificationRecord {
  kind: 'requested' | 'escalated';
  tier: number;
  groups: string[];
  at: string;
}

/** Where a request stands. */
export const REQUEST_STATES = [
  'evaluating',
  'pending_approval',
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
  approvals: ApprovalRecord[];
  notifications: NotificationRecord[];
  outcome?: ToolOutcome;
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
}

/** The end of a tool request, as the agent receives it. */
export type ToolOutcome =
  | (OutcomeBase & { status: 'completed'; result: unknown; args: Record<string, unknown>; execution: Execution })
  | (OutcomeBase & { status: 'denied'; code: DenialCode; reasons: string[] })
  | (OutcomeBase & { status: 'rejected'; rejectedBy: string; reason?: string })
  | (OutcomeBase & { status: 'expired'; expiresAt: string })
  | (OutcomeBase & { status: 'failed'; error: { type: string; message: string }; execution?: Execution })
  | (OutcomeBase & { status: 'outcome_unknown'; error: { type: string; message: string }; execution?: Execution });

/** Formats zod issues as `field: message` lines, the shape every edge of toolgate reports. */
export function formatIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    return `${path || '(root)'}: ${issue.message}`;
  });
}
