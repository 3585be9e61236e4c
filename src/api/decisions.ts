/**
 * Sending a signed decision to a request's run — shared by the approval API (approvers, one-click
 * links) and the front door (the end user's confirmation relayed by the agent): both sign a
 * decision assertion for someone they authenticated, send it as the `decide` update, retry what
 * the workflow could not take yet, and turn the workflow's refusals into the same HTTP answers.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { FailureTypes, decideUpdate, refreshTrustSignal, type DecideInput, type RequestStatus } from '../shared/index.js';
import type { DecisionSigner, DecisionStatement } from '../trust/signers.js';
import type { ErrorCode } from '../errors.js';
import { GrpcStatus, HttpError, grpcStatusOf, temporalUnavailable } from './errors.js';
import { LaneFullError, Lanes } from './lanes.js';

/** The stable code of each refusal the workflow's validator gives (its HTTP status is the code's, src/errors.ts). */
export const REFUSAL_CODES: Readonly<Record<string, ErrorCode>> = {
  [FailureTypes.DigestMismatch]: 'digest_mismatch',
  [FailureTypes.NotPending]: 'not_pending',
  [FailureTypes.DuplicateVote]: 'duplicate_vote',
  [FailureTypes.LinkReused]: 'link_reused',
  [FailureTypes.NotEligible]: 'not_eligible',
  [FailureTypes.SelfApproval]: 'self_approval',
  [FailureTypes.WrongTenant]: 'wrong_tenant',
  [FailureTypes.InvalidDecision]: 'invalid_decision',
  [FailureTypes.VoteLimit]: 'vote_limit',
  [FailureTypes.EditLimit]: 'edit_limit',
};

/**
 * The failure type the server gives an accepted update whose workflow closed before the update
 * completed (Temporal's `AcceptedUpdateCompletedWorkflow`): the request is no longer pending.
 */
const UPDATE_OUTLIVED_WORKFLOW = 'AcceptedUpdateCompletedWorkflow';

/** How often a decision the workflow could not take yet is retried (busy, rotated keys, an assertion that aged while no worker ran). */
const DECISION_ATTEMPTS = 8;
/** Decisions on one request sent at once by one sender (Temporal takes 10 updates in flight per workflow). */
const DECISION_LANE_WIDTH = 4;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The claims of the decision assertion for `input` on one run of a request. */
export function decisionStatement(requestId: string, workflowId: string, runId: string, input: DecideInput): DecisionStatement {
  return {
    sub: input.approver.id,
    tenant: input.approver.tenant,
    groups: input.approver.groups,
    request_id: requestId,
    workflow_id: workflowId,
    run_id: runId,
    digest: input.digest,
    decision: input.decision,
    channel: input.via ?? 'api',
    ...(input.linkNonce === undefined ? {} : { link_nonce: input.linkNonce }),
    ...(input.reason === undefined ? {} : { reason: input.reason }),
    ...(input.args === undefined ? {} : { args: input.args }),
  };
}

/** Signs decisions and sends them to request runs, a few at a time per request. */
export class DecisionSender {
  /** At most DECISION_LANE_WIDTH decisions per request in flight from this sender (Temporal allows 10). */
  private readonly lanes = new Lanes(DECISION_LANE_WIDTH, 2_000);

  constructor(
    private readonly signer: DecisionSigner,
    private readonly logger: Logger,
  ) {}

  /**
   * Signs `input` for the run `run` (a handle bound to its run id) of `requestId` and sends it as
   * the `decide` update. Resolves with the status the workflow answers; a refusal becomes the
   * HttpError of REFUSAL_CODES, a closed request 409 not_pending, anything transient a 503.
   */
  async send(requestId: string, run: WorkflowHandle, runId: string, input: DecideInput): Promise<RequestStatus> {
    try {
      return await this.lanes.run(run.workflowId, () => this.sendNow(requestId, run, runId, input));
    } catch (err) {
      if (err instanceof LaneFullError)
        throw new HttpError('busy', 'too many decisions are waiting for this request; retry shortly', { retryAfter: 1, cause: err });
      throw err;
    }
  }

  private async sendNow(requestId: string, run: WorkflowHandle, runId: string, input: DecideInput): Promise<RequestStatus> {
    const statement = decisionStatement(requestId, run.workflowId, runId, input);
    const who = { requestId, approver: input.approver.id, decision: input.decision, via: statement.channel };
    let refreshed = false;
    for (let attempt = 1; ; attempt += 1) {
      const assertion = await this.signer.sign(statement);
      try {
        const status = await run.executeUpdate(decideUpdate, { args: [{ assertion }] });
        this.logger.info(who, 'decision accepted');
        return status;
      } catch (err) {
        const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
        const type = cause instanceof ApplicationFailure ? cause.type : undefined;
        const code = type ? REFUSAL_CODES[type] : undefined;
        if (code) {
          this.logger.warn({ ...who, code }, 'decision refused');
          throw new HttpError(code, (cause as ApplicationFailure).message, { cause });
        }
        // A closed workflow: the server answers NOT_FOUND ("workflow execution already completed"),
        // which the client raises as WorkflowNotFoundError; or it fails an update it had accepted.
        if (err instanceof WorkflowNotFoundError || type === UPDATE_OUTLIVED_WORKFLOW) {
          throw new HttpError('not_pending', 'the request is no longer waiting for approval', { cause: err });
        }
        const unverified = type === FailureTypes.UntrustedSigningKey || type === FailureTypes.UnverifiedDecision;
        // UnverifiedDecision: e.g. the assertion aged while the update waited for a worker.
        const retryable = unverified || isResourceExhausted(err);
        if (!retryable || attempt >= DECISION_ATTEMPTS) {
          if (unverified) {
            this.logger.error(
              { requestId, type, err: (cause as Error).message },
              "the workflow does not accept this API's decision signatures; check TOOLGATE_TRUSTED_DECISION_KEYS on the workers",
            );
            throw new HttpError('decision_not_verified', 'the gateway could not get this decision verified; retry shortly', { retryAfter: 5, cause: err });
          }
          if (isResourceExhausted(err))
            throw new HttpError('busy', 'too many decisions for this request at once; retry shortly', { retryAfter: 1, cause: err });
          throw unavailable(err);
        }
        // After a key rotation the run may hold only the old keys: ask it, once, to read the worker's keys again.
        if (type === FailureTypes.UntrustedSigningKey && !refreshed) {
          refreshed = true;
          await run.signal(refreshTrustSignal).catch(() => undefined);
        }
        await pause(Math.min(2000, 50 * 2 ** attempt) * (0.5 + Math.random()));
      }
    }
  }
}

/** True when Temporal refused a call for load (gRPC RESOURCE_EXHAUSTED), e.g. too many updates in flight on one workflow. */
export function isResourceExhausted(err: unknown): boolean {
  return grpcStatusOf(err) === GrpcStatus.RESOURCE_EXHAUSTED;
}

/**
 * A Temporal call that could not be answered is a 503 with Retry-After, not an internal error:
 * `temporal_unavailable` when the server is out of reach, `worker_unavailable` when no worker
 * answered in time. Anything else is passed on unchanged.
 */
export function unavailable(err: unknown): unknown {
  return temporalUnavailable(err) ?? err;
}
