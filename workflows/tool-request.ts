/**
 * The toolRequest workflow: one agent tool call, from admission to outcome.
 *
 *   0. read the keys the worker trusts (local activity, recorded in the history) and verify the
 *      front door's signature on the request: a request toolgate's front door did not admit ends
 *      as `unverified_request` before policy sees it
 *   1. evaluate policy (local activity) → allow | deny | approve, sealed by the worker
 *   2. deny → structured denial
 *   3. approve → run the tool's dry-run preview when its manifest declares one (its answer goes
 *      into the proposal and the digest approvers sign), notify approvers, wait for decisions
 *      through the `decide` update, whose validator verifies the approval API's signed decision
 *      assertion; escalation tiers, reminders and expiry on durable timers; expiry denies; an
 *      edit is evaluated (and previewed) again and opens a new round
 *   4. execute the side effect once, under an idempotency key derived from the workflow id, with
 *      the evidence the execution activity checks again before it acts
 *
 * A linked request (a break-glass override of a denial, a rollback) runs this same flow; policy
 * decides it, and the person who asked for it is a requester, so a second person approves it.
 * Under a plan that accepts it, the end user's confirmation (channel `end_user`, relayed by the
 * front door) settles the round as approvers would, recorded apart from their votes.
 *
 * Deterministic code only: no I/O, no Node built-ins. Everything that touches the world is an
 * activity, so the workflow history is the replayable record of what was decided and done.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  metricMeter,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { createActivities } from '../activities/index.js';
// Values come only from the zod-free parts of the shared module: the worker evaluates the
// workflow bundle once per cached workflow, so every module it imports costs memory per request.
import {
  countedGroups,
  eligibleGroups,
  endUserDecline,
  isApprovalSatisfied,
  isConfirmedByEndUser,
  isRejected,
  refuseDecision,
} from '../src/shared/approval.js';
import { AssertionError, verifyRequestAssertion } from '../src/shared/assertions.js';
import { canonicalId } from '../src/shared/identity.js';
import {
  EXECUTION_BOUNDS,
  FailureTypes,
  HISTORY_BOUNDS,
  INBOX_VISIBILITY_PATCH,
  NON_RETRYABLE_TOOL_FAILURES,
  PREVIEW_BOUNDS,
  PREVIEW_PATCH,
  SHADOW_POLICY_PATCH,
  TRUST_BOUNDARY_PATCH,
  decideUpdate,
  isShadowDisagreement,
  killSignal,
  linkAttributeValue,
  refreshTrustSignal,
  searchAttributes,
  statusQuery,
  workflowIdFor,
} from '../src/shared/messages.js';
import type {
  ApprovalPlan,
  DecideInput,
  DecideUpdateInput,
  EditRecord,
  EndUserConfirmation,
  Evaluation,
  Execution,
  KillOrder,
  NotificationRecord,
  RequestState,
  RequestStatus,
  ToolOutcome,
  ToolRequest,
  ToolRequestStart,
} from '../src/shared/schemas.js';
import { notificationOutcome } from '../src/shared/outcome-details.js';
import { DecisionBook } from './decision-book.js';
import { legacyToolRequest } from './legacy/tool-request-v0.js';
import { UNKNOWN_TOOL_LABEL, UNVERIFIED_TENANT_LABEL, toolgateMetrics, type RequestMetricLabels } from './metrics.js';

type Activities = ReturnType<typeof createActivities>;

const { loadTrustAnchors, evaluatePolicy, recordPreviewFailure } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 milliseconds', nonRetryableErrorTypes: [FailureTypes.UnverifiedExecution] },
});

const { notifyApprovers } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second', backoffCoefficient: 2 },
});

/** Counts decisions refused without a record (unverifiable, or beyond the history bounds): they show in metrics and logs only. */
const unrecordedRefusals = metricMeter.createCounter(
  'toolgate_decisions_refused_unrecorded',
  'decisions',
  'Decisions refused by the workflow without a record in the history',
);

/** ISO timestamps; Date is deterministic inside workflows. */
const isoAt = (ms: number): string => new Date(ms).toISOString();

/** How the approval phase ended. */
type ApprovalEnd =
  { kind: 'approved' } | { kind: 'rejected'; by: string; reason?: string } | { kind: 'expired' } | { kind: 'reevaluated' } | { kind: 'killed' };

/**
 * Runs one tool request to its outcome. Runs started before the trust boundary (no patch marker
 * in their history) replay on the frozen legacy workflow, which refuses every new decision.
 */
export async function toolRequest(start: ToolRequestStart): Promise<ToolOutcome> {
  if (!patched(TRUST_BOUNDARY_PATCH)) return legacyToolRequest(start as unknown as ToolRequest);
  return gatedToolRequest(start);
}

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

async function gatedToolRequest(start: ToolRequestStart): Promise<ToolOutcome> {
  const info = workflowInfo();
  const { workflowId, runId } = info;
  const admitted = requestOf(start);
  let request: ToolRequest = admitted ?? {
    requestId: '',
    actor: { id: '', type: 'agent', roles: [] },
    tenant: '',
    environment: '',
    tool: '',
    args: {},
  };
  // Whoever asked for a linked request (an override, a rollback) is a requester too: the second person is someone else.
  const requesterIds = [request.actor.id, ...(request.onBehalfOf ?? []).map((principal) => principal.id), ...(request.link ? [request.link.by.id] : [])];
  /** The end user who may confirm under a plan that accepts it: the first principal the agent acts for. */
  const endUser = request.onBehalfOf?.[0] ? canonicalId(request.onBehalfOf[0].id) : undefined;
  const status: RequestStatus = {
    requestId: request.requestId,
    workflowId,
    state: 'evaluating',
    tenant: request.tenant,
    environment: request.environment,
    tool: request.tool,
    actor: request.actor,
    ...(request.onBehalfOf ? { onBehalfOf: request.onBehalfOf } : {}),
    reason: request.reason,
    traceId: request.traceId,
    tier: 0,
    eligibleGroups: [],
    approvals: [],
    refusals: [],
    refusalsDropped: 0,
    edits: [],
    notifications: [],
    ...(request.link ? { link: request.link } : {}),
  };
  /** The end user's answers (kept out of `status` until there is one, so statuses of other requests keep their shape). */
  const confirmations = (): EndUserConfirmation[] => (status.confirmations ??= []);
  // Runs started before visibility-only listing do not keep the waiting attributes.
  const inboxVisible = patched(INBOX_VISIBILITY_PATCH);
  /** Who may decide now, from what tier, until when, and who already voted: what "waiting for me" lists from. */
  const waitingAttributes = (): SearchAttributeUpdatePair[] => {
    if (!inboxVisible) return [];
    if (status.state !== 'pending_approval' || pendingDigest === undefined) {
      return [
        { key: searchAttributes.eligibleGroups, value: [] },
        { key: searchAttributes.voters, value: [] },
      ];
    }
    const digest = pendingDigest;
    const voters = [...new Set(status.approvals.filter((vote) => vote.digest === digest).map((vote) => vote.approverId))];
    return [
      { key: searchAttributes.eligibleGroups, value: [...status.eligibleGroups] },
      { key: searchAttributes.tier, value: status.tier },
      ...(status.expiresAt ? [{ key: searchAttributes.expiresAt, value: new Date(status.expiresAt) }] : []),
      { key: searchAttributes.voters, value: voters },
    ];
  };
  const setState = (state: RequestState): void => {
    status.state = state;
    upsertSearchAttributes([{ key: searchAttributes.status, value: state }, ...waitingAttributes()]);
    setCurrentDetails(currentDetails(status));
  };
  const book = new DecisionBook();
  /** The edit assertion behind each edit that counts as its editor's approval, by digest and editor: evidence for the execution. */
  const editApprovals = new Map<string, string>();
  /** The end user's confirmation assertion of each digest they confirmed (an approval, or the edit that produced it): evidence for the execution. */
  const confirmationTokens = new Map<string, string>();
  /** The digest decisions must carry right now; undefined whenever no decision may apply. */
  let pendingDigest: string | undefined;
  let pendingEdit: { input: DecideInput; record: EditRecord; token: string } | undefined;
  let trustRefreshWanted = false;
  let trustRefreshes = 0;

  setHandler(statusQuery, () => status);
  /** A kill order denies the request unless its side effect already started. */
  let killOrder: KillOrder | undefined;
  /** Read through a function: the signal handler changes it between awaits. */
  const killed = (): KillOrder | undefined => killOrder;
  setHandler(killSignal, (order) => {
    // Only a kill order's own fields are kept: the signal's input is nobody's to fill the status with.
    const fields = [order?.switchId, order?.reason, order?.by, order?.at];
    if (!fields.every((field) => typeof field === 'string')) return;
    if (killOrder || status.state === 'executing' || status.outcome) return;
    order = { switchId: order.switchId, reason: order.reason, by: order.by, at: order.at };
    killOrder = order;
    status.killedBy = order;
  });
  setHandler(refreshTrustSignal, () => {
    if (status.state === 'pending_approval' && trustRefreshes < HISTORY_BOUNDS.trustRefreshes) trustRefreshWanted = true;
  });
  const killDenial = (order: KillOrder): ToolOutcome => ({
    ...outcomeBase(),
    status: 'denied',
    code: 'kill_switch',
    reasons: [`a kill switch was turned on by ${order.by} at ${order.at}: ${order.reason}`],
  });

  const judge = (input: DecideUpdateInput) => {
    const plan = status.decision?.approval;
    return book.judge(input, {
      requestId: request.requestId,
      workflowId,
      runId,
      nowMs: Date.now(),
      refusals: status.refusals,
      ...(plan && pendingDigest !== undefined && status.state === 'pending_approval'
        ? {
            pending: {
              pending: true,
              tenant: request.tenant,
              requesterIds,
              digest: pendingDigest,
              plan,
              tier: status.tier,
              approvals: status.approvals,
              edits: status.edits.length,
              ...(endUser === undefined ? {} : { endUser }),
              ...(status.confirmations ? { confirmations: status.confirmations } : {}),
            },
          }
        : {}),
    });
  };
  /** Whether the proposal with `digest` is approved: by the approvers' quorum, or by the end user where the plan accepts them. */
  const roundApproved = (plan: ApprovalPlan, digest: string): boolean =>
    isApprovalSatisfied(plan, status.approvals, digest) || isConfirmedByEndUser(plan, status.confirmations, digest);
  /** Who ended the round on `digest` with a refusal: enough approvers, or the end user where the plan accepts them. */
  const roundRejection = (plan: ApprovalPlan, digest: string): { by: string; reason?: string } | undefined => {
    if (isRejected(plan, status.approvals, digest)) {
      const vote = status.approvals.find((v) => v.decision === 'reject' && v.digest === digest);
      if (vote) return { by: vote.approverId, ...(vote.reason === undefined ? {} : { reason: vote.reason }) };
    }
    const declined = endUserDecline(plan, status.confirmations, digest);
    return declined && { by: declined.principal, ...(declined.reason === undefined ? {} : { reason: declined.reason }) };
  };
  /** Closes the round as soon as a vote settles it, so no later vote in the same task can count. */
  const settleRound = (digest: string): void => {
    const plan = status.decision?.approval;
    if (plan && (roundApproved(plan, digest) || roundRejection(plan, digest) !== undefined)) pendingDigest = undefined;
  };

  setHandler(
    decideUpdate,
    async (input: DecideUpdateInput): Promise<RequestStatus> => {
      const verdict = judge(input);
      if (verdict.kind === 'refuse') {
        // Only on replay of a history written before a change of the rules; never silently apply.
        throw ApplicationFailure.nonRetryable(verdict.refusal.message, verdict.refusal.type);
      }
      book.apply(verdict);
      const decided = verdict.input;
      if (verdict.kind === 'record') {
        status.refusals.push({
          approverId: decided.approver.id,
          tenant: decided.approver.tenant,
          via: decided.via ?? 'api',
          decision: decided.decision,
          digest: decided.digest,
          code: verdict.refusal.type,
          message: verdict.refusal.message,
          at: isoAt(Date.now()),
        });
        throw ApplicationFailure.nonRetryable(verdict.refusal.message, verdict.refusal.type);
      }
      const plan = status.decision?.approval as ApprovalPlan;
      const digest = pendingDigest as string;
      if (decided.via === 'end_user') {
        // The end user's own answer through the agent framework: recorded apart from the votes.
        confirmations().push({
          principal: decided.approver.id,
          decision: decided.decision,
          digest,
          at: isoAt(Date.now()),
          ...(decided.reason === undefined ? {} : { reason: decided.reason }),
        });
        if (decided.decision !== 'edit') {
          if (decided.decision === 'approve') confirmationTokens.set(digest, verdict.token);
          settleRound(digest);
          return status;
        }
      }
      if (decided.decision === 'edit') {
        const record: EditRecord = {
          editorId: decided.approver.id,
          at: isoAt(Date.now()),
          fromDigest: digest,
          args: decided.args ?? {},
          ...(decided.reason === undefined ? {} : { reason: decided.reason }),
        };
        status.edits.push(record);
        pendingEdit = { input: decided, record, token: verdict.token };
        pendingDigest = undefined;
        // Answer once policy has judged the edit, so the editor sees the new digest or the denial.
        await condition(() => pendingEdit === undefined);
        return status;
      }
      status.approvals.push({
        approverId: decided.approver.id,
        groups: countedGroups(plan, status.tier, decided.approver),
        decision: decided.decision,
        digest,
        at: isoAt(Date.now()),
        tier: status.tier,
        via: decided.via ?? 'api',
        ...(decided.reason === undefined ? {} : { reason: decided.reason }),
      });
      if (inboxVisible) upsertSearchAttributes(waitingAttributes());
      settleRound(digest);
      return status;
    },
    {
      validator: (input: DecideUpdateInput): void => {
        const verdict = judge(input);
        if (verdict.kind !== 'refuse') return;
        // Not recorded in the history (a rejected update leaves no event): logs and metrics only.
        unrecordedRefusals.add(1, { code: verdict.refusal.type });
        log.warn('decision refused without a record', {
          code: verdict.refusal.type,
          reason: verdict.refusal.message,
          approver: verdict.claims?.sub,
          via: verdict.claims?.channel,
        });
        throw ApplicationFailure.nonRetryable(verdict.refusal.message, verdict.refusal.type);
      },
    },
  );

  const notifications: Promise<void>[] = [];
  /** Notifies approvers without waiting: a slow or failing notifier never blocks or approves a request. */
  const notify = (kind: NotificationRecord['kind'], groups: string[]): void => {
    status.notifications.push({ kind, tier: status.tier, groups, at: isoAt(Date.now()) });
    notifications.push(
      notifyApprovers({
        kind,
        tier: status.tier,
        groups,
        requestId: request.requestId,
        tenant: request.tenant,
        tool: request.tool,
        risk: status.decision?.risk ?? 'critical',
        actor: request.actor.id,
        ...(request.onBehalfOf ? { onBehalfOf: request.onBehalfOf } : {}),
        digest: status.digest ?? '',
        ...(status.expiresAt === undefined ? {} : { expiresAt: status.expiresAt }),
        environment: request.environment,
        ...(request.reason === undefined ? {} : { reason: request.reason }),
        // What an approver decides on; the notifier redacts it before anything is shortened. Not
        // repeated in the outcome message, so each request's history carries it a bounded number of times.
        ...(status.proposal && kind !== 'outcome' ? { args: status.proposal.args } : {}),
        // The dry-run preview approvers sign with the rest (already redacted and cut by the worker).
        ...(status.proposal?.preview && kind !== 'outcome' ? { preview: status.proposal.preview } : {}),
        ...(status.proposal?.provenance && kind !== 'outcome' ? { provenance: status.proposal.provenance } : {}),
        // A break-glass round and a linked request say so in every message (only then: other messages keep their shape).
        ...(status.decision?.override ? { override: status.decision.override } : {}),
        ...(request.link ? { requestLink: request.link } : {}),
        ...(status.outcome === undefined ? {} : { outcome: status.outcome.status, outcomeDetails: notificationOutcome(status.outcome) }),
      }).catch((err: unknown) => {
        if (!(err instanceof ActivityFailure)) throw err;
      }),
    );
  };

  let evaluation: Evaluation | undefined;
  const editors: string[] = [];
  /** Whether the front door's admission verified: only then is the request's tenant a metric label. */
  let admissionVerified = false;
  /** Metric labels from verified values only: a made-up tool or tenant must not grow the label space. */
  const metricLabels = (): RequestMetricLabels => ({
    tool: evaluation?.decision.toolDigest ? request.tool : UNKNOWN_TOOL_LABEL,
    tenant: admissionVerified ? request.tenant : UNVERIFIED_TENANT_LABEL,
  });
  const outcomeBase = () => ({
    requestId: request.requestId,
    workflowId,
    tool: request.tool,
    tenant: request.tenant,
    actor: request.actor,
    risk: evaluation?.decision.risk ?? 'critical',
    rule: evaluation?.decision.rule ?? 'check:request_assertion',
    policyDigest: evaluation?.decision.policyDigest ?? '',
    digest: evaluation?.digest,
    approvals: status.approvals,
    ...endUserAndOverride(),
  });
  /** The end user's confirmation of the current proposal and the break-glass grant, when there are: only then, so other outcomes keep their shape. */
  const endUserAndOverride = (): { confirmation?: EndUserConfirmation; override?: NonNullable<Evaluation['decision']['override']> } => {
    const digest = evaluation?.digest;
    const confirmed = digest === undefined ? undefined : status.confirmations?.find((answer) => answer.decision === 'approve' && answer.digest === digest);
    const override = evaluation?.decision.override;
    return { ...(confirmed ? { confirmation: confirmed } : {}), ...(override ? { override } : {}) };
  };
  const finish = async (outcome: ToolOutcome): Promise<ToolOutcome> => {
    toolgateMetrics.ended(metricLabels(), outcome.status, outcome.status === 'denied' ? { code: outcome.code, rule: outcome.rule } : undefined);
    status.outcome = outcome;
    setState(outcome.status);
    pendingEdit = undefined; // an edit still waiting for judgement gets its answer: the request is over
    pendingDigest = undefined;
    const override = evaluation?.decision.override;
    if (override) toolgateMetrics.overridden(metricLabels(), outcome.status);
    // Whoever heard of a break-glass round hears how it ended.
    const told = override ? [...new Set([...status.eligibleGroups, ...override.notify])] : status.eligibleGroups;
    if (status.notifications.length > 0) notify('outcome', told);
    await Promise.all(notifications);
    await condition(allHandlersFinished);
    return outcome;
  };

  // 0. Admission: only a request the front door signed for this workflow is evaluated at all.
  const anchors = await loadTrustAnchors();
  book.trust(anchors);
  try {
    if (!admitted) throw new AssertionError('malformed', 'the workflow input is not a tool request');
    if (workflowId !== workflowIdFor(request.tenant, request.requestId))
      throw new AssertionError('mismatch', 'the workflow id is not the one of this tenant and request id');
    // The time the server recorded the start, not the first workflow task's: a request that waited
    // out a worker outage was still admitted in time.
    verifyRequestAssertion(start.admission, request, anchors, { workflowId, startedAtMs: info.startTime.getTime() });
    admissionVerified = true;
  } catch (err) {
    log.warn('request refused: not admitted by the front door', { reason: (err as Error).message });
    toolgateMetrics.decided(metricLabels(), 'deny');
    return finish({
      ...outcomeBase(),
      status: 'denied',
      code: 'unverified_request',
      reasons: [`the request was not admitted by toolgate's front door: ${(err as Error).message}; nothing was evaluated or executed`],
    });
  }
  // The starter set these; they must say what was verified (scope checks and the UI read them).
  const attributes: SearchAttributeUpdatePair[] = [];
  const verifiedAttributes = [
    [searchAttributes.tenant, request.tenant],
    [searchAttributes.tool, request.tool],
    [searchAttributes.actor, request.actor.id],
  ] as const;
  for (const [key, value] of verifiedAttributes) if (info.typedSearchAttributes.get(key) !== value) attributes.push({ key, value });
  // A linked request (override, rollback) is found from its original through this attribute; only a signed link may set it.
  const link = request.link ? linkAttributeValue(request.link.kind, request.link.requestId) : undefined;
  if (info.typedSearchAttributes.get(searchAttributes.link) !== link) attributes.push({ key: searchAttributes.link, value: link ?? null });
  if (attributes.length > 0) upsertSearchAttributes(attributes);

  // 1. Policy. The worker checks the admission again with its own keys; if it refuses, nothing is evaluated.
  const admittedRequest = request;
  const refusedByWorker = (err: ActivityFailure): ToolOutcome => ({
    ...outcomeBase(),
    status: 'denied',
    code: 'unverified_request',
    reasons: [`the worker did not accept the request's evidence: ${err.cause?.message ?? err.message}; nothing was executed`],
  });
  /** Policy's evaluation of the request as it is now, or the outcome when the worker refused its evidence. */
  const evaluate = async (input: Omit<Parameters<typeof evaluatePolicy>[0], 'request' | 'workflowId'>): Promise<Evaluation | ToolOutcome> => {
    try {
      evaluation = await evaluatePolicy({ request, workflowId, ...input });
      return evaluation;
    } catch (err) {
      if (err instanceof ActivityFailure) return refusedByWorker(err);
      throw err;
    }
  };
  const first = await evaluate({ admission: start.admission });
  // Counted once, at the first decision: a re-evaluation after an edit is the same request.
  toolgateMetrics.decided(metricLabels(), 'status' in first ? 'deny' : first.decision.outcome);
  if ('status' in first) return finish(first);
  // The worker's shadow policy decided otherwise: listed for ops through visibility (a new command,
  // so behind its patch: runs recorded before it replay unchanged) and counted, once per request.
  // Nothing below reads the shadow decision: it never changes what is enforced.
  const shadowKind = first.shadow?.kind;
  if (first.decision.override) toolgateMetrics.overridden(metricLabels(), 'requested');
  if (isShadowDisagreement(shadowKind)) {
    if (patched(SHADOW_POLICY_PATCH)) upsertSearchAttributes([{ key: searchAttributes.shadowDisagreement, value: shadowKind }]);
    toolgateMetrics.shadowDisagreed(metricLabels(), shadowKind);
  }
  let evaluated: Evaluation = first;
  let editToken: string | undefined;

  for (;;) {
    const { decision } = evaluated;
    status.decision = decision;
    status.proposal = evaluated.proposal;
    status.digest = evaluated.digest;
    upsertSearchAttributes([{ key: searchAttributes.risk, value: decision.risk }]);

    const killedNow = killed();
    if (killedNow) return finish(killDenial(killedNow));
    if (decision.outcome === 'deny') {
      return finish({ ...outcomeBase(), status: 'denied', code: decision.code ?? 'rule_denied', reasons: decision.reasons });
    }
    if (decision.outcome === 'allow') break;

    const plan = decision.approval;
    if (!plan || !evaluated.digest) {
      return finish({ ...outcomeBase(), status: 'denied', code: 'policy_unavailable', reasons: ['approval plan missing from the decision'] });
    }
    const waitStartedAt = Date.now();
    let roundDigest: string = evaluated.digest;
    if (previewRuns(evaluated)) {
      // The tool's dry-run preview, before anyone is asked: its answer (or its failure) goes into
      // the proposal and the digest approvers sign. Expiry counts from now, and a kill order or
      // the expiry ends the request while the preview still runs.
      const expiresAt = waitStartedAt + plan.expiresAfterMs;
      status.expiresAt = isoAt(expiresAt);
      const previewed = await preview(evaluated, expiresAt);
      if ('status' in previewed) {
        // Killed or expired while the preview ran: the approval phase ended there.
        const killedOrExpired =
          previewed.status === 'expired' ? 'expired' : previewed.status === 'denied' && previewed.code === 'kill_switch' ? 'killed' : undefined;
        if (killedOrExpired) toolgateMetrics.approvalEnded(metricLabels(), killedOrExpired, (Date.now() - waitStartedAt) / 1000);
        return finish(previewed);
      }
      if (!previewed.digest)
        return finish({ ...outcomeBase(), status: 'denied', code: 'policy_unavailable', reasons: ['the previewed proposal has no digest'] });
      evaluated = previewed;
      evaluation = previewed;
      roundDigest = previewed.digest;
      status.proposal = previewed.proposal;
      status.digest = previewed.digest;
      const killedLater = killed();
      if (killedLater) return finish(killDenial(killedLater));
      if (Date.now() >= expiresAt) return finish({ ...outcomeBase(), status: 'expired', expiresAt: status.expiresAt });
    }
    const end = await awaitApprovals(plan, roundDigest, waitStartedAt);
    toolgateMetrics.approvalEnded(metricLabels(), end.kind, (Date.now() - waitStartedAt) / 1000);
    if (end.kind === 'killed') return finish(killDenial(killed() as KillOrder));
    if (end.kind === 'rejected') {
      return finish({ ...outcomeBase(), status: 'rejected', rejectedBy: end.by, ...(end.reason === undefined ? {} : { reason: end.reason }) });
    }
    if (end.kind === 'expired') return finish({ ...outcomeBase(), status: 'expired', expiresAt: status.expiresAt ?? '' });
    if (end.kind === 'approved') break;

    // An approver changed the arguments: policy judges the new proposal from scratch.
    const edit = pendingEdit as NonNullable<typeof pendingEdit>;
    editToken = edit.token;
    request = { ...request, args: edit.input.args ?? {} };
    const again = await evaluate({ admission: start.admission, edit: edit.token, admitted: admittedRequest });
    if ('status' in again) return finish(again);
    evaluated = again;
    edit.record.toDigest = evaluated.digest;
    editors.push(edit.input.approver.id);
    status.tier = 0;
    const newPlan = evaluated.decision.approval;
    // With a preview, the edited arguments are previewed again and nobody has seen that answer yet:
    // the edit then counts as nobody's approval, the editor too approves after reading it.
    if (evaluated.decision.outcome === 'approve' && newPlan && evaluated.digest && !previewRuns(evaluated)) {
      // The editor stands behind their edit: it counts as their approval where the new plan lets them approve.
      const byEndUser = edit.input.via === 'end_user';
      const refusal = refuseDecision(
        {
          pending: true,
          tenant: request.tenant,
          requesterIds,
          digest: evaluated.digest,
          plan: newPlan,
          tier: 0,
          approvals: status.approvals,
          ...(byEndUser && endUser !== undefined ? { endUser, confirmations: confirmations() } : {}),
        },
        { decision: 'approve', digest: evaluated.digest, approver: edit.input.approver, ...(byEndUser ? { via: 'end_user' as const } : {}) },
      );
      if (!refusal && byEndUser) {
        // The end user adjusted the call and so confirmed what they adjusted it to.
        confirmationTokens.set(evaluated.digest, edit.token);
        confirmations().push({
          principal: edit.input.approver.id,
          decision: 'approve',
          digest: evaluated.digest,
          at: isoAt(Date.now()),
          ...(edit.input.reason === undefined ? {} : { reason: edit.input.reason }),
        });
      } else if (!refusal) {
        editApprovals.set(`${evaluated.digest}\n${edit.input.approver.id}`, edit.token);
        status.approvals.push({
          approverId: edit.input.approver.id,
          groups: countedGroups(newPlan, 0, edit.input.approver),
          decision: 'approve',
          digest: evaluated.digest,
          at: isoAt(Date.now()),
          tier: 0,
          via: 'edit',
          ...(edit.input.reason === undefined ? {} : { reason: edit.input.reason }),
        });
      }
    }
    pendingEdit = undefined;
  }

  const killedLast = killed();
  if (killedLast) return finish(killDenial(killedLast));
  setState('executing');
  const approvedDigest = evaluated.digest;
  const approvals = book
    .decisions()
    .filter((decision) => decision.decision === 'approve' && decision.digest === approvedDigest && decision.via !== 'end_user')
    .map((decision) => decision.token);
  const confirmation = approvedDigest === undefined ? undefined : confirmationTokens.get(approvedDigest);
  const counted = status.approvals.filter((vote) => vote.via === 'edit' && vote.digest === approvedDigest);
  const editVotes = counted.map((vote) => editApprovals.get(`${approvedDigest}\n${vote.approverId}`)).filter((token): token is string => token !== undefined);
  return finish(
    await execute(request, evaluated, outcomeBase(), editors, {
      admission: start.admission,
      approvals,
      ...(editToken === undefined ? {} : { edit: editToken, admitted: admittedRequest }),
      ...(editVotes.length > 0 ? { editApprovals: editVotes } : {}),
      ...(confirmation === undefined ? {} : { confirmation }),
    }),
  );

  /**
   * Whether the tool's dry-run preview runs for this evaluation: policy asked for approval, the
   * tool declares a preview, and the run is of a workflow version that runs previews.
   */
  function previewRuns(candidate: Evaluation): boolean {
    return candidate.previewTimeoutMs !== undefined && candidate.decision.outcome === 'approve' && patched(PREVIEW_PATCH);
  }

  /**
   * Runs the preview activity for `sealed` (one attempt, bounded by the preview's timeout) and
   * returns the evaluation with the preview in its proposal, digested and sealed again by the
   * worker. When the activity gives no answer at all, a local activity seals that failure instead.
   * A kill order or the expiry (`expiresAt`) ends the wait at once, with the request's outcome.
   */
  async function preview(sealed: Evaluation, expiresAt: number): Promise<Evaluation | ToolOutcome> {
    const timeoutMs = Math.min(sealed.previewTimeoutMs ?? PREVIEW_BOUNDS.defaultTimeoutMs, PREVIEW_BOUNDS.maxTimeoutMs);
    const { previewTool } = proxyActivities<Activities>({
      startToCloseTimeout: timeoutMs + PREVIEW_BOUNDS.reportMs,
      scheduleToCloseTimeout: timeoutMs + PREVIEW_BOUNDS.pickUpMs,
      // One call, never retried: a preview must not be able to act, and a second try could.
      retry: { maximumAttempts: 1 },
    });
    const input = {
      request,
      admission: start.admission,
      ...(editToken === undefined ? {} : { edit: editToken, admitted: admittedRequest }),
      evaluation: sealed,
    };
    let answer: { evaluation: Evaluation } | { failure: ActivityFailure } | undefined;
    const scope = new CancellationScope();
    void scope.run(() =>
      previewTool(input).then(
        (evaluation) => {
          answer = { evaluation };
        },
        (err: unknown) => {
          // Cancelled below when nobody waits any more: nothing to record.
          if (isCancellation(err)) return;
          if (!(err instanceof ActivityFailure)) throw err;
          answer = { failure: err };
        },
      ),
    );
    const answered = await condition(() => answer !== undefined || killed() !== undefined, Math.max(1, expiresAt - Date.now()));
    const order = killed();
    if (order || !answered) {
      // Nobody waits for the preview any more; its answer would change nothing.
      scope.cancel();
      if (order) return killDenial(order);
      return { ...outcomeBase(), status: 'expired', expiresAt: status.expiresAt ?? isoAt(expiresAt) };
    }
    const got = answer as NonNullable<typeof answer>;
    if ('evaluation' in got) return got.evaluation;
    const cause = got.failure.cause;
    if (cause instanceof ApplicationFailure && cause.type === FailureTypes.UnverifiedExecution) return refusedByWorker(got.failure);
    try {
      return await recordPreviewFailure({ ...input, reason: cause instanceof TimeoutFailure ? 'timed_out' : 'failed' });
    } catch (err) {
      if (err instanceof ActivityFailure) return refusedByWorker(err);
      throw err;
    }
  }

  /** Waits until the plan is satisfied, rejected, expired, or an edit needs re-evaluation; expiry counts from `startedAt`. */
  async function awaitApprovals(plan: ApprovalPlan, digest: string, startedAt: number): Promise<ApprovalEnd> {
    const expiresAt = startedAt + plan.expiresAfterMs;
    status.expiresAt = isoAt(expiresAt);
    status.eligibleGroups = eligibleGroups(plan, status.tier);
    pendingDigest = digest;
    setState('pending_approval');
    notify('requested', status.eligibleGroups);
    // A break-glass round: the groups its rule names (security) always hear of it.
    const override = status.decision?.override;
    if (override) notify('override', override.notify);

    const rejection = () => roundRejection(plan, digest);
    const settled = (): boolean => killed() !== undefined || pendingEdit !== undefined || rejection() !== undefined || roundApproved(plan, digest);
    let reminders = 0;
    let nextReminder = plan.remindEveryMs ? startedAt + plan.remindEveryMs : Infinity;

    try {
      while (!settled()) {
        const next = plan.escalation[status.tier];
        const escalateAt = next ? startedAt + next.afterMs : Infinity;
        const wakeAt = Math.min(escalateAt, expiresAt, nextReminder);
        if (await condition(() => settled() || trustRefreshWanted, Math.max(1, wakeAt - Date.now()))) {
          if (!trustRefreshWanted) break;
          // After a key rotation: read the worker's trusted keys again (bounded per request).
          trustRefreshWanted = false;
          trustRefreshes += 1;
          book.trust(await loadTrustAnchors());
          continue;
        }
        const now = Date.now();
        if (now >= expiresAt) return { kind: 'expired' };
        if (next && now >= escalateAt) {
          status.tier += 1;
          status.eligibleGroups = eligibleGroups(plan, status.tier);
          if (inboxVisible) upsertSearchAttributes(waitingAttributes());
          notify('escalated', next.groups);
        }
        if (now >= nextReminder) {
          reminders += 1;
          notify('reminder', status.eligibleGroups);
          // Reminders are bounded so a long wait cannot grow the history without end.
          nextReminder = reminders < HISTORY_BOUNDS.reminders ? now + (plan.remindEveryMs ?? Infinity) : Infinity;
        }
      }
    } finally {
      pendingDigest = undefined;
    }
    if (killed()) return { kind: 'killed' };
    if (pendingEdit !== undefined) {
      setState('reevaluating');
      return { kind: 'reevaluated' };
    }
    const rejected = rejection();
    if (rejected) return { kind: 'rejected', ...rejected };
    return { kind: 'approved' };
  }
}

/** What the execution activity checks again before it acts: who admitted the request, who approved it, and the worker's seal on the evaluation. */
interface ExecutionEvidence {
  admission: string;
  approvals: string[];
  edit?: string;
  admitted?: ToolRequest;
  /** Edits that count as their editors' approvals of the final proposal. */
  editApprovals?: string[];
  /** The end user's confirmation of the final proposal (their approval, or the edit that produced it), under a plan that accepts them. */
  confirmation?: string;
}

type OutcomeBase = Omit<Extract<ToolOutcome, { status: 'completed' }>, 'status' | 'result' | 'args' | 'execution' | 'editedBy' | 'proposal'>;

async function execute(request: ToolRequest, evaluation: Evaluation, base: OutcomeBase, editors: string[], evidence: ExecutionEvidence): Promise<ToolOutcome> {
  const { decision } = evaluation;
  const runAs = decision.runAs ?? 'unknown';
  const { executeTool } = proxyActivities<Activities>({
    // The activity heartbeats every second: a worker that dies mid-call is noticed in seconds, and
    // the retry (idempotent tool) or outcome_unknown (non-idempotent) follows at once.
    heartbeatTimeout: EXECUTION_BOUNDS.heartbeatTimeoutMs,
    startToCloseTimeout: EXECUTION_BOUNDS.attemptTimeoutMs,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: 10,
      nonRetryableErrorTypes: NON_RETRYABLE_TOOL_FAILURES,
    },
  });
  const idempotencyKey = `toolgate:${base.workflowId}`;
  const startedAt = isoAt(Date.now());
  try {
    const done = await executeTool({
      requestId: request.requestId,
      tenant: request.tenant,
      tool: request.tool,
      args: request.args,
      runAs,
      idempotencyKey,
      traceId: request.traceId,
      evidence: { ...evidence, request, evaluation },
    });
    const execution: Execution = { runAs, idempotencyKey, startedAt, finishedAt: isoAt(Date.now()), attempts: done.attempts };
    return {
      ...base,
      status: 'completed',
      result: done.result,
      args: request.args,
      execution,
      ...(editors.length > 0 ? { editedBy: editors } : {}),
      ...(evaluation.proposal ? { proposal: evaluation.proposal } : {}),
      ...(done.egress ? { egress: done.egress } : {}),
      ...(done.withheld ? { withheld: done.withheld } : {}),
    };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause;
    const type = cause instanceof ApplicationFailure && cause.type ? cause.type : (cause?.name ?? 'ActivityFailure');
    const message = cause?.message ?? err.message;
    if (type === FailureTypes.KillSwitchActive) {
      return { ...base, status: 'denied', code: 'kill_switch', reasons: [message] };
    }
    if (type === FailureTypes.ManifestChanged) {
      // Nothing ran: what was approved is not what would run now.
      return { ...base, status: 'denied', code: 'manifest_changed', reasons: [message] };
    }
    const execution: Execution = { runAs, idempotencyKey, startedAt, finishedAt: isoAt(Date.now()), attempts: 0 };
    const known =
      type === FailureTypes.ToolRejected ||
      type === FailureTypes.ToolNotRegistered ||
      type === FailureTypes.ToolUnreachable ||
      type === FailureTypes.EgressRefused ||
      type === FailureTypes.UnverifiedExecution;
    return { ...base, status: known ? 'failed' : 'outcome_unknown', error: { type, message }, execution };
  }
}

/**
 * The Temporal UI's "current details" of a request: its state and, once it ended, how — so a
 * denied or expired request reads as what it is, not as a green "Completed". Names and codes
 * only, never arguments, reasons or tool messages. Shown by the UI, kept in no history event.
 */
function currentDetails(status: RequestStatus): string {
  const outcome = status.outcome;
  const lines = [`**${(outcome?.status ?? status.state).replace(/_/g, ' ').toUpperCase()}** ${status.tool} for ${status.tenant}`];
  if (status.decision) lines.push(`**Policy** ${status.decision.outcome} by ${status.decision.rule}, risk ${status.decision.risk}`);
  if (status.state === 'pending_approval') {
    lines.push(`**Waiting for** ${status.eligibleGroups.join(', ') || '(nobody)'} (tier ${status.tier}) until ${status.expiresAt ?? '?'}`);
  }
  if (outcome?.status === 'denied') lines.push(`**Denied** ${outcome.code}`);
  else if (outcome?.status === 'rejected') lines.push(`**Rejected by** ${outcome.rejectedBy}`);
  else if (outcome?.status === 'expired') lines.push(`**Expired** at ${outcome.expiresAt}, nothing ran`);
  else if (outcome?.status === 'failed') lines.push(`**Failed** ${outcome.error.type}: the tool did not act`);
  else if (outcome?.status === 'outcome_unknown') lines.push(`**Outcome unknown** ${outcome.error.type}: reconcile by hand`);
  else if (outcome?.status === 'completed')
    lines.push(`**Completed** as ${outcome.execution.runAs}${outcome.withheld ? `, result withheld (${outcome.withheld.code})` : ''}`);
  const approvals = status.approvals.filter((vote) => vote.decision === 'approve').map((vote) => vote.approverId);
  if (approvals.length > 0) lines.push(`**Approved by** ${[...new Set(approvals)].join(', ')}`);
  if (outcome?.confirmation) lines.push(`**Confirmed by the end user** ${outcome.confirmation.principal}`);
  if (status.link?.kind === 'override') lines.push(`**BREAK-GLASS override** of request ${status.link.requestId}, asked by ${status.link.by.id}`);
  else if (status.link?.kind === 'rollback') lines.push(`**Rollback** of request ${status.link.requestId}, asked by ${status.link.by.id}`);
  return lines.join('\n\n');
}
