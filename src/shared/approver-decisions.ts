/**
 * Approvers' decisions and the end user's answers: the bodies the HTTP API accepts, the decision
 * as the workflow verified it, and the records kept of votes, edits, refused attempts and
 * notifications. Pure (no I/O).
 */
import { z } from 'zod';
import { argsSchema, identifier } from './fields.js';

/** An approver as the API has authenticated them. */
export const ApproverSchema = z.strictObject({
  id: identifier('approver.id'),
  tenant: identifier('approver.tenant'),
  groups: z.array(identifier('approver.groups[]')).max(64),
});
export type Approver = z.infer<typeof ApproverSchema>;

/** The proposal digest a decision or an end user's answer is bound to. */
const proposalDigestField = z
  .string({ error: 'digest must be a string' })
  .regex(/^[a-f0-9]{64}$/, { error: 'digest must be the 64 hex characters of the proposal digest' });

/** Why someone decided as they did (optional, shown in the record). */
const decisionReasonField = z
  .string()
  .max(2000, { error: 'reason must be at most 2000 characters' })
  .refine((text) => text.isWellFormed(), { error: 'reason must be well-formed Unicode text (no lone surrogates)' })
  .optional();

/** The body of `POST /v1/approvals/:id/preview`: edited arguments to judge, against the proposal the approver read. */
export const PreviewBodySchema = z.strictObject({
  digest: proposalDigestField,
  args: argsSchema,
});

/** An approver's decision as the HTTP API accepts it. */
export const DecisionBodySchema = z
  .strictObject({
    decision: z.enum(['approve', 'reject', 'edit'], { error: 'decision must be "approve", "reject" or "edit"' }),
    digest: proposalDigestField,
    reason: decisionReasonField,
    /** The changed arguments, for `edit` only: they replace the proposal's arguments. */
    args: argsSchema.optional(),
  })
  .refine((body) => (body.decision === 'edit') === (body.args !== undefined), {
    error: 'args must be given with decision "edit", and only then',
    path: ['args'],
  });
export type DecisionBody = z.infer<typeof DecisionBodySchema>;

/**
 * How a decision reached the gateway: the approval API, a one-click link, or the end user in the
 * conversation through the agent framework's own confirmation (relayed by the front door).
 */
export type DecisionChannel = 'api' | 'link' | 'end_user';

/**
 * The end user's answer to a plan that accepts it (`endUser`), relayed by the agent runtime:
 * `approve` confirms, `reject` declines, `edit` adjusts the arguments (policy judges them again and
 * the adjusted call counts as confirmed when the new plan accepts the end user too). Recorded as
 * "confirmed by the end user", never as an approver's vote.
 */
export interface EndUserConfirmation {
  /** The end user's id (the request's first `onBehalfOf` principal, canonical form). */
  principal: string;
  decision: 'approve' | 'reject' | 'edit';
  digest: string;
  at: string;
  reason?: string;
}

/** The body of `POST /v1/tool-requests/:id/confirmation`: the end user's answer, bound to the digest they were shown. */
export const ConfirmationBodySchema = z
  .strictObject({
    decision: z.enum(['confirm', 'decline', 'adjust'], { error: 'decision must be "confirm", "decline" or "adjust"' }),
    digest: proposalDigestField,
    reason: decisionReasonField,
    /** The adjusted arguments, for `adjust` only. */
    args: argsSchema.optional(),
  })
  .refine((body) => (body.decision === 'adjust') === (body.args !== undefined), {
    error: 'args must be given with decision "adjust", and only then',
    path: ['args'],
  });
export type ConfirmationBody = z.infer<typeof ConfirmationBodySchema>;

/** A decision with the approver who made it, as the workflow has verified it (and as the approval rules judge it). */
export interface DecideInput extends DecisionBody {
  approver: Approver;
  /** @default 'api' */
  via?: DecisionChannel;
  /** The single-use nonce (`jti`) of the one-click link the decision came through. */
  linkNonce?: string;
}

/**
 * The argument of the `decide` update: only the approval API's signed decision assertion. The
 * workflow takes the decision, the approver and everything else from the verified assertion.
 */
export interface DecideUpdateInput {
  assertion: string;
}

/**
 * A decision attempt the gateway refused, kept in the request's record. Only attempts of
 * authenticated approvers are recorded (capped per request and per approver); anonymous or
 * unverifiable attempts go to logs and metrics.
 */
export interface RefusalRecord {
  /** The verified approver id (null only in records of requests from before signed decisions). */
  approverId: string | null;
  /** An id the caller claimed but that could not be verified. */
  claimedId?: string;
  tenant?: string;
  via: DecisionChannel;
  decision?: string;
  digest?: string;
  /** A stable code: digest_mismatch, not_eligible, self_approval, wrong_tenant, duplicate_vote, not_pending, link_reused, invalid_token, ... */
  code: string;
  message: string;
  at: string;
}

/** An approver's change of the arguments, which opened a new approval round. */
export interface EditRecord {
  editorId: string;
  at: string;
  fromDigest: string;
  toDigest?: string;
  args: Record<string, unknown>;
  reason?: string;
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
  /** @default 'api' */
  via?: DecisionChannel | 'edit';
}

/** One notification sent to approver groups. */
export interface NotificationRecord {
  /** `override`: the groups a break-glass rule names (security) are told an override round opened; they get no decision link. */
  kind: 'requested' | 'escalated' | 'reminder' | 'outcome' | 'override';
  tier: number;
  groups: string[];
  at: string;
}
