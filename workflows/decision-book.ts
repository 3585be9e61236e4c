/**
 * The decisions of one request: verifying each signed decision assertion, judging it with the
 * approval rules, and keeping the record within HISTORY_BOUNDS. Pure and synchronous, so the
 * `decide` update's validator and handler share it and unit tests drive it without a server.
 *
 * A decision ends in one of three verdicts:
 * - `refuse` — not recorded: the assertion does not verify (whoever sent it, it proves nothing), or
 *   the approver already used their share of the record. Validator rejections leave no event in
 *   the history, so nothing unverified or unbounded ever enters it.
 * - `record` — an authenticated approver's refused attempt (wrong group, self-approval, digest
 *   mismatch, a second vote...): accepted as an update so the history keeps who tried what, then
 *   failed with the refusal.
 * - `accept` — a vote or an edit that applies.
 *
 * The book also keeps the accepted assertions that prove an approval (votes, edits that count as
 * their editors' votes, the end user's confirmation): the evidence the execution activity checks.
 */
import { canonicalId } from '../src/shared/identity.js';
import { refuseDecision, type DecisionRefusal, type PendingApproval } from '../src/shared/approval.js';
import { AssertionError, verifyDecisionAssertion, type DecisionAssertionClaims, type TrustAnchors } from '../src/shared/assertions.js';
import { FailureTypes, HISTORY_BOUNDS } from '../src/shared/messages.js';
import type { DecideInput, RefusalRecord } from '../src/shared/approver-decisions.js';

/** What the book's verdict is on one decision. */
export type Verdict =
  | { kind: 'refuse'; refusal: DecisionRefusal; claims?: DecisionAssertionClaims }
  | { kind: 'record'; refusal: DecisionRefusal; claims: DecisionAssertionClaims; input: DecideInput }
  | { kind: 'accept'; claims: DecisionAssertionClaims; input: DecideInput; token: string };

/** Where the request stands, as the book needs it to judge a decision. */
export interface BookContext {
  requestId: string;
  workflowId: string;
  runId: string;
  /** The workflow's clock (deterministic). */
  nowMs: number;
  /** The approval round open now, or undefined when no decision may apply. */
  pending?: Omit<PendingApproval, 'usedLinkNonces'>;
  /** Refused attempts recorded so far. */
  refusals: readonly RefusalRecord[];
}

/** An accepted decision, kept as evidence for the execution activity. */
export interface AcceptedDecision {
  token: string;
  approverId: string;
  decision: DecideInput['decision'];
  digest: string;
  /** How it came: an end user's confirmation (`end_user`) is evidence of its own kind, never an approver's vote. */
  via: NonNullable<DecideInput['via']>;
}

/** The verified decisions of one request and the nonces they used. */
export class DecisionBook {
  private anchors?: TrustAnchors;
  private readonly usedAssertions = new Set<string>();
  private readonly usedLinkNonces: string[] = [];
  private readonly accepted: AcceptedDecision[] = [];
  /** The edit assertion behind each edit that counts as its editor's approval, by digest and editor. */
  private readonly editApprovals = new Map<string, string>();
  /** The end user's assertion confirming each digest they confirmed (their approval, or the adjustment that produced it). */
  private readonly confirmations = new Map<string, string>();
  /** The last verification (the validator's), reused by the handler that runs right after it. */
  private lastVerified?: { token: string; claims: DecisionAssertionClaims };

  /** Sets the keys the request trusts (from the worker, recorded in the history). */
  trust(anchors: TrustAnchors): void {
    this.anchors = anchors;
  }

  /** Whether trusted keys are known yet. */
  get trusted(): boolean {
    return this.anchors !== undefined;
  }

  /** Judges an update's input. Pure apart from a verification cache; `apply` records the outcome. */
  judge(input: unknown, context: BookContext): Verdict {
    const token = (input as { assertion?: unknown } | null)?.assertion;
    if (!this.anchors) {
      return { kind: 'refuse', refusal: { type: FailureTypes.NotPending, message: 'the request is not waiting for approval yet' } };
    }
    let claims: DecisionAssertionClaims;
    try {
      const last = this.lastVerified;
      claims = last !== undefined && last.token === token ? last.claims : verifyDecisionAssertion(token, this.anchors, context);
    } catch (err) {
      const problem = err instanceof AssertionError ? err.problem : 'malformed';
      const message = `decision assertion refused: ${(err as Error).message}`;
      return { kind: 'refuse', refusal: { type: problem === 'unknown_key' ? FailureTypes.UntrustedSigningKey : FailureTypes.UnverifiedDecision, message } };
    }
    this.lastVerified = { token: token as string, claims };
    if (this.usedAssertions.has(claims.jti)) {
      return {
        kind: 'refuse',
        claims,
        refusal: { type: FailureTypes.UnverifiedDecision, message: 'decision assertion refused: it was already used (replay)' },
      };
    }
    const decided: DecideInput = {
      decision: claims.decision,
      digest: claims.digest,
      approver: { id: canonicalId(claims.sub), tenant: claims.tenant, groups: claims.groups },
      via: claims.channel,
      ...(claims.reason === undefined ? {} : { reason: claims.reason }),
      ...(claims.args === undefined ? {} : { args: claims.args }),
      ...(claims.link_nonce === undefined ? {} : { linkNonce: claims.link_nonce }),
    };
    const refusal = context.pending
      ? refuseDecision({ ...context.pending, usedLinkNonces: this.usedLinkNonces }, decided)
      : { type: FailureTypes.NotPending, message: 'the request is not waiting for approval (already decided, expired or being re-evaluated)' };
    if (!refusal) return { kind: 'accept', claims, input: decided, token: token as string };
    const mine = context.refusals.filter((record) => record.approverId === decided.approver.id).length;
    const recordable = context.refusals.length < HISTORY_BOUNDS.refusalsPerRequest && mine < HISTORY_BOUNDS.refusalsPerPrincipal;
    return recordable ? { kind: 'record', refusal, claims, input: decided } : { kind: 'refuse', refusal, claims };
  }

  /** Records what an accepted or recorded verdict used up: the assertion, and a link's nonce once it decided. */
  apply(verdict: Exclude<Verdict, { kind: 'refuse' }>): void {
    this.usedAssertions.add(verdict.claims.jti);
    this.lastVerified = undefined;
    if (verdict.kind !== 'accept') return;
    if (verdict.input.linkNonce !== undefined) this.usedLinkNonces.push(verdict.input.linkNonce);
    this.accepted.push({
      token: verdict.token,
      approverId: verdict.input.approver.id,
      decision: verdict.input.decision,
      digest: verdict.input.digest,
      via: verdict.input.via ?? 'api',
    });
  }

  /** Keeps the edit assertion `token` as `editorId`'s approval of `digest`, the proposal policy made of their edit. */
  editApproved(digest: string, editorId: string, token: string): void {
    this.editApprovals.set(`${digest}\n${editorId}`, token);
  }

  /** Keeps the end user's assertion `token` as their confirmation of `digest`. */
  confirmed(digest: string, token: string): void {
    this.confirmations.set(digest, token);
  }

  /**
   * The assertions that prove the approval of `digest`, for the execution activity to verify:
   * the approvers' votes, the edits of `editors` that count as their votes, and the end user's
   * confirmation (never counted among the votes).
   */
  evidence(digest: string | undefined, editors: readonly string[]): { approvals: string[]; editApprovals?: string[]; confirmation?: string } {
    const approvals = this.accepted
      .filter((decision) => decision.decision === 'approve' && decision.digest === digest && decision.via !== 'end_user')
      .map((decision) => decision.token);
    const edits = editors.map((editorId) => this.editApprovals.get(`${digest}\n${editorId}`)).filter((token): token is string => token !== undefined);
    const confirmation = digest === undefined ? undefined : this.confirmations.get(digest);
    return { approvals, ...(edits.length > 0 ? { editApprovals: edits } : {}), ...(confirmation === undefined ? {} : { confirmation }) };
  }
}
