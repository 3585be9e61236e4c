/**
 * The approver HTTP API (express 5). Approvers authenticate with a bearer token or a signed
 * one-click link; decisions go to the request's workflow as a Temporal Update whose synchronous
 * validator has the final word. Every refused attempt on an existing request is recorded in that
 * request's history (who, when, why).
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import express, { type NextFunction, type Request, type Response } from 'express';
import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import {
  DecisionBodySchema,
  FailureTypes,
  IDENTIFIER_PATTERN,
  attemptRefusedSignal,
  decideUpdate,
  formatIssues,
  refuseDecision,
  searchAttributes,
  statusQuery,
  workflowIdFor,
  type Approver,
  type DecideInput,
  type DecisionChannel,
  type RefusalRecord,
  type RequestStatus,
} from '../shared/index.js';
import type { PayloadCodec } from '@temporalio/common';
import { createCodecRouter } from '../codec/router.js';
import { redactValue } from '../egress/redact.js';
import { AuditRecordError, buildAuditRecord } from '../audit/record.js';
import { bearerToken, opsCovers, opsScope } from './ops.js';
import { HttpError, errorHandler, isTemporalUnavailable } from './errors.js';
import { renderLinkPage, type LinkPageModel } from './link-page.js';
import type { VerifiedLink } from '../auth/links.js';
import type { ApproverVerifier } from '../auth/tokens.js';

export { HttpError } from './errors.js';

/** Verifies one-click link tokens (`LinkVerifier.verifyLink`, or a stand-in in tests). */
export interface LinkVerifierLike {
  verify(token: string, expected?: { requestId?: string }): Promise<VerifiedLink>;
}

/** What the API needs. */
export interface ApiDeps {
  client: Client;
  verifier: ApproverVerifier;
  /** Verifies one-click links; without it, `/v1/links` answers 404. */
  links?: LinkVerifierLike;
  logger: Logger;
  /** Extra routers mounted before the error handler (e.g. the agent API). */
  mount?: (app: express.Express) => void;
  /**
   * The remote codec endpoint at `/codec` (`POST /codec/decode`, `/codec/encode`) for the
   * Temporal UI: only for ops tokens (group `ops` or `ops:all`); CORS admits `uiOrigins`.
   */
  codec?: { codec: PayloadCodec; uiOrigins?: readonly string[] };
}

const REFUSAL_STATUS: Record<string, [number, string]> = {
  [FailureTypes.DigestMismatch]: [409, 'digest_mismatch'],
  [FailureTypes.NotPending]: [409, 'not_pending'],
  [FailureTypes.DuplicateVote]: [409, 'duplicate_vote'],
  [FailureTypes.LinkReused]: [409, 'link_reused'],
  [FailureTypes.NotEligible]: [403, 'not_eligible'],
  [FailureTypes.SelfApproval]: [403, 'self_approval'],
  [FailureTypes.WrongTenant]: [403, 'wrong_tenant'],
  [FailureTypes.InvalidDecision]: [400, 'invalid_decision'],
};

type Authed = Request & { approver?: Approver };

const requesterIds = (status: RequestStatus): string[] => [status.actor.id, ...(status.onBehalfOf ?? []).map((p) => p.id)];

/** A redacted copy of what approvers are shown (all rules): they decide on the shape of the call, not on its secrets. */
const redacted = <T>(value: T): T => redactValue(value).value;

/**
 * The approval view of a request: everything an approver must see before deciding. Arguments,
 * reasons and edits are redacted; the digests are those of the real request.
 */
export function approvalView(status: RequestStatus, approver: Approver) {
  const plan = status.decision?.approval;
  const refusal =
    status.state === 'pending_approval' && plan && status.digest
      ? refuseDecision(
          {
            pending: true,
            tenant: status.tenant,
            requesterIds: requesterIds(status),
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
    args: redacted(status.proposal?.args),
    risk: status.decision?.risk,
    rule: status.decision?.rule,
    reasons: redacted(status.decision?.reasons ?? []),
    policyDigest: status.decision?.policyDigest,
    toolDigest: status.decision?.toolDigest,
    runAs: status.decision?.runAs,
    actor: status.actor,
    onBehalfOf: status.onBehalfOf ?? [],
    reason: redacted(status.reason),
    traceId: status.traceId,
    digest: status.digest,
    expiresAt: status.expiresAt,
    tier: status.tier,
    eligibleGroups: status.eligibleGroups,
    plan: plan
      ? { name: plan.name, groups: plan.groups, allOf: plan.allOf, minApprovals: plan.minApprovals, rejectionsToDeny: plan.rejectionsToDeny }
      : undefined,
    approvals: redacted(status.approvals.filter((vote) => vote.digest === status.digest)),
    edits: status.edits.map((edit) => ({ ...edit, args: redacted(edit.args), ...(edit.reason === undefined ? {} : { reason: redacted(edit.reason) }) })),
    canDecide: refusal === undefined,
    ...(refusal ? { cannotDecideBecause: refusal.message } : {}),
    proposal: status.proposal ? { ...status.proposal, args: redacted(status.proposal.args) } : undefined,
    outcome: status.outcome ? { status: status.outcome.status } : undefined,
  };
}

/** Creates the express app serving `/healthz`, `/v1/approvals` and `/v1/links`. */
export function createApiApp(deps: ApiDeps): express.Express {
  const { client, verifier, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const handleOf = (requestId: string) => client.workflow.getHandle(workflowIdFor(requestId));

  /** Writes a refused attempt into the request's history; a request that is gone is only logged. */
  const recordRefusal = async (requestId: string, refusal: Omit<RefusalRecord, 'at'>): Promise<void> => {
    logger.warn({ requestId, ...refusal }, 'decision attempt refused');
    try {
      await handleOf(requestId).signal(attemptRefusedSignal, { ...refusal, at: new Date().toISOString() });
    } catch (err) {
      logger.debug({ err, requestId }, 'could not record the refusal in the request history');
    }
  };

  const requestIdParam = (req: Request): string => {
    const requestId = String(req.params.requestId ?? '');
    if (!IDENTIFIER_PATTERN.test(requestId)) {
      throw new HttpError(400, 'invalid_request_id', 'requestId must be 1-128 characters of letters, digits and . _ : @ -', ['requestId']);
    }
    return requestId;
  };

  /**
   * 404 unless the request exists and belongs to the approver's tenant; another tenant's request is
   * a recorded 404. Answered by the server from the search attributes, so it needs no worker.
   */
  const checkScope = async (requestId: string, approver: Approver, via: DecisionChannel, attempt?: string): Promise<void> => {
    let tenant: string | undefined;
    try {
      tenant = (await handleOf(requestId).describe()).typedSearchAttributes.get(searchAttributes.tenant);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new HttpError(404, 'not_found', `no request ${requestId}`);
      throw unavailable(err);
    }
    if (tenant !== approver.tenant) {
      if (attempt) {
        await recordRefusal(requestId, {
          approverId: approver.id,
          tenant: approver.tenant,
          via,
          decision: attempt,
          code: 'wrong_tenant',
          message: `approver of tenant ${approver.tenant} tried to decide a request of another tenant`,
        });
      }
      throw new HttpError(404, 'not_found', `no request ${requestId}`);
    }
  };

  /** The request's status (after `checkScope`); 503 when no worker answers the query. */
  const loadStatus = async (requestId: string, approver: Approver, via: DecisionChannel, attempt?: string): Promise<RequestStatus> => {
    await checkScope(requestId, approver, via, attempt);
    try {
      return await handleOf(requestId).query(statusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new HttpError(404, 'not_found', `no request ${requestId}`);
      throw unavailable(err);
    }
  };

  /** Sends a decision to the workflow; a refusal is recorded and becomes an HttpError. */
  const decide = async (requestId: string, input: DecideInput): Promise<RequestStatus> => {
    try {
      const status = await handleOf(requestId).executeUpdate(decideUpdate, { args: [input] });
      logger.info({ requestId, approver: input.approver.id, decision: input.decision, via: input.via ?? 'api' }, 'decision accepted');
      return status;
    } catch (err) {
      const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
      let refused: HttpError | undefined;
      if (cause instanceof ApplicationFailure && cause.type && REFUSAL_STATUS[cause.type]) {
        const [httpStatus, code] = REFUSAL_STATUS[cause.type] as [number, string];
        refused = new HttpError(httpStatus, code, cause.message);
      } else if (err instanceof WorkflowNotFoundError || /already completed/i.test((err as Error).message)) {
        refused = new HttpError(409, 'not_pending', 'the request is no longer waiting for approval');
      }
      if (!refused) throw unavailable(err);
      await recordRefusal(requestId, {
        approverId: input.approver.id,
        tenant: input.approver.tenant,
        via: input.via ?? 'api',
        decision: input.decision,
        digest: input.digest,
        code: refused.code,
        message: refused.message,
      });
      throw refused;
    }
  };

  const router = express.Router();
  router.use(express.json({ limit: '256kb', strict: true }));
  router.use(async (req: Authed, _res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
    try {
      if (!match?.[1]) throw new HttpError(401, 'unauthenticated', 'Authorization: Bearer <token> is required');
      try {
        req.approver = await verifier.verify(match[1]);
      } catch (err) {
        // The identity provider's keys could not be fetched: the token was not judged, so say so.
        if ((err as { reason?: string }).reason === 'key_unavailable') {
          throw new HttpError(503, 'identity_provider_unavailable', (err as Error).message);
        }
        throw new HttpError(401, 'invalid_token', (err as Error).message);
      }
    } catch (err) {
      // A failed attempt to decide an existing request is part of that request's record.
      const decision = /^\/([^/]+)\/decision$/.exec(req.path);
      if (req.method === 'POST' && decision?.[1] && IDENTIFIER_PATTERN.test(decision[1])) {
        await recordRefusal(decision[1], {
          approverId: null,
          ...(match?.[1] ? { claimedId: claimedSubject(match[1]) } : {}),
          via: 'api',
          code: (err as HttpError).code,
          message: (err as Error).message,
        });
      }
      throw err;
    }
    next();
  });

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
        const view = approvalView(await client.workflow.getHandle(execution.workflowId).query(statusQuery), approver);
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
    res.json(approvalView(await loadStatus(requestIdParam(req), approver, 'api'), approver));
  });

  router.post('/:requestId/decision', async (req: Authed, res) => {
    const approver = req.approver as Approver;
    const requestId = requestIdParam(req);
    const body = DecisionBodySchema.safeParse(req.body ?? {});
    if (!body.success) {
      const issues = formatIssues(body.error);
      throw new HttpError(400, 'invalid_body', issues.join('; '), issues.map((issue) => issue.split(':')[0] ?? ''));
    }
    await checkScope(requestId, approver, 'api', body.data.decision);
    const status = await decide(requestId, { ...body.data, approver, via: 'api' });
    res.json(approvalView(status, approver));
  });

  app.use('/v1/approvals', router);

  // The audit record of a request, derived from its history: for ops (group `ops`: their tenant; `ops:all`: every tenant).
  app.get('/v1/audit/:requestId', async (req, res) => {
    const token = bearerToken(req);
    if (!token) throw new HttpError(401, 'unauthenticated', 'Authorization: Bearer <token> is required');
    let approver: Approver;
    try {
      approver = await verifier.verify(token);
    } catch (err) {
      throw new HttpError(401, 'invalid_token', (err as Error).message);
    }
    const scope = opsScope(approver);
    if (!scope) throw new HttpError(403, 'not_ops', 'audit records are for ops: a token with group "ops" (own tenant) or "ops:all"');
    const requestId = requestIdParam(req);
    let record;
    try {
      record = await buildAuditRecord(client, requestId);
    } catch (err) {
      if (err instanceof AuditRecordError) throw new HttpError(404, 'not_found', `no request ${requestId}`);
      throw err;
    }
    if (!opsCovers(scope, record.initiatedBy.tenant)) throw new HttpError(404, 'not_found', `no request ${requestId}`);
    logger.info({ requestId, ops: approver.id }, 'audit record read');
    res.json(record);
  });

  if (deps.codec) {
    app.use(
      '/codec',
      createCodecRouter({
        codec: deps.codec.codec,
        uiOrigins: deps.codec.uiOrigins ?? [],
        authorize: async (req) => {
          const token = bearerToken(req);
          if (!token) return false;
          const scope = opsScope(await verifier.verify(token));
          if (scope) logger.info({ approver: scope.approver.id, path: req.path }, 'codec endpoint used');
          return scope !== undefined;
        },
      }),
    );
  }
  if (deps.links) mountLinks(app, deps.links, { loadStatus, decide, recordRefusal });
  deps.mount?.(app);

  app.use((_req, _res, next) => next(new HttpError(404, 'not_found', 'no such route')));
  app.use(errorHandler(logger, 'API'));
  return app;
}

/**
 * A Temporal call that timed out or found no one to answer (typically: no worker is running) is a
 * 503 with Retry-After, not an internal error; anything else is passed on unchanged.
 */
function unavailable(err: unknown): unknown {
  return isTemporalUnavailable(err)
    ? new HttpError(503, 'worker_unavailable', 'the gateway could not reach a worker in time; retry shortly', undefined, 5)
    : err;
}

/** The unverified `sub` of a token, for the record of a refused attempt; never trusted. */
function claimedSubject(token: string): string | undefined {
  try {
    const sub = decodeJwt(token).sub;
    return typeof sub === 'string' ? sub.slice(0, 128) : undefined;
  } catch {
    return undefined;
  }
}

interface LinkHelpers {
  loadStatus(requestId: string, approver: Approver, via: DecisionChannel, attempt?: string): Promise<RequestStatus>;
  decide(requestId: string, input: DecideInput): Promise<RequestStatus>;
  recordRefusal(requestId: string, refusal: Omit<RefusalRecord, 'at'>): Promise<void>;
}

/**
 * One-click links: `GET /v1/links/:token` shows a confirmation page and changes nothing (link
 * scanners and previews must not approve); `POST` from that page decides, once.
 */
function mountLinks(app: express.Express, links: LinkVerifierLike, helpers: LinkHelpers): void {
  const send = (res: Response, status: number, model: LinkPageModel) => {
    res
      .status(status)
      .set({
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
        'X-Frame-Options': 'DENY',
        'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      })
      .send(renderLinkPage(model));
  };

  const verify = async (token: string, res: Response, attempt?: string) => {
    try {
      return await links.verify(token);
    } catch (err) {
      const claimed = unverifiedLinkClaims(token);
      if (attempt && claimed.requestId) {
        await helpers.recordRefusal(claimed.requestId, {
          approverId: null,
          ...(claimed.sub ? { claimedId: claimed.sub } : {}),
          via: 'link',
          decision: attempt,
          code: 'invalid_link',
          message: (err as Error).message,
        });
      }
      send(res, 401, { kind: 'error', title: 'This link cannot be used', message: (err as Error).message });
      return undefined;
    }
  };

  app.get('/v1/links/:token', async (req, res) => {
    const claims = await verify(String(req.params.token), res);
    if (!claims) return;
    const status = await helpers.loadStatus(claims.requestId, claims.approver, 'link').catch((err: unknown) => {
      if (err instanceof HttpError) return undefined;
      throw err;
    });
    if (!status) {
      send(res, 404, { kind: 'error', title: 'Request not found', message: `no request ${claims.requestId}` });
      return;
    }
    const view = approvalView(status, claims.approver);
    const changed = status.digest !== claims.digest;
    send(res, 200, {
      kind: 'confirm',
      view,
      approverId: claims.approver.id,
      decisions: claims.decision ? [claims.decision] : ['approve', 'reject'],
      linkExpiresAt: claims.expiresAt,
      ...(changed ? { warning: 'The request changed since this link was sent; it can no longer be decided with this link.' } : {}),
    });
  });

  app.post('/v1/links/:token', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const decision = form.decision;
    const claims = await verify(String(req.params.token), res, typeof decision === 'string' ? decision : 'unknown');
    if (!claims) return;
    if (decision !== 'approve' && decision !== 'reject') {
      send(res, 400, { kind: 'error', title: 'No decision', message: 'decision must be "approve" or "reject"' });
      return;
    }
    if (claims.decision && claims.decision !== decision) {
      await helpers.recordRefusal(claims.requestId, {
        approverId: claims.approver.id,
        tenant: claims.approver.tenant,
        via: 'link',
        decision,
        code: 'invalid_decision',
        message: `this link can only ${claims.decision}`,
      });
      send(res, 400, { kind: 'error', title: 'Wrong decision', message: `this link can only ${claims.decision}` });
      return;
    }
    try {
      await helpers.loadStatus(claims.requestId, claims.approver, 'link', decision);
      const status = await helpers.decide(claims.requestId, {
        decision,
        digest: claims.digest,
        approver: claims.approver,
        via: 'link',
        linkNonce: claims.jti,
      });
      send(res, 200, { kind: 'done', title: decision === 'approve' ? 'Approved' : 'Rejected', message: `Recorded for request ${status.requestId}.` });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      send(res, err.status, { kind: 'error', title: 'Not recorded', message: err.message });
    }
  });
}

/** The unverified request id and subject of a link token, to record a refused attempt. */
function unverifiedLinkClaims(token: string): { requestId?: string; sub?: string } {
  try {
    const claims = decodeJwt(token);
    const requestId = typeof claims.request_id === 'string' && IDENTIFIER_PATTERN.test(claims.request_id) ? claims.request_id : undefined;
    return { ...(requestId ? { requestId } : {}), ...(typeof claims.sub === 'string' ? { sub: claims.sub.slice(0, 128) } : {}) };
  } catch {
    return {};
  }
}
