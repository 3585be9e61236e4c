/**
 * How the approver-facing routes (the approval API, one-click links) reach a request: by the
 * approver's tenant and the request id, scoped by the run's own search attributes; its status read
 * by a query; a decision signed and sent as the `decide` update. One module, so every route scopes
 * requests to the approver's tenant and refuses at the edge the same way.
 */
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { Request } from 'express';
import type { Logger } from 'pino';
import { refusedAttempts } from '../metrics.js';
import {
  IDENTIFIER_PATTERN,
  searchAttributes,
  statusQuery,
  workflowIdFor,
  type Approver,
  type DecideInput,
  type DecisionChannel,
  type RequestStatus,
} from '../shared/index.js';
import { unavailable, type DecisionSender } from './decisions.js';
import { HttpError } from './errors.js';
import { KnownRuns } from './known-runs.js';

/** Logs and counts a refused attempt that no history records (anonymous, invalid, another tenant's request). */
export type RefusedAtEdge = (surface: string, code: string, details: Record<string, unknown>) => void;

/** The `RefusedAtEdge` of one API: a warning in its log and the `toolgate_refused_attempts_total` counter. */
export function edgeRefusals(logger: Logger): RefusedAtEdge {
  return (surface, code, details) => {
    refusedAttempts.inc({ surface, code });
    logger.warn({ event: 'attempt_refused', surface, code, ...details }, 'attempt refused at the edge (not recorded in any history)');
  };
}

/** The `:requestId` route parameter, or a 400 when it is not a request id. */
export function requestIdParam(req: Request): string {
  const requestId = String(req.params.requestId ?? '');
  if (!IDENTIFIER_PATTERN.test(requestId)) {
    throw new HttpError(400, 'invalid_request_id', 'requestId must be 1-128 characters of letters, digits and . _ : @ -', ['requestId']);
  }
  return requestId;
}

/** Reading and deciding requests of an authenticated approver's tenant. */
export interface RequestAccess {
  /** The request's status, or a 404 when it is not a request of the approver's tenant; 503 when no worker answers the query. */
  loadStatus(requestId: string, approver: Approver, via: DecisionChannel): Promise<RequestStatus>;
  /**
   * Signs the decision of an authenticated approver and sends it to the request's run. The
   * workflow verifies the signature and judges the decision; a refusal becomes an HttpError (and
   * is recorded in the history by the workflow when the approver still has a share of the record).
   */
  decide(requestId: string, input: DecideInput): Promise<RequestStatus>;
}

/** The `RequestAccess` of an API: its Temporal client, its decision sender and its edge refusals. */
export function requestAccess(client: Client, decisions: DecisionSender, refusedAtEdge: RefusedAtEdge, runs: KnownRuns = new KnownRuns()): RequestAccess {
  /** The handle of a request of the approver's tenant: request ids are namespaced per tenant, so another tenant's request is never even addressed. */
  const handleOf = (tenant: string, requestId: string) => client.workflow.getHandle(workflowIdFor(tenant, requestId));

  /**
   * The run of the approver's tenant's request, or a 404. Answered by the server from the
   * workflow's description (search attributes), so it needs no worker.
   */
  const checkScope = async (requestId: string, approver: Approver, via: DecisionChannel): Promise<{ handle: WorkflowHandle; runId: string }> => {
    const handle = handleOf(approver.tenant, requestId);
    let description;
    try {
      description = await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new HttpError(404, 'not_found', `no request ${requestId}`);
      throw unavailable(err);
    }
    if (description.typedSearchAttributes.get(searchAttributes.tenant) !== approver.tenant) {
      refusedAtEdge(via, 'wrong_tenant', { requestId, approver: approver.id, tenant: approver.tenant });
      throw new HttpError(404, 'not_found', `no request ${requestId}`);
    }
    runs.remember(handle.workflowId, description.runId);
    return { handle, runId: description.runId };
  };

  return {
    async loadStatus(requestId, approver, via) {
      const { handle } = await checkScope(requestId, approver, via);
      try {
        return await handle.query(statusQuery);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new HttpError(404, 'not_found', `no request ${requestId}`);
        throw unavailable(err);
      }
    },
    async decide(requestId, input) {
      const workflowId = workflowIdFor(input.approver.tenant, requestId);
      const known = runs.runOf(workflowId);
      if (known !== undefined) {
        try {
          return await decisions.send(requestId, client.workflow.getHandle(workflowId, known), known, input);
        } catch (err) {
          // The remembered run is gone (closed, or replaced by a reset): the update never reached a
          // workflow, so asking the server and sending again decides once. Anything else is the answer.
          if (!(err instanceof HttpError && err.cause instanceof WorkflowNotFoundError)) throw err;
          runs.forget(workflowId);
        }
      }
      const { handle, runId } = await checkScope(requestId, input.approver, input.via ?? 'api');
      return decisions.send(requestId, client.workflow.getHandle(handle.workflowId, runId), runId, input);
    },
  };
}
