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
 *      the evidence the execution activity checks again before it acts (workflows/execute.ts)
 *
 * A linked request (a break-glass override of a denial, a rollback) runs this same flow; policy
 * decides it, and the person who asked for it is a requester, so a second person approves it.
 * Under a plan that accepts it, the end user's confirmation (channel `end_user`, relayed by the
 * front door) settles the round as approvers would, recorded apart from their votes.
 *
 * This file is the script of that flow and owns its commands (activities, timers, search
 * attributes, patches); the request's state and its transitions are the RequestMachine's
 * (workflows/request-machine.ts), which the script and the message handlers drive. Changing the
 * order of the commands here changes what replay expects: such a change goes behind patched().
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
import type { createActivities } from '../activities/index.js';
import {
  FailureTypes,
  INBOX_VISIBILITY_PATCH,
  PREVIEW_BOUNDS,
  PREVIEW_PATCH,
  SHADOW_POLICY_PATCH,
  TRUST_BOUNDARY_PATCH,
  decideUpdate,
  isShadowDisagreement,
  killSignal,
  refreshTrustSignal,
  searchAttributes,
  statusQuery,
} from '../src/shared/messages.js';
import type { NotificationRecord } from '../src/shared/approver-decisions.js';
import type { ApprovalPlan, Evaluation } from '../src/shared/policy-decisions.js';
import type { RequestStatus, ToolOutcome } from '../src/shared/request-status.js';
import type { ToolRequest, ToolRequestStart } from '../src/shared/requests.js';
import { asActivityFailure } from './activity-failures.js';
import { execute } from './execute.js';
import { legacyToolRequest } from './legacy/tool-request-v0.js';
import { UNKNOWN_TOOL_LABEL, UNVERIFIED_TENANT_LABEL, toolgateMetrics, type RequestMetricLabels } from './metrics.js';
import { RequestMachine, type ApprovalEnd } from './request-machine.js';
import {
  currentDetails,
  deniedOutcome,
  expiredOutcome,
  killedOutcome,
  outcomeBase,
  rejectedOutcome,
  stateAttributes,
  unadmittedOutcome,
  verifiedAttributes,
  waitingAttributes,
  workerRefusalOutcome,
} from './request-views.js';

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

/**
 * Runs one tool request to its outcome. Runs started before the trust boundary (no patch marker
 * in their history) replay on the frozen legacy workflow, which refuses every new decision.
 */
export async function toolRequest(start: ToolRequestStart): Promise<ToolOutcome> {
  if (!patched(TRUST_BOUNDARY_PATCH)) return legacyToolRequest(start as unknown as ToolRequest);
  return gatedToolRequest(start);
}

async function gatedToolRequest(start: ToolRequestStart): Promise<ToolOutcome> {
  const info = workflowInfo();
  const { workflowId, runId } = info;
  // Runs started before visibility-only listing do not keep the waiting attributes.
  const m = new RequestMachine(start, { workflowId, runId, inboxVisible: patched(INBOX_VISIBILITY_PATCH), previews: () => patched(PREVIEW_PATCH) });
  /** Shows a change of state: the status search attributes and the Temporal UI's current details. */
  const publish = (): void => {
    upsertSearchAttributes(stateAttributes(m));
    setCurrentDetails(currentDetails(m.status));
  };
  const publishWaiting = (): void => {
    const waiting = waitingAttributes(m);
    if (waiting.length > 0) upsertSearchAttributes(waiting);
  };

  setHandler(statusQuery, () => m.status);
  setHandler(killSignal, (order) => m.kill(order));
  setHandler(refreshTrustSignal, () => m.wantTrustRefresh());
  setHandler(
    decideUpdate,
    async (input): Promise<RequestStatus> => {
      const result = m.decide(input, Date.now());
      if (result.kind === 'refused') throw ApplicationFailure.nonRetryable(result.refusal.message, result.refusal.type);
      if (result.kind === 'voted' && result.waiting.length > 0) upsertSearchAttributes(result.waiting);
      // An edit is answered once policy has judged it, so the editor sees the new digest or the denial.
      if (result.kind === 'edited') await condition(() => !m.editPending);
      return m.status;
    },
    {
      validator: (input): void => {
        const verdict = m.judge(input, Date.now());
        if (verdict.kind !== 'refuse') return;
        // Not recorded in the history (a rejected update leaves no event): logs and metrics only.
        unrecordedRefusals.add(1, { code: verdict.refusal.type });
        const { claims, refusal } = verdict;
        log.warn('decision refused without a record', { code: refusal.type, reason: refusal.message, approver: claims?.sub, via: claims?.channel });
        throw ApplicationFailure.nonRetryable(refusal.message, refusal.type);
      },
    },
  );

  const notifications: Promise<void>[] = [];
  /** Notifies approvers without waiting: a slow or failing notifier never blocks or approves a request. */
  const notify = (kind: NotificationRecord['kind'], groups: string[]): void => {
    const sent = notifyApprovers(m.notification(kind, groups, Date.now()));
    notifications.push(
      sent.catch((err: unknown) => {
        if (!(err instanceof ActivityFailure)) throw err;
      }),
    );
  };
  /** Metric labels from verified values only: a made-up tool or tenant must not grow the label space. */
  const labels = (): RequestMetricLabels => ({
    tool: m.evaluation?.decision.toolDigest ? m.request.tool : UNKNOWN_TOOL_LABEL,
    tenant: m.admissionVerified ? m.request.tenant : UNVERIFIED_TENANT_LABEL,
  });
  const finish = async (outcome: ToolOutcome): Promise<ToolOutcome> => {
    toolgateMetrics.ended(labels(), outcome.status, outcome.status === 'denied' ? { code: outcome.code, rule: outcome.rule } : undefined);
    const told = m.finished(outcome);
    publish();
    if (m.evaluation?.decision.override) toolgateMetrics.overridden(labels(), outcome.status);
    if (told) notify('outcome', told);
    await Promise.all(notifications);
    await condition(allHandlersFinished);
    return outcome;
  };
  const refusedByWorker = (err: ActivityFailure): ToolOutcome => workerRefusalOutcome(m, err.cause?.message ?? err.message);

  // 0. Admission: only a request the front door signed for this workflow is evaluated at all.
  const anchors = await loadTrustAnchors();
  m.trust(anchors);
  // The time the server recorded the start, not the first workflow task's: a request that waited
  // out a worker outage was still admitted in time.
  const unadmitted = m.admit(start.admission, anchors, info.startTime.getTime());
  if (unadmitted !== undefined) {
    log.warn('request refused: not admitted by the front door', { reason: unadmitted });
    toolgateMetrics.decided(labels(), 'deny');
    return finish(unadmittedOutcome(m, unadmitted));
  }
  // The starter set these; they must say what was verified (scope checks and the UI read them).
  const attributes = verifiedAttributes(m.request, info.typedSearchAttributes);
  if (attributes.length > 0) upsertSearchAttributes(attributes);

  // 1. Policy. The worker checks the admission again with its own keys; if it refuses, nothing is evaluated.
  /** Policy's evaluation of the request as it is now, or the outcome when the worker refused its evidence. */
  const evaluate = async (): Promise<Evaluation | ToolOutcome> => {
    try {
      return m.evaluated(await evaluatePolicy({ request: m.request, workflowId, admission: start.admission, ...m.editEvidence() }));
    } catch (err) {
      const failure = asActivityFailure(err, 'evaluatePolicy');
      if (failure) return refusedByWorker(failure);
      throw err;
    }
  };
  const first = await evaluate();
  // Counted once, at the first decision: a re-evaluation after an edit is the same request.
  toolgateMetrics.decided(labels(), 'status' in first ? 'deny' : first.decision.outcome);
  if ('status' in first) return finish(first);
  // The worker's shadow policy decided otherwise: listed for ops through visibility (a new command,
  // so behind its patch: runs recorded before it replay unchanged) and counted, once per request.
  // Nothing below reads the shadow decision: it never changes what is enforced.
  const shadowKind = first.shadow?.kind;
  if (first.decision.override) toolgateMetrics.overridden(labels(), 'requested');
  if (isShadowDisagreement(shadowKind)) {
    if (patched(SHADOW_POLICY_PATCH)) upsertSearchAttributes([{ key: searchAttributes.shadowDisagreement, value: shadowKind }]);
    toolgateMetrics.shadowDisagreed(labels(), shadowKind);
  }

  for (;;) {
    const evaluated = m.evaluation as Evaluation;
    const { decision } = evaluated;
    upsertSearchAttributes([{ key: searchAttributes.risk, value: decision.risk }]);

    // 2. Deny (a kill order denies too); allow goes straight to execution.
    if (m.killed) return finish(killedOutcome(m));
    if (decision.outcome === 'deny') return finish(deniedOutcome(m, decision.code ?? 'rule_denied', decision.reasons));
    if (decision.outcome === 'allow') break;

    // 3. Approval: the preview first when the tool declares one, then a round of decisions.
    const plan = decision.approval;
    if (!plan || !evaluated.digest) return finish(deniedOutcome(m, 'policy_unavailable', ['approval plan missing from the decision']));
    const waitStartedAt = Date.now();
    let roundDigest: string = evaluated.digest;
    if (m.previewRuns(evaluated)) {
      // Its answer (or its failure) goes into the proposal and the digest approvers sign. Expiry
      // counts from now, and a kill order or the expiry ends the request while the preview still runs.
      const expiresAt = m.waitStarted(plan, waitStartedAt);
      const previewed = await preview(evaluated, expiresAt);
      if ('status' in previewed) {
        // Killed or expired while the preview ran: the approval phase ended there.
        const killedOrExpired =
          previewed.status === 'expired' ? 'expired' : previewed.status === 'denied' && previewed.code === 'kill_switch' ? 'killed' : undefined;
        if (killedOrExpired) toolgateMetrics.approvalEnded(labels(), killedOrExpired, (Date.now() - waitStartedAt) / 1000);
        return finish(previewed);
      }
      if (!previewed.digest) return finish(deniedOutcome(m, 'policy_unavailable', ['the previewed proposal has no digest']));
      m.previewed(previewed);
      roundDigest = previewed.digest;
      if (m.killed) return finish(killedOutcome(m));
      if (Date.now() >= expiresAt) return finish(expiredOutcome(m));
    }
    const end = await awaitApprovals(plan, roundDigest, waitStartedAt);
    toolgateMetrics.approvalEnded(labels(), end.kind, (Date.now() - waitStartedAt) / 1000);
    if (end.kind === 'killed') return finish(killedOutcome(m));
    if (end.kind === 'rejected') return finish(rejectedOutcome(m, end.by, end.reason));
    if (end.kind === 'expired') return finish(expiredOutcome(m));
    if (end.kind === 'approved') break;

    // An approver changed the arguments: policy judges the new proposal from scratch.
    m.takeEdit();
    const again = await evaluate();
    if ('status' in again) return finish(again);
    m.edited(Date.now());
  }

  // 4. Execute, unless a kill order came first.
  if (m.killed) return finish(killedOutcome(m));
  m.executing();
  publish();
  return finish(await execute(m.request, m.evaluation as Evaluation, outcomeBase(m), m.editors, m.evidence(start.admission)));

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
    const input = { request: m.request, admission: start.admission, ...m.editEvidence(), evaluation: sealed };
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
    const answered = await condition(() => answer !== undefined || m.killed !== undefined, Math.max(1, expiresAt - Date.now()));
    if (m.killed || !answered) {
      // Nobody waits for the preview any more; its answer would change nothing.
      scope.cancel();
      return m.killed ? killedOutcome(m) : expiredOutcome(m);
    }
    const got = answer as NonNullable<typeof answer>;
    if ('evaluation' in got) return got.evaluation;
    const cause = got.failure.cause;
    if (cause instanceof ApplicationFailure && cause.type === FailureTypes.UnverifiedExecution) return refusedByWorker(got.failure);
    try {
      return await recordPreviewFailure({ ...input, reason: cause instanceof TimeoutFailure ? 'timed_out' : 'failed' });
    } catch (err) {
      const failure = asActivityFailure(err, 'recordPreviewFailure');
      if (failure) return refusedByWorker(failure);
      throw err;
    }
  }

  /** Waits until the round on `digest` is approved, rejected, expired, killed, or an edit needs judging; expiry counts from `startedAt`. */
  async function awaitApprovals(plan: ApprovalPlan, digest: string, startedAt: number): Promise<ApprovalEnd> {
    m.roundOpened(plan, digest, startedAt);
    publish();
    notify('requested', m.status.eligibleGroups);
    // A break-glass round: the groups its rule names (security) always hear of it.
    const override = m.status.decision?.override;
    if (override) notify('override', override.notify);
    try {
      while (!m.roundSettled()) {
        if (await condition(() => m.roundSettled() || m.trustRefreshWanted, Math.max(1, m.wakeAt() - Date.now()))) {
          if (!m.trustRefreshWanted) break;
          // After a key rotation: read the worker's trusted keys again (bounded per request).
          m.refreshingTrust();
          m.trust(await loadTrustAnchors());
          continue;
        }
        const now = Date.now();
        if (m.isExpired(now)) return { kind: 'expired' };
        const escalated = m.escalate(now);
        if (escalated) {
          publishWaiting();
          notify('escalated', escalated);
        }
        const reminded = m.remind(now);
        if (reminded) notify('reminder', reminded);
      }
    } finally {
      m.roundClosed();
    }
    const end = m.roundEnd();
    if (end.kind === 'reevaluated') publish();
    return end;
  }
}
