/**
 * The approval API, mounted at `/v1/approvals`, for approvers with a bearer token:
 *  - `GET /` — "waiting for me" (from visibility alone, src/approvals/waiting.ts);
 *  - `GET /:requestId` — the approver's view of one request (src/approvals/view.ts);
 *  - `POST /:requestId/preview` — what policy would decide on edited arguments (records nothing);
 *  - `POST /:requestId/decision` — approve, reject or edit: signed as a decision assertion and
 *    sent to the request's run, whose validator has the final word;
 *  - `POST /:requestId/override`, `/rollback` — linked requests (src/api/linked.ts).
 * A missing or invalid token is refused here, logged and counted, and never written into a history.
 */
import type { Client } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import { approvalView } from '../approvals/view.js';
import { InvalidPageTokenError, MAX_WAITING_PAGE_SIZE, listWaitingFor } from '../approvals/waiting.js';
import type { ApproverVerifier } from '../auth/tokens.js';
import { redactValue } from '../egress/redact.js';
import { decide as decidePolicy } from '../policy/index.js';
import type { PolicyStore } from '../policy/store.js';
import { DecisionBodySchema, PreviewBodySchema, eligibleGroups, type Approver } from '../shared/index.js';
import { HttpError, parseBody } from './errors.js';
import type { FrontDoor } from './front-door.js';
import { createLinkedRouter } from './linked.js';
import { requestIdParam, type RefusedAtEdge, type RequestAccess } from './request-access.js';

/** What the approval routes need. */
export interface ApprovalsRouterDeps {
  client: Client;
  verifier: ApproverVerifier;
  /** Reads and decides requests of the approver's tenant. */
  access: RequestAccess;
  refusedAtEdge: RefusedAtEdge;
  logger: Logger;
  /** The policy files in force: the argument schema in the view and the edit preview (404 without). */
  policy?: PolicyStore;
  /** Starts linked requests (override, rollback); without it those answer 503 `requests_unavailable`. */
  frontDoor?: FrontDoor;
}

type Authed = Request & { approver?: Approver };

/** A redacted copy of what approvers are shown (all rules): they decide on the shape of the call, not on its secrets. */
const redacted = <T>(value: T): T => redactValue(value).value;

/** The router of `/v1/approvals`: JSON bodies, approver authentication, then the routes. */
export function createApprovalsRouter(deps: ApprovalsRouterDeps): express.Router {
  const { client, verifier, access, refusedAtEdge, logger } = deps;
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
      // Anonymous or invalid: logged and counted, never written into a request's history.
      refusedAtEdge('approvals', (err as HttpError).code, {
        path: req.path,
        method: req.method,
        ...(match?.[1] ? { claimedId: claimedSubject(match[1]) } : {}),
      });
      throw err;
    }
    next();
  });

  // "Waiting for me", from visibility alone: no workflow is asked, no worker needed (src/approvals/waiting.ts).
  router.get('/', async (req: Authed, res) => {
    const approver = req.approver as Approver;
    const state = req.query.status ?? 'pending';
    if (state !== 'pending') throw new HttpError(400, 'invalid_query', 'status must be "pending"', ['status']);
    const limitText = typeof req.query.limit === 'string' ? req.query.limit : '100';
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_WAITING_PAGE_SIZE) {
      throw new HttpError(400, 'invalid_query', `limit must be an integer from 1 to ${MAX_WAITING_PAGE_SIZE}`, ['limit']);
    }
    const pageToken = req.query.pageToken;
    if (pageToken !== undefined && typeof pageToken !== 'string') throw new HttpError(400, 'invalid_query', 'pageToken must be one string', ['pageToken']);
    let page;
    try {
      page = await listWaitingFor(client, approver, { pageSize: limit, ...(pageToken === undefined ? {} : { pageToken }) });
    } catch (err) {
      if (err instanceof InvalidPageTokenError) throw new HttpError(400, 'invalid_query', err.message, ['pageToken']);
      throw err;
    }
    res.json({
      items: page.items.map(({ requestId, tenant, tool, risk, actor, tier, eligibleGroups, expiresAt, startedAt, voters }) => ({
        requestId,
        tenant,
        tool,
        risk,
        actor,
        tier,
        eligibleGroups,
        expiresAt,
        startedAt,
        approvals: voters.length,
      })),
      ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
    });
  });

  router.get('/:requestId', async (req: Authed, res) => {
    const approver = req.approver as Approver;
    const status = await access.loadStatus(requestIdParam(req), approver, 'api');
    const argsSchema = deps.policy?.current().policy?.manifest(status.tool)?.argsSchema;
    res.json({ ...approvalView(status, approver), ...(argsSchema ? { argsSchema } : {}) });
  });

  /**
   * What policy would decide on edited arguments, before the approver sends the edit: the policy
   * files this API holds, applied to the request with the new arguments. Records nothing; the
   * worker judges the real edit (with rate limits and kill switches, which a preview leaves out).
   */
  router.post('/:requestId/preview', async (req: Authed, res) => {
    const approver = req.approver as Approver;
    const policy = deps.policy?.current().policy;
    if (!policy) throw new HttpError('preview_unavailable', 'no such route: this gateway holds no policy to preview edits with');
    const body = parseBody(PreviewBodySchema, req.body);
    const status = await access.loadStatus(requestIdParam(req), approver, 'api');
    const view = approvalView(status, approver);
    if (status.state !== 'pending_approval') throw new HttpError(409, 'not_pending', 'the request is not waiting for approval');
    if (status.digest !== body.digest) throw new HttpError(409, 'digest_mismatch', 'the request changed since you read it; read it again');
    if (!view.canDecide) throw new HttpError(403, 'not_eligible', 'you may not decide this request');
    const decision = decidePolicy(policy, {
      requestId: status.requestId,
      actor: status.actor,
      tenant: status.tenant,
      environment: status.environment,
      tool: status.tool,
      args: body.args,
      ...(status.onBehalfOf ? { onBehalfOf: status.onBehalfOf } : {}),
      ...(status.reason === undefined ? {} : { reason: status.reason }),
      // Edits keep the admitted flags: without them the preview could say allow where the worker says approve.
      ...(status.proposal?.provenance ? { provenance: status.proposal.provenance } : {}),
    });
    logger.info({ requestId: status.requestId, approver: approver.id, outcome: decision.outcome, rule: decision.rule }, 'edit previewed');
    res.json({
      decision: {
        outcome: decision.outcome,
        risk: decision.risk,
        rule: decision.rule,
        reasons: redacted(decision.reasons),
        ...(decision.code ? { code: decision.code } : {}),
      },
      ...(decision.approval ? { eligibleGroups: eligibleGroups(decision.approval, 0) } : {}),
    });
  });

  router.post('/:requestId/decision', async (req: Authed, res) => {
    const approver = req.approver as Approver;
    const requestId = requestIdParam(req);
    const body = parseBody(DecisionBodySchema, req.body);
    const status = await access.decide(requestId, { ...body, approver, via: 'api' });
    res.json(approvalView(status, approver));
  });

  // Break-glass overrides and rollbacks: new requests linked to one of the approver's tenant (src/api/linked.ts).
  router.use(createLinkedRouter({ client, logger, ...(deps.frontDoor ? { frontDoor: deps.frontDoor } : {}), ...(deps.policy ? { policy: deps.policy } : {}) }));
  return router;
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
