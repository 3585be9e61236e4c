/**
 * Step 4 of the toolRequest workflow: the side effect, once, under an idempotency key derived
 * from the workflow id, with the evidence the execution activity checks again before it acts;
 * and the outcome its answer (or its failure) makes. Workflow code: deterministic, no I/O.
 */
import { ApplicationFailure, patched, proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import { EXECUTION_BOUNDS, FailureTypes, LOCAL_EXECUTION_PATCH, NON_RETRYABLE_TOOL_FAILURES, idempotencyKeyFor } from '../src/shared/messages.js';
import type { Evaluation } from '../src/shared/policy-decisions.js';
import type { Execution, ToolOutcome } from '../src/shared/request-status.js';
import type { ToolRequest } from '../src/shared/requests.js';
import { asActivityFailure } from './activity-failures.js';
import type { OutcomeBase } from './request-views.js';

type Activities = ReturnType<typeof createActivities>;

/** What the execution activity checks again before it acts: who admitted the request, who approved it. */
export interface ExecutionEvidence {
  admission: string;
  approvals: string[];
  edit?: string;
  admitted?: ToolRequest;
  /** Edits that count as their editors' approvals of the final proposal. */
  editApprovals?: string[];
  /** The end user's confirmation of the final proposal (their approval, or the edit that produced it), under a plan that accepts them. */
  confirmation?: string;
}

/** ISO timestamps; Date is deterministic inside workflows. */
const isoAt = (ms: number): string => new Date(ms).toISOString();

/** Failures after which the tool certainly did not act: the request `failed`. Any other leaves its outcome unknown. */
const KNOWN_FAILURES: readonly string[] = [
  FailureTypes.ToolRejected,
  FailureTypes.ToolNotRegistered,
  FailureTypes.ToolUnreachable,
  FailureTypes.EgressRefused,
  FailureTypes.UnverifiedExecution,
];

/** Runs the approved (or allowed) `request` as policy's `evaluation` says, and returns its outcome. */
export async function execute(
  request: ToolRequest,
  evaluation: Evaluation,
  base: OutcomeBase,
  editors: string[],
  evidence: ExecutionEvidence,
): Promise<ToolOutcome> {
  const { decision } = evaluation;
  const runAs = decision.runAs ?? 'unknown';
  const retry = {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 10,
    nonRetryableErrorTypes: NON_RETRYABLE_TOOL_FAILURES,
  };
  // Allowed, low risk and idempotent (policy says so): run it in this workflow task, as the policy
  // decision was. A worker that dies mid-call leaves the task to time out and the next worker runs
  // the call again under the same idempotency key, which such a tool deduplicates. After an edit
  // the request was approved, so it never gets here with the flag.
  const local = evaluation.decision.localExecution === true && patched(LOCAL_EXECUTION_PATCH);
  const { executeTool } = local
    ? proxyLocalActivities<Activities>({ startToCloseTimeout: EXECUTION_BOUNDS.attemptTimeoutMs, retry })
    : proxyActivities<Activities>({
        // The activity heartbeats every second: a worker that dies mid-call is noticed in seconds, and
        // the retry (idempotent tool) or outcome_unknown (non-idempotent) follows at once.
        heartbeatTimeout: EXECUTION_BOUNDS.heartbeatTimeoutMs,
        startToCloseTimeout: EXECUTION_BOUNDS.attemptTimeoutMs,
        retry,
      });
  const idempotencyKey = idempotencyKeyFor(base.workflowId);
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
      // Read by the activity only when it runs locally, where this workflow code is its only caller.
      ...(local ? { firstRunId: workflowInfo().firstExecutionRunId } : {}),
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
  } catch (thrown) {
    const err = asActivityFailure(thrown, 'executeTool');
    if (!err) throw thrown;
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
    return { ...base, status: KNOWN_FAILURES.includes(type) ? 'failed' : 'outcome_unknown', error: { type, message }, execution };
  }
}
