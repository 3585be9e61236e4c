/**
 * FROZEN: the toolRequest workflow as it ran before the trust boundary (signed requests and
 * decisions). It stays only so that runs started before the upgrade keep replaying; new runs
 * never take it (`toolRequest` checks the TRUST_BOUNDARY_PATCH marker). Such a run can no longer
 * be decided: its update validator refuses every decision, so it ends by expiry, a kill order or
 * a decision it received before the upgrade. Do not change its commands.
 *
 * The toolRequest workflow (before the trust boundary): one agent tool call, from policy to outcome.
 *
 *   1. evaluate policy (local activity) → allow | deny | approve
 *   2. deny → structured denial
 *   3. approve → notify approvers, wait for decisions through the `decide` update, escalation
 *      tiers, reminders and expiry on durable timers; expiry denies; an approver's edit is
 *      evaluated again and opens a new round bound to a new digest
 *   4. execute the side effect once, under an idempotency key derived from the workflow id
 *
 * Deterministic code only: no I/O, no Node built-ins. Everything that touches the world is an
 * activity, so the workflow history is the replayable record of what was decided and done.
 */
import {
  ActivityFailure,
  defineSignal,
  defineUpdate,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../../activities/index.js';
// Values come only from the zod-free parts of the shared module: the worker evaluates the
// workflow bundle once per cached workflow, so every module it imports costs memory per request.
import { countedGroups, eligibleGroups, isApprovalSatisfied, isRejected, refuseDecision } from '../../src/shared/approval.js';
import { FailureTypes, MAX_RECORDED_REFUSALS, NON_RETRYABLE_TOOL_FAILURES, killSignal, searchAttributes, statusQuery } from '../../src/shared/messages.js';
import type { ApprovalRecord, DecideInput, EditRecord, NotificationRecord, RefusalRecord } from '../../src/shared/approver-decisions.js';
import type { ApprovalPlan, Evaluation } from '../../src/shared/policy-decisions.js';
import type { Execution, KillOrder, RequestState, RequestStatus, ToolOutcome } from '../../src/shared/request-status.js';
import type { ToolRequest } from '../../src/shared/requests.js';

/** The decide update as runs before the trust boundary received it: a decision and an unverified approver object. */
const legacyDecideUpdate = defineUpdate<RequestStatus, [DecideInput]>('decide');
/** The refused-attempt signal of runs before the trust boundary (the API no longer sends it). */
const attemptRefusedSignal = defineSignal<[RefusalRecord]>('attemptRefused');

type Activities = ReturnType<typeof createActivities>;

const { evaluatePolicy } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 milliseconds' },
});

const { notifyApprovers } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second', backoffCoefficient: 2 },
});

/** ISO timestamps; Date is deterministic inside workflows. */
const isoAt = (ms: number): string => new Date(ms).toISOString();

/** How the approval phase ended. */
type ApprovalEnd = { kind: 'approved' } | { kind: 'rejected'; vote: ApprovalRecord } | { kind: 'expired' } | { kind: 'reevaluated' } | { kind: 'killed' };

/** Runs one tool request of a run started before the trust boundary to its outcome. */
export async function legacyToolRequest(initial: ToolRequest): Promise<ToolOutcome> {
  const { workflowId } = workflowInfo();
  let request = initial;
  const requesterIds = [initial.actor.id, ...(initial.onBehalfOf ?? []).map((principal) => principal.id)];
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
  };
  const setState = (state: RequestState): void => {
    status.state = state;
    upsertSearchAttributes([{ key: searchAttributes.status, value: state }]);
  };
  const usedLinkNonces: string[] = [];
  /** The digest decisions must carry right now; undefined whenever no decision may apply. */
  let pendingDigest: string | undefined;
  let pendingEdit: { input: DecideInput; record: EditRecord } | undefined;

  const recordRefusal = (refusal: RefusalRecord): void => {
    if (status.refusals.length < MAX_RECORDED_REFUSALS) status.refusals.push(refusal);
    else status.refusalsDropped += 1;
  };

  setHandler(statusQuery, () => status);
  setHandler(attemptRefusedSignal, recordRefusal);
  /** A kill order denies the request unless its side effect already started. */
  let killOrder: KillOrder | undefined;
  /** Read through a function: the signal handler changes it between awaits. */
  const killed = (): KillOrder | undefined => killOrder;
  setHandler(killSignal, (order) => {
    if (killOrder || status.state === 'executing' || status.outcome) return;
    killOrder = order;
    status.killedBy = order;
  });
  const killDenial = (order: KillOrder): ToolOutcome => ({
    ...outcomeBase(),
    status: 'denied',
    code: 'kill_switch',
    reasons: [`a kill switch was turned on by ${order.by} at ${order.at}: ${order.reason}`],
  });

  setHandler(
    legacyDecideUpdate,
    async (input: DecideInput): Promise<RequestStatus> => {
      const plan = status.decision?.approval as ApprovalPlan;
      const digest = pendingDigest as string;
      if (input.linkNonce !== undefined) usedLinkNonces.push(input.linkNonce);
      if (input.decision === 'edit') {
        const record: EditRecord = {
          editorId: input.approver.id,
          at: isoAt(Date.now()),
          fromDigest: digest,
          args: input.args ?? {},
          ...(input.reason === undefined ? {} : { reason: input.reason }),
        };
        status.edits.push(record);
        pendingEdit = { input, record };
        pendingDigest = undefined;
        // Answer once policy has judged the edit, so the editor sees the new digest or the denial.
        await condition(() => pendingEdit === undefined);
        return status;
      }
      status.approvals.push({
        approverId: input.approver.id,
        groups: countedGroups(plan, status.tier, input.approver),
        decision: input.decision,
        digest,
        at: isoAt(Date.now()),
        tier: status.tier,
        via: input.via ?? 'api',
        ...(input.reason === undefined ? {} : { reason: input.reason }),
      });
      return status;
    },
    {
      // Updates accepted before the upgrade replay through the handler above (validators do not
      // run on replay). From now on nothing may decide this run: its approver object was never verified.
      validator: (_input: DecideInput): void => {
        throw ApplicationFailure.nonRetryable(
          'this request was started before signed decisions and can no longer be decided; it ends when it expires',
          FailureTypes.NotPending,
        );
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
        digest: status.digest ?? '',
        ...(status.expiresAt === undefined ? {} : { expiresAt: status.expiresAt }),
        ...(status.outcome === undefined ? {} : { outcome: status.outcome.status }),
      }).catch((err: unknown) => {
        if (!(err instanceof ActivityFailure)) throw err;
      }),
    );
  };

  let evaluation: Evaluation = await evaluatePolicy({ request, workflowId });
  const editors: string[] = [];

  const outcomeBase = () => ({
    requestId: request.requestId,
    workflowId,
    tool: request.tool,
    tenant: request.tenant,
    actor: request.actor,
    risk: evaluation.decision.risk,
    rule: evaluation.decision.rule,
    policyDigest: evaluation.decision.policyDigest,
    digest: evaluation.digest,
    approvals: status.approvals,
  });
  const finish = async (outcome: ToolOutcome): Promise<ToolOutcome> => {
    status.outcome = outcome;
    setState(outcome.status);
    pendingEdit = undefined; // an edit still waiting for judgement gets its answer: the request is over
    if (status.notifications.length > 0) notify('outcome', status.eligibleGroups);
    await Promise.all(notifications);
    await condition(allHandlersFinished);
    return outcome;
  };

  for (;;) {
    const { decision } = evaluation;
    status.decision = decision;
    status.proposal = evaluation.proposal;
    status.digest = evaluation.digest;
    upsertSearchAttributes([{ key: searchAttributes.risk, value: decision.risk }]);

    const killedNow = killed();
    if (killedNow) return finish(killDenial(killedNow));
    if (decision.outcome === 'deny') {
      return finish({ ...outcomeBase(), status: 'denied', code: decision.code ?? 'rule_denied', reasons: decision.reasons });
    }
    if (decision.outcome === 'allow') break;

    const plan = decision.approval;
    if (!plan || !evaluation.digest) {
      return finish({ ...outcomeBase(), status: 'denied', code: 'policy_unavailable', reasons: ['approval plan missing from the decision'] });
    }
    const end = await awaitApprovals(plan, evaluation.digest);
    if (end.kind === 'killed') return finish(killDenial(killed() as KillOrder));
    if (end.kind === 'rejected') {
      return finish({
        ...outcomeBase(),
        status: 'rejected',
        rejectedBy: end.vote.approverId,
        ...(end.vote.reason === undefined ? {} : { reason: end.vote.reason }),
      });
    }
    if (end.kind === 'expired') return finish({ ...outcomeBase(), status: 'expired', expiresAt: status.expiresAt ?? '' });
    if (end.kind === 'approved') break;

    // An approver changed the arguments: policy judges the new proposal from scratch.
    const edit = pendingEdit as { input: DecideInput; record: EditRecord };
    request = { ...request, args: edit.input.args ?? {} };
    evaluation = await evaluatePolicy({ request, workflowId });
    edit.record.toDigest = evaluation.digest;
    editors.push(edit.input.approver.id);
    status.tier = 0;
    const newPlan = evaluation.decision.approval;
    if (evaluation.decision.outcome === 'approve' && newPlan && evaluation.digest) {
      // The editor stands behind their edit: it counts as their approval where the new plan lets them approve.
      const refusal = refuseDecision(
        { pending: true, tenant: request.tenant, requesterIds, digest: evaluation.digest, plan: newPlan, tier: 0, approvals: status.approvals },
        { decision: 'approve', digest: evaluation.digest, approver: edit.input.approver },
      );
      if (!refusal) {
        status.approvals.push({
          approverId: edit.input.approver.id,
          groups: countedGroups(newPlan, 0, edit.input.approver),
          decision: 'approve',
          digest: evaluation.digest,
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
  return finish(await execute(request, evaluation, outcomeBase(), editors));

  /** Waits until the plan is satisfied, rejected, expired, or an edit needs re-evaluation. */
  async function awaitApprovals(plan: ApprovalPlan, digest: string): Promise<ApprovalEnd> {
    const startedAt = Date.now();
    const expiresAt = startedAt + plan.expiresAfterMs;
    status.expiresAt = isoAt(expiresAt);
    status.eligibleGroups = eligibleGroups(plan, status.tier);
    pendingDigest = digest;
    setState('pending_approval');
    notify('requested', status.eligibleGroups);

    const rejection = (): ApprovalRecord | undefined =>
      isRejected(plan, status.approvals, digest) ? status.approvals.find((v) => v.decision === 'reject' && v.digest === digest) : undefined;
    const settled = (): boolean =>
      killed() !== undefined || pendingEdit !== undefined || rejection() !== undefined || isApprovalSatisfied(plan, status.approvals, digest);
    let nextReminder = plan.remindEveryMs ? startedAt + plan.remindEveryMs : Infinity;

    try {
      while (!settled()) {
        const next = plan.escalation[status.tier];
        const escalateAt = next ? startedAt + next.afterMs : Infinity;
        const wakeAt = Math.min(escalateAt, expiresAt, nextReminder);
        if (await condition(settled, Math.max(1, wakeAt - Date.now()))) break;
        const now = Date.now();
        if (now >= expiresAt) return { kind: 'expired' };
        if (next && now >= escalateAt) {
          status.tier += 1;
          status.eligibleGroups = eligibleGroups(plan, status.tier);
          notify('escalated', next.groups);
        }
        if (now >= nextReminder) {
          notify('reminder', status.eligibleGroups);
          nextReminder = now + (plan.remindEveryMs ?? Infinity);
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
    if (rejected) return { kind: 'rejected', vote: rejected };
    return { kind: 'approved' };
  }
}

type OutcomeBase = Omit<Extract<ToolOutcome, { status: 'completed' }>, 'status' | 'result' | 'args' | 'execution' | 'editedBy' | 'proposal'>;

async function execute(request: ToolRequest, evaluation: Evaluation, base: OutcomeBase, editors: string[]): Promise<ToolOutcome> {
  const { decision } = evaluation;
  const runAs = decision.runAs ?? 'unknown';
  const { executeTool } = proxyActivities<Activities>({
    startToCloseTimeout: '2 minutes',
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
    };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause;
    const type = cause instanceof ApplicationFailure && cause.type ? cause.type : (cause?.name ?? 'ActivityFailure');
    const message = cause?.message ?? err.message;
    if (type === FailureTypes.KillSwitchActive) {
      return { ...base, status: 'denied', code: 'kill_switch', reasons: [message] };
    }
    const execution: Execution = { runAs, idempotencyKey, startedAt, finishedAt: isoAt(Date.now()), attempts: 0 };
    const known = type === FailureTypes.ToolRejected || type === FailureTypes.ToolNotRegistered || type === FailureTypes.EgressRefused;
    return { ...base, status: known ? 'failed' : 'outcome_unknown', error: { type, message }, execution };
  }
}
