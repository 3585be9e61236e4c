/**
 * The approver HTTP API (express 5). Approvers authenticate with a bearer token; decisions go to
 * the request's workflow as a Temporal Update whose synchronous validator has the final word.
 */
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ApproverTokenVerifier } from '../auth/tokens.js';
import {
  DecisionBodySchema,
  FailureTypes,
  IDENTIFIER_PATTERN,
  decideUpdate,
  formatIssues,
  refuseDecision,
  searchAttributes,
  statusQuery,
  workflowIdFor,
  type Approver,
  type RequestStatus,
} from '../shared/index.js';

/** What the API needs. */
export interface ApiDeps {
  client: Client;
  verifier: ApproverTokenVerifier;
  logger: Logger;
}

/** An error answer: a stable code, a sentence, and the fields at fault. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: string[],
  ) {
    super(message);
  }
}

const REFUSAL_STATUS: Record<string, [number, string]> = {
  [FailureTypes.DigestMismatch]: [409, 'digest_mismatch'],
  [FailureTypes.NotPending]: [409, 'not_pending'],
  [FailureTypes.DuplicateVote]: [409, 'duplicate_vote'],
  [FailureTypes.NotEligible]: [403, 'not_eligible'],
  [FailureTypes.SelfApproval]: [403, 'self_approval'],
  [FailureTypes.WrongTenant]: [403, 'wrong_tenant'],
  [FailureTypes.InvalidDecision]: [400, 'invalid_decision'],
};

type Authed = Request & { approver?: Approver };

/** The approval view of a request: everything an approver must see before deciding. */
function approvalView(status: RequestStatus, approver: Approver) {
  const plan = status.decision?.approval;
  const refusal =
    status.state === 'pending_approval' && plan && status.digest
      ? refuseDecision(
          {
            pending: true,
            tenant: status.tenant,
            requesterId: status.actor.id,
            digest: status.digest,
            plan,
            tier: status.tier,
            approvals: status.approvals,
          },
          { decision: 'approve', digest: status.digest, approver },
        )
      : { type: FailureTypes.NotPending, message: 'the request is not waiting for approval' };
  return {
    requestId: status.requestId,
    state: status.state,
    tenant: status.tenant,
    environment: status.environment,
    tool: status.tool,
    args: status.proposal?.args,
    risk: status.decision?.risk,
    rule: status.decision?.rule,
    reasons: status.decision?.reasons ?? [],
    policyDigest: status.decision?.policyDigest,
    toolDigest: status.decision?.toolDigest,
    runAs: status.decision?.runAs,
    actor: status.actor,
    reason: status.reason,
    traceId: status.traceId,
    digest: status.digest,
    expiresAt: status.expiresAt,
    tier: status.tier,
    eligibleGroups: status.eligibleGroups,
    plan: plan ? { name: plan.name, groups: plan.groups, allOf: plan.allOf, minApprovals: plan.minApprovals } : undefined,
    approvals: status.approvals,
    canDecide: refusal === undefined,
    ...(refusal ? { cannotDecideBecause: refusal.message } : {}),
    proposal: status.proposal,
    outcome: status.outcome ? { status: status.outcome.status } : undefined,
  };
}

/** Creates the express app serving `/healthz` and `/v1/approvals`. */
export function createApiApp(deps: ApiDeps): express.Express {
  const { client, verifier, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(express.json({ limit: '64kb', strict: true }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const authenticate = async (req: Authed, _res: Response, next: NextFunction): Promise<void> => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
    if (!match?.[1]) throw new HttpError(401, 'unauthenticated', 'Authorization: Bearer <token> is required');
    try {
      req.approver = await verifier.verify(match[1]);
    } catch (err) {
      throw new HttpError(401, 'invalid_token', (err as Error).message);
    }
    next();
  };

  const requestIdParam = (req: Request): string => {
    const requestId = String(req.params.requestId ?? '');
    if (!IDENTIFIER_PATTERN.test(requestId)) {
      throw new HttpError(400, 'invalid_request_id', 'requestId must be 1-128 characters of letters, digits and . _ : @ -', ['requestId']);
    }
    return requestId;
  };

  /** The request's status, or 404 when it does not exist or belongs to another tenant. */
  const loadStatus = async (requestId: string, approver: Approver): Promise<RequestStatus> => {
    let status: RequestStatus;
    try {
      status = await client.workflow.getHandle(workflowIdFor(requestId)).query(statusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new HttpError(404, 'not_found', `no request ${requestId}`);
      throw err;
    }
    if (status.tenant !== approver.tenant) throw new HttpError(404, 'not_found', `no request ${requestId}`);
    return status;
  };

  const router = express.Router();
  router.use(authenticate);

  router.get('/', async (req: Authed, res) => {
    const approver = req.approver as Approver;
    const state = req.query.status ?? 'pending';
    if (state !== 'pending') throw new HttpError(400, 'invalid_query', 'status must be "pending"', ['status']);
    const limitText = typeof req.query.limit === 'string' ? req.query.limit : '100';
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > 500) {
      throw new HttpError(400, 'invalid_query', 'limit must be an integer from 1 to 500', ['limit']);
    }
    const query =
      `${searchAttributes.status.name} = 'pending_approval' AND ` +
      `${searchAttributes.tenant.name} = '${approver.tenant}' AND ExecutionStatus = 'Running'`;
    const items: ReturnType<typeof approvalView>[] = [];
    for await (const execution of client.workflow.list({ query, pageSize: 100 })) {
      if (items.length >= limit) break;
      try {
        const status = await client.workflow.getHandle(execution.workflowId).query(statusQuery);
        const view = approvalView(status, approver);
        if (view.canDecide) items.push(view);
      } catch (err) {
        logger.debug({ err, workflowId: execution.workflowId }, 'skipping a request that could not be queried');
      }
    }
    res.json({
      items: items.map(({ requestId, tenant, tool, risk, actor, digest, expiresAt, tier, eligibleGroups, approvals, reason }) => ({
        requestId,
        tenant,
        tool,
        risk,
        actor,
        digest,
        expiresAt,
        tier,
        eligibleGroups,
        approvals: approvals.length,
        reason,
      })),
    });
  });

  router.get('/:requestId', async (req: Authed, res) => {
    const approver = req.approver as Approver;
    const status = await loadStatus(requestIdParam(req), approver);
    res.json(approvalView(status, approver));
  });

  router.post('/:requestId/decision', async (req: Authed, res) => {
    const approver = req.approver as Approver;
    const requestId = requestIdParam(req);
    const body = DecisionBodySchema.safeParse(req.body ?? {});
    if (!body.success) {
      const issues = formatIssues(body.error);
      throw new HttpError(400, 'invalid_body', issues.join('; '), issues.map((issue) => issue.split(':')[0] ?? ''));
    }
    await loadStatus(requestId, approver);
    const handle = client.workflow.getHandle(workflowIdFor(requestId));
    try {
      const status = await handle.executeUpdate(decideUpdate, { args: [{ ...body.data, approver }] });
      logger.info({ requestId, approver: approver.id, decision: body.data.decision }, 'decision accepted');
      res.json(approvalView(status, approver));
    } catch (err) {
      const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type && REFUSAL_STATUS[cause.type]) {
        const [status, code] = REFUSAL_STATUS[cause.type] as [number, string];
        logger.warn({ requestId, approver: approver.id, refusal: cause.type }, 'decision refused');
        throw new HttpError(status, code, cause.message);
      }
      if (err instanceof WorkflowNotFoundError || /already completed/i.test((err as Error).message)) {
        throw new HttpError(409, 'not_pending', 'the request is no longer waiting for approval');
      }
      throw err;
    }
  });

  app.use('/v1/approvals', router);

  app.use((_req, _res, next) => next(new HttpError(404, 'not_found', 'no such route')));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof HttpError) {
      res.status(err.status);
      if (err.status === 401) res.set('WWW-Authenticate', `Bearer error="invalid_token"`);
      res.json({ error: { code: err.code, message: err.message, ...(err.fields ? { fields: err.fields } : {}) } });
      return;
    }
    const status = (err as { status?: number; type?: string }).status;
    if (status && status >= 400 && status < 500) {
      // body-parser errors: malformed JSON, too large, wrong content.
      res.status(status).json({ error: { code: 'invalid_body', message: `request body: ${(err as Error).message}` } });
      return;
    }
    logger.error({ err, path: req.path }, 'unhandled API error');
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  });
  return app;
}
