/**
 * The toolRequest workflow: one agent tool call, from policy to outcome.
 *
 *   1. evaluate policy (local activity) → allow | deny | approve
 *   2. deny → structured denial
 *   3. approve → notify approvers, wait for decisions through the `decide` update, escalation
 *      tiers and expiry on durable timers; expiry denies
 *   4. execute the side effect once, under an idempotency key derived from the workflow id
 *
 * Deterministic code only: no I/O, no Node built-ins. Everything that touches the world is an
 * activity, so the workflow history is the replayable record of what was decided and done.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import {
  FailureTypes,
  NON_RETRYABLE_TOOL_FAILURES,
  countedGroups,
  decideUpdate,
  eligibleGroups,
  isApprovalSatisfied,
  refuseDecision,
  searchAttributes,
  statusQuery,
  type ApprovalRecord,
  type DecideInput,
  type Evaluation,
  type Execution,
  type RequestState,
  type RequestStatus,
  type ToolOutcome,
  type ToolRequest,
} from '../src/shared/index.js';

type Activities = ReturnType<typeof createActivities>;

const { evaluatePolicy } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200 milliseconds' },
});

const { notifyApprovers } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second', backoffCoefficient: 2 },
});

/** Milliseconds for ISO timestamps; Date is deterministic inside workflows. */
const isoAt = (ms: number): string => new Date(ms).toISOString();

/** Runs one tool request to its outcome. */
export async function toolRequest(request: ToolRequest): Promise<ToolOutcome> {
  const { workflowId } = workflowInfo();
  const status: RequestStatus = {
    requestId: request.requestId,
    workflowId,
    state: 'evaluating',
    tenant: request.tenant,
    environment: request.environment,
    tool: request.tool,
    actor: request.actor,
    reason: request.reason,
    traceId: request.traceId,
    tier: 0,
    eligibleGroups: [],
    approvals: [],
    notifications: [],
  };
  const setState = (state: RequestState): void => {
    status.state = state;
    upsertSearchAttributes([{ key: searchAttributes.status, value: state }]);
  };
  setHandler(statusQuery, () => status);

  let pendingDigest: string | undefined;
  setHandler(
    decideUpdate,
    (input: DecideInput): RequestStatus => {
      const plan = status.decision?.approval;
      if (!plan) throw ApplicationFailure.nonRetryable('the request is not waiting for approval', FailureTypes.NotPending);
      const record: ApprovalRecord = {
        approverId: input.approver.id,
        groups: countedGroups(plan, status.tier, input.approver),
        decision: input.decision,
        digest: input.digest,
        at: isoAt(Date.now()),
        tier: status.tier,
        ...(input.reason === undefined ? {} : { reason: input.reason }),
      };
      status.approvals.push(record);
      return status;
    },
    {
      validator: (input: DecideInput): void => {
        const plan = status.decision?.approval;
        const refusal = refuseDecision(
          {
            pending: status.state === 'pending_approval' && plan !== undefined && pendingDigest !== undefined,
            tenant: request.tenant,
            requesterId: request.actor.id,
            digest: pendingDigest ?? '',
            plan: plan ?? { name: '', groups: [], allOf: [], minApprovals: 1, escalation: [], expiresAfterMs: 0 },
            tier: status.tier,
            approvals: status.approvals,
          },
          input,
        );
        if (refusal) throw ApplicationFailure.nonRetryable(refusal.message, refusal.type);
      },
    },
  );

  const evaluation: Evaluation = await evaluatePolicy({ request, workflowId });
  const { decision } = evaluation;
  status.decision = decision;
  status.proposal = evaluation.proposal;
  status.digest = evaluation.digest;
  upsertSearchAttributes([{ key: searchAttributes.risk, value: decision.risk }]);

  const base = {
    requestId: request.requestId,
    workflowId,
    tool: request.tool,
    tenant: request.tenant,
    actor: request.actor,
    risk: decision.risk,
    rule: decision.rule,
    policyDigest: decision.policyDigest,
    digest: evaluation.digest,
    approvals: status.approvals,
  };
  const finish = (outcome: ToolOutcome): ToolOutcome => {
    status.outcome = outcome;
    setState(outcome.status);
    return outcome;
  };

  if (decision.outcome === 'deny') {
    return finish({ ...base, status: 'denied', code: decision.code ?? 'rule_denied', reasons: decision.reasons });
  }

  if (decision.outcome === 'approve') {
    const plan = decision.approval;
    if (!plan || !evaluation.digest) {
      return finish({ ...base, status: 'denied', code: 'policy_unavailable', reasons: ['approval plan missing from the decision'] });
    }
    const startedAt = Date.now();
    const expiresAt = startedAt + plan.expiresAfterMs;
    status.expiresAt = isoAt(expiresAt);
    status.eligibleGroups = eligibleGroups(plan, 0);
    pendingDigest = evaluation.digest;
    setState('pending_approval');

    const notify = async (kind: 'requested' | 'escalated', tier: number, groups: string[]): Promise<void> => {
      status.notifications.push({ kind, tier, groups, at: isoAt(Date.now()) });
      try {
        await notifyApprovers({ kind, tier, groups, status: { ...status } });
      } catch (err) {
        // A failing notifier never blocks or approves a request; the failure stays in history.
        if (!(err instanceof ActivityFailure)) throw err;
      }
    };
    await notify('requested', 0, status.eligibleGroups);

    const rejected = (): ApprovalRecord | undefined => status.approvals.find((vote) => vote.decision === 'reject');
    const settled = (): boolean => rejected() !== undefined || isApprovalSatisfied(plan, status.approvals);
    while (!settled()) {
      const next = plan.escalation[status.tier];
      const escalateAt = next ? startedAt + next.afterMs : Infinity;
      const wakeAt = Math.min(escalateAt, expiresAt);
      if (await condition(settled, Math.max(0, wakeAt - Date.now()))) break;
      if (Date.now() >= expiresAt) break;
      if (next && Date.now() >= escalateAt) {
        status.tier += 1;
        status.eligibleGroups = eligibleGroups(plan, status.tier);
        await notify('escalated', status.tier, next.groups);
      }
    }
    pendingDigest = undefined;
    const rejection = rejected();
    if (rejection) {
      return finish({
        ...base,
        status: 'rejected',
        rejectedBy: rejection.approverId,
        ...(rejection.reason === undefined ? {} : { reason: rejection.reason }),
      });
    }
    if (!isApprovalSatisfied(plan, status.approvals)) {
      return finish({ ...base, status: 'expired', expiresAt: status.expiresAt });
    }
  }

  setState('executing');
  return finish(await execute(request, evaluation, base));
}

type OutcomeBase = Omit<Extract<ToolOutcome, { status: 'completed' }>, 'status' | 'result' | 'args' | 'execution'>;

async function execute(request: ToolRequest, evaluation: Evaluation, base: OutcomeBase): Promise<ToolOutcome> {
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
    return { ...base, status: 'completed', result: done.result, args: request.args, execution };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause;
    const type = cause instanceof ApplicationFailure && cause.type ? cause.type : (cause?.name ?? 'ActivityFailure');
    const message = cause?.message ?? err.message;
    const execution: Execution = { runAs, idempotencyKey, startedAt, finishedAt: isoAt(Date.now()), attempts: 0 };
    const known = type === FailureTypes.ToolRejected || type === FailureTypes.ToolNotRegistered;
    return { ...base, status: known ? 'failed' : 'outcome_unknown', error: { type, message }, execution };
  }
}
