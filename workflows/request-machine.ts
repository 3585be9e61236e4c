/**
 * The state of one tool request and its transitions, apart from Temporal: the toolRequest workflow
 * owns the commands (activities, timers, search attributes, notifications) and calls these
 * transitions from its script and its message handlers. Pure and deterministic: it reads no clock
 * (each transition that stamps or compares a time takes it) and imports nothing from
 * @temporalio/workflow, so unit tests drive it without a server. Nothing here may issue a command:
 * the workflow's command sequence is what replay checks.
 *
 * The request's decisions go through its DecisionBook (verified assertions, history bounds); the
 * machine applies what the book accepts to the status the `status` query serves.
 */
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { ApproverNotificationInput } from '../activities/notify.js';
import { countedGroups, eligibleGroups, refuseDecision, requesterIdsOf, type DecisionRefusal, type PendingApproval } from '../src/shared/approval.js';
import { AssertionError, verifyRequestAssertion, type TrustAnchors } from '../src/shared/assertions.js';
import { canonicalId } from '../src/shared/identity.js';
import { HISTORY_BOUNDS, workflowIdFor } from '../src/shared/messages.js';
import type { DecideInput, EditRecord, EndUserConfirmation, NotificationRecord } from '../src/shared/approver-decisions.js';
import type { ApprovalPlan, Evaluation } from '../src/shared/policy-decisions.js';
import type { KillOrder, RequestStatus, ToolOutcome } from '../src/shared/request-status.js';
import type { ToolRequest } from '../src/shared/requests.js';
import { ApprovalRound } from './approval-round.js';
import { DecisionBook, type Verdict } from './decision-book.js';
import type { ExecutionEvidence } from './execute.js';
import { approverNotification, waitingAttributes, type RequestView } from './request-views.js';

/** How a round of approval ended. */
export type ApprovalEnd =
  { kind: 'approved' } | { kind: 'rejected'; by: string; reason?: string } | { kind: 'expired' } | { kind: 'reevaluated' } | { kind: 'killed' };

/** What one applied decision did; the `decide` handler answers the update from it. */
export type DecideResult =
  /** Refused: fail the update with it (an authenticated approver's attempt is in `status.refusals` when the bounds allowed). */
  | { kind: 'refused'; refusal: DecisionRefusal }
  /** An approver's vote: `waiting` holds the waiting attributes as the vote left them (empty without inbox visibility). */
  | { kind: 'voted'; waiting: SearchAttributeUpdatePair[] }
  /** The end user's confirmation or refusal, recorded apart from the votes. */
  | { kind: 'confirmed' }
  /** An edit: answer once policy has judged it (`editPending` turns false). */
  | { kind: 'edited' };

/** What the machine needs from the run. */
export interface MachineOptions {
  workflowId: string;
  runId: string;
  /** Whether this run keeps the waiting attributes (the workflow's `patched(INBOX_VISIBILITY_PATCH)`). */
  inboxVisible: boolean;
  /**
   * Whether this run's workflow version runs previews (the workflow's `patched(PREVIEW_PATCH)`).
   * Called only where a preview would run, so the patch marker lands where it always did.
   */
  previews: () => boolean;
}

/** ISO timestamps. */
const isoAt = (ms: number): string => new Date(ms).toISOString();

/** The request from a start input, or undefined when it does not even have a request's shape (a raw client can send anything). */
function requestOf(start: unknown): ToolRequest | undefined {
  const request = (start as { request?: unknown } | null)?.request as Partial<ToolRequest> | undefined;
  if (request === null || typeof request !== 'object') return undefined;
  const strings = [request.requestId, request.tenant, request.environment, request.tool, request.actor?.id];
  if (!strings.every((value) => typeof value === 'string')) return undefined;
  if (!Array.isArray(request.actor?.roles) || request.args === null || typeof request.args !== 'object') return undefined;
  const chain: unknown = request.onBehalfOf;
  if (chain !== undefined && !(Array.isArray(chain) && chain.every((p) => typeof (p as { id?: unknown } | null)?.id === 'string'))) return undefined;
  return request as ToolRequest;
}

/** One tool request: its status, the round open now, and the evidence its execution will carry. */
export class RequestMachine implements RequestView {
  /** What the `status` query serves. */
  readonly status: RequestStatus;
  /** The request as it stands (an edit changes its arguments). */
  request: ToolRequest;
  /** The request as the front door admitted it. */
  readonly admitted: ToolRequest;
  /** Policy's latest evaluation (with the preview in its proposal once one ran). */
  evaluation?: Evaluation;
  /** Whether the front door's admission verified: only then is the request's tenant worth a metric label. */
  admissionVerified = false;
  /** Who changed the arguments, in order. */
  readonly editors: string[] = [];
  /** Whether the run keeps the waiting attributes (runs from before the inbox patch do not). */
  readonly inboxVisible: boolean;
  private readonly wellFormed: boolean;
  private readonly book = new DecisionBook();
  /** Whoever asked for a linked request (an override, a rollback) is a requester too: the second person is someone else. */
  private readonly requesterIds: string[];
  /** The end user who may confirm under a plan that accepts it: the first principal the agent acts for. */
  private readonly endUser?: string;
  /** The digest decisions must carry right now; undefined whenever no decision may apply. */
  private openDigest?: string;
  private pendingEdit?: { input: DecideInput; record: EditRecord; token: string };
  private editToken?: string;
  private killOrder?: KillOrder;
  private refreshWanted = false;
  private trustRefreshes = 0;
  private round?: ApprovalRound;

  constructor(
    start: unknown,
    private readonly options: MachineOptions,
  ) {
    const request = requestOf(start);
    this.wellFormed = request !== undefined;
    this.inboxVisible = options.inboxVisible;
    this.request = this.admitted = request ?? { requestId: '', actor: { id: '', type: 'agent', roles: [] }, tenant: '', environment: '', tool: '', args: {} };
    const { requestId, tenant, environment, tool, actor, onBehalfOf, reason, traceId, link } = this.request;
    this.requesterIds = requesterIdsOf(this.request);
    this.endUser = onBehalfOf?.[0] ? canonicalId(onBehalfOf[0].id) : undefined;
    this.status = {
      requestId,
      workflowId: options.workflowId,
      state: 'evaluating',
      tenant,
      environment,
      tool,
      actor,
      ...(onBehalfOf ? { onBehalfOf } : {}),
      reason,
      traceId,
      tier: 0,
      eligibleGroups: [],
      approvals: [],
      refusals: [],
      refusalsDropped: 0,
      edits: [],
      notifications: [],
      ...(link ? { link } : {}),
    };
  }

  // ---- 0. admission -------------------------------------------------------------------------

  /** Sets the keys the request trusts (from the worker, recorded in the history). */
  trust(anchors: TrustAnchors): void {
    this.book.trust(anchors);
  }

  /** Checks the front door's admission of this request; returns why it does not hold, or undefined when it does. */
  admit(admission: string, anchors: TrustAnchors, startedAtMs: number): string | undefined {
    try {
      if (!this.wellFormed) throw new AssertionError('malformed', 'the workflow input is not a tool request');
      if (this.options.workflowId !== workflowIdFor(this.request.tenant, this.request.requestId))
        throw new AssertionError('mismatch', 'the workflow id is not the one of this tenant and request id');
      verifyRequestAssertion(admission, this.request, anchors, { workflowId: this.options.workflowId, startedAtMs });
      this.admissionVerified = true;
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  // ---- 1. policy and preview ----------------------------------------------------------------

  /** Policy judged the request (first, or again after an edit): its decision and proposal are what the status shows. */
  evaluated(evaluation: Evaluation): Evaluation {
    this.evaluation = evaluation;
    this.status.decision = evaluation.decision;
    this.status.proposal = evaluation.proposal;
    this.status.digest = evaluation.digest;
    return evaluation;
  }

  /** Whether the tool's dry-run preview runs for `evaluation`: policy asked for approval, the tool declares one, the run's version runs them. */
  previewRuns(evaluation: Evaluation): boolean {
    return evaluation.previewTimeoutMs !== undefined && evaluation.decision.outcome === 'approve' && this.options.previews();
  }

  /** The approval phase starts at `startedAt` (before a preview, if one runs); returns when it expires. */
  waitStarted(plan: ApprovalPlan, startedAt: number): number {
    const expiresAt = startedAt + plan.expiresAfterMs;
    this.status.expiresAt = isoAt(expiresAt);
    return expiresAt;
  }

  /** The preview answered: the previewed proposal, sealed again by the worker, is what approvers sign. */
  previewed(evaluation: Evaluation): void {
    this.evaluation = evaluation;
    this.status.proposal = evaluation.proposal;
    this.status.digest = evaluation.digest;
  }

  /** The edit's evidence, for policy, the preview and the execution: none until an edit was taken. */
  editEvidence(): { edit: string; admitted: ToolRequest } | Record<string, never> {
    return this.editToken === undefined ? {} : { edit: this.editToken, admitted: this.admitted };
  }

  // ---- 3. approval rounds -------------------------------------------------------------------

  /** Opens the round on `digest`: who may decide, until when. Expiry counts from `startedAt`. */
  roundOpened(plan: ApprovalPlan, digest: string, startedAt: number): void {
    this.round = new ApprovalRound(plan, digest, startedAt);
    this.waitStarted(plan, startedAt);
    this.status.eligibleGroups = eligibleGroups(plan, this.status.tier);
    this.openDigest = digest;
    this.status.state = 'pending_approval';
  }

  /** Whether the open round is over: killed, edited, rejected or approved. */
  roundSettled(): boolean {
    const { round, status } = this;
    if (this.killOrder !== undefined || this.pendingEdit !== undefined) return true;
    return round !== undefined && (round.rejection(status) !== undefined || round.approved(status));
  }

  /** When the round's clock next needs the workflow: the next escalation, reminder or the expiry. */
  wakeAt(): number {
    return (this.round as ApprovalRound).wakeAt(this.status.tier);
  }

  /** Whether the round has expired at `now`. */
  isExpired(now: number): boolean {
    return (this.round as ApprovalRound).isExpired(now);
  }

  /** Escalates to the next tier when its time has come; returns the groups it adds, to notify. */
  escalate(now: number): string[] | undefined {
    const round = this.round as ApprovalRound;
    const next = round.escalationDue(this.status.tier, now);
    if (!next) return undefined;
    this.status.tier += 1;
    this.status.eligibleGroups = eligibleGroups(round.plan, this.status.tier);
    return next.groups;
  }

  /** Whether a reminder is due at `now`; returns the groups to remind (bounded per round). */
  remind(now: number): string[] | undefined {
    return (this.round as ApprovalRound).reminderDue(now) ? this.status.eligibleGroups : undefined;
  }

  /** Closes the round to decisions (whatever ended it). */
  roundClosed(): void {
    this.openDigest = undefined;
  }

  /** How the closed round ended, unless it expired; an edit puts the request in `reevaluating`. */
  roundEnd(): ApprovalEnd {
    if (this.killOrder) return { kind: 'killed' };
    if (this.pendingEdit !== undefined) {
      this.status.state = 'reevaluating';
      return { kind: 'reevaluated' };
    }
    const rejected = (this.round as ApprovalRound).rejection(this.status);
    return rejected ? { kind: 'rejected', ...rejected } : { kind: 'approved' };
  }

  // ---- decisions (the `decide` update) --------------------------------------------------------

  /** The book's verdict on an update's input at `now` (the validator's check; `decide` applies it). */
  judge(input: unknown, now: number): Verdict {
    const plan = this.status.decision?.approval;
    const { requestId } = this.request;
    return this.book.judge(input, {
      requestId,
      workflowId: this.options.workflowId,
      runId: this.options.runId,
      nowMs: now,
      refusals: this.status.refusals,
      ...(plan && this.openDigest !== undefined && this.status.state === 'pending_approval'
        ? { pending: this.pendingOn(this.openDigest, plan, this.status.tier) }
        : {}),
    });
  }

  /** Applies an update's decision at `now`: a vote, the end user's answer, an edit, or a refusal (recorded within the bounds). */
  decide(input: unknown, now: number): DecideResult {
    const verdict = this.judge(input, now);
    // `refuse` here only on replay of a history written before a change of the rules: never silently apply.
    if (verdict.kind === 'refuse') return { kind: 'refused', refusal: verdict.refusal };
    this.book.apply(verdict);
    const decided = verdict.input;
    const at = isoAt(now);
    const reason = decided.reason === undefined ? {} : { reason: decided.reason };
    if (verdict.kind === 'record') {
      const { approver, via, decision, digest } = decided;
      const { type: code, message } = verdict.refusal;
      this.status.refusals.push({ approverId: approver.id, tenant: approver.tenant, via: via ?? 'api', decision, digest, code, message, at });
      return { kind: 'refused', refusal: verdict.refusal };
    }
    const plan = this.status.decision?.approval as ApprovalPlan;
    const digest = this.openDigest as string;
    if (decided.via === 'end_user') {
      // The end user's own answer through the agent framework: recorded apart from the votes.
      this.confirmations().push({ principal: decided.approver.id, decision: decided.decision, digest, at, ...reason });
      if (decided.decision !== 'edit') {
        if (decided.decision === 'approve') this.book.confirmed(digest, verdict.token);
        this.settleRound();
        return { kind: 'confirmed' };
      }
    }
    if (decided.decision === 'edit') {
      const record: EditRecord = { editorId: decided.approver.id, at, fromDigest: digest, args: decided.args ?? {}, ...reason };
      this.status.edits.push(record);
      this.pendingEdit = { input: decided, record, token: verdict.token };
      this.openDigest = undefined;
      return { kind: 'edited' };
    }
    const { tier } = this.status;
    const groups = countedGroups(plan, tier, decided.approver);
    this.status.approvals.push({ approverId: decided.approver.id, groups, decision: decided.decision, digest, at, tier, via: decided.via ?? 'api', ...reason });
    const waiting = waitingAttributes(this);
    this.settleRound();
    return { kind: 'voted', waiting };
  }

  /** Whether an edit waits for policy's judgement (its update waits too). */
  get editPending(): boolean {
    return this.pendingEdit !== undefined;
  }

  /** Takes the waiting edit: the request now has the edited arguments, for policy to judge from scratch. */
  takeEdit(): void {
    const edit = this.pendingEdit as NonNullable<RequestMachine['pendingEdit']>;
    this.editToken = edit.token;
    this.request = { ...this.request, args: edit.input.args ?? {} };
  }

  /**
   * Policy judged the edited request (`evaluated` first): a new round starts at tier 0, and the
   * editor's edit counts as their approval where the new plan lets them approve — unless a
   * preview runs, whose answer nobody has read yet. Answers the edit's update.
   */
  edited(now: number): void {
    const edit = this.pendingEdit as NonNullable<RequestMachine['pendingEdit']>;
    const evaluation = this.evaluation as Evaluation;
    edit.record.toDigest = evaluation.digest;
    this.editors.push(edit.input.approver.id);
    this.status.tier = 0;
    const plan = evaluation.decision.approval;
    const digest = evaluation.digest;
    if (evaluation.decision.outcome === 'approve' && plan && digest && !this.previewRuns(evaluation)) {
      const { approver, reason } = edit.input;
      const byEndUser = edit.input.via === 'end_user';
      const refusal = refuseDecision(this.pendingOn(digest, plan, 0), {
        decision: 'approve',
        digest,
        approver,
        ...(byEndUser ? { via: 'end_user' as const } : {}),
      });
      const because = reason === undefined ? {} : { reason };
      if (!refusal && byEndUser) {
        // The end user adjusted the call and so confirmed what they adjusted it to.
        this.book.confirmed(digest, edit.token);
        this.confirmations().push({ principal: approver.id, decision: 'approve', digest, at: isoAt(now), ...because });
      } else if (!refusal) {
        this.book.editApproved(digest, approver.id, edit.token);
        const groups = countedGroups(plan, 0, approver);
        this.status.approvals.push({ approverId: approver.id, groups, decision: 'approve', digest, at: isoAt(now), tier: 0, via: 'edit', ...because });
      }
    }
    this.pendingEdit = undefined;
  }

  // ---- kill switch and trust refresh (signals) ------------------------------------------------

  /** A kill order denies the request unless its side effect already started. Only a kill order's own fields are kept. */
  kill(order: unknown): void {
    const { switchId, reason, by, at } = (order ?? {}) as Partial<KillOrder>;
    if (![switchId, reason, by, at].every((field) => typeof field === 'string')) return;
    if (this.killOrder || this.status.state === 'executing' || this.status.outcome) return;
    this.killOrder = { switchId, reason, by, at } as KillOrder;
    this.status.killedBy = this.killOrder;
  }

  /** The digest decisions must carry right now; undefined whenever no decision may apply. */
  get pendingDigest(): string | undefined {
    return this.openDigest;
  }

  /** The kill order that stopped the request, if one did. */
  get killed(): KillOrder | undefined {
    return this.killOrder;
  }

  /** After a key rotation: re-read the worker's trusted keys while the request waits (bounded per request). */
  wantTrustRefresh(): void {
    if (this.status.state === 'pending_approval' && this.trustRefreshes < HISTORY_BOUNDS.trustRefreshes) this.refreshWanted = true;
  }

  /** Whether a re-read of the trusted keys was asked for. */
  get trustRefreshWanted(): boolean {
    return this.refreshWanted;
  }

  /** The re-read starts (counted now, so a signal during it asks again). */
  refreshingTrust(): void {
    this.refreshWanted = false;
    this.trustRefreshes += 1;
  }

  // ---- 4. execution and the end -------------------------------------------------------------

  /** The side effect starts: from now on no kill order applies. */
  executing(): void {
    this.status.state = 'executing';
  }

  /** The evidence of the approved proposal: the approvers' assertions, edits that count as approvals, the end user's confirmation. */
  evidence(admission: string): ExecutionEvidence {
    const digest = this.evaluation?.digest;
    const editors = this.status.approvals.filter((vote) => vote.via === 'edit' && vote.digest === digest).map((vote) => vote.approverId);
    const { approvals, ...approvedBy } = this.book.evidence(digest, editors);
    return { admission, approvals, ...this.editEvidence(), ...approvedBy };
  }

  /** The request ended with `outcome`; returns who hears of it (undefined when nobody was notified before). */
  finished(outcome: ToolOutcome): string[] | undefined {
    this.status.outcome = outcome;
    this.status.state = outcome.status;
    this.pendingEdit = undefined; // an edit still waiting for judgement gets its answer: the request is over
    this.openDigest = undefined;
    const override = this.evaluation?.decision.override;
    // Whoever heard of a break-glass round hears how it ended.
    const told = override ? [...new Set([...this.status.eligibleGroups, ...override.notify])] : this.status.eligibleGroups;
    return this.status.notifications.length > 0 ? told : undefined;
  }

  /** Records a notification to `groups` at `now` and returns what the notifier sends them. */
  notification(kind: NotificationRecord['kind'], groups: string[], now: number): ApproverNotificationInput {
    this.status.notifications.push({ kind, tier: this.status.tier, groups, at: isoAt(now) });
    return approverNotification(this, kind, groups);
  }

  /** The end user's answers (kept out of `status` until there is one, so statuses of other requests keep their shape). */
  private confirmations(): EndUserConfirmation[] {
    return (this.status.confirmations ??= []);
  }

  /** The round on `digest` as the approval rules judge a decision on it. */
  private pendingOn(digest: string, plan: ApprovalPlan, tier: number): Omit<PendingApproval, 'usedLinkNonces'> {
    return {
      pending: true,
      tenant: this.request.tenant,
      requesterIds: this.requesterIds,
      digest,
      plan,
      tier,
      approvals: this.status.approvals,
      edits: this.status.edits.length,
      ...(this.endUser === undefined ? {} : { endUser: this.endUser }),
      ...(this.status.confirmations ? { confirmations: this.status.confirmations } : {}),
    };
  }

  /** Closes the round as soon as a decision settles it, so no later decision in the same task can count. */
  private settleRound(): void {
    const { round, status } = this;
    if (round && (round.approved(status) || round.rejection(status) !== undefined)) this.openDigest = undefined;
  }
}
