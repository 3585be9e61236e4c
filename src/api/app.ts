/**
 * The approver HTTP API (express 5). Approvers authenticate with a bearer token or a signed
 * one-click link; the API then signs a decision assertion — who, of which tenant and groups,
 * decided what, on which digest of which run, through which channel — and sends it to the
 * request's workflow as a Temporal Update, whose validator verifies the signature and applies the
 * approval rules with the final word. An authenticated approver's refused attempt is recorded in
 * the request's history by the workflow (bounded); anonymous or invalid attempts are logged and
 * counted, never written into any history.
 */
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import express, { type NextFunction, type Request, type Response } from 'express';
import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import {
  DecisionBodySchema,
  PreviewBodySchema,
  eligibleGroups,
  IDENTIFIER_PATTERN,
  formatIssues,
  searchAttributes,
  statusQuery,
  workflowIdFor,
  type Approver,
  type DecideInput,
  type DecisionChannel,
  type RequestStatus,
} from '../shared/index.js';
import { createCodecRouter } from '../codec/router.js';
import { metricsExposition, pendingApprovalsRegistry, refusedAttempts } from '../metrics.js';
import type { DecisionSigner } from '../trust/signers.js';
import { DecisionSender, unavailable } from './decisions.js';
import type { FrontDoor } from './front-door.js';
import { createLinkedRouter } from './linked.js';
import { redactValue } from '../egress/redact.js';
import { decide as decidePolicy } from '../policy/index.js';
import type { PolicyStore } from '../policy-store.js';
import { approvalView } from '../approvals/view.js';
import { InvalidPageTokenError, MAX_WAITING_PAGE_SIZE, listWaitingFor } from '../approvals/waiting.js';
import { AuditRecordError, buildAuditRecord } from '../audit/record.js';
import { bearerToken, opsCovers, opsScope } from './ops.js';
import { HttpError, errorHandler } from './errors.js';
import { renderLinkPage, type LinkPageModel } from './link-page.js';
import type { VerifiedLink } from '../auth/links.js';
import type { ApproverVerifier } from '../auth/tokens.js';

export { HttpError };

/** Verifies one-click link tokens (`LinkVerifier.verifyLink`, or a stand-in in tests). */
export interface LinkVerifierLike {
  verify(token: string, expected?: { requestId?: string }): Promise<VerifiedLink>;
}

/** What the API needs. */
export interface ApiDeps {
  client: Client;
  verifier: ApproverVerifier;
  /** Signs the decisions of the approvers this API authenticated; the workflow verifies them. */
  decisions: DecisionSigner;
  /** Verifies one-click links; without it, `/v1/links` answers 404. */
  links?: LinkVerifierLike;
  /**
   * The front door (its request-signing key): lets approvers start linked requests, a break-glass
   * override of a denial or the rollback of a completed request (`POST /v1/approvals/:id/override`,
   * `/rollback`). Without it, those answer 503 `requests_unavailable`.
   */
  frontDoor?: FrontDoor;
  logger: Logger;
  /** Extra routers mounted before the error handler (e.g. the agent API). */
  mount?: (app: express.Express) => void;
  /**
   * The policy files in force (the workers' own): lets approvers see a tool's argument schema and
   * preview what policy would decide on edited arguments. Without it, neither is offered (404).
   */
  policy?: PolicyStore;
  /**
   * The remote codec endpoint at `/codec` (`POST /codec/decode`, `/codec/encode`) for the
   * Temporal UI: only for ops tokens (group `ops` or `ops:all`); CORS admits `uiOrigins`.
   */
  codec?: {
    codec: PayloadCodec;
    uiOrigins?: readonly string[];
    /**
     * Local development only (`toolgate dev` sets it): a codec call without a token is answered
     * for every tenant when it comes from one of these Temporal UI origins over a loopback
     * connection — the dev UI has no login to send a token with. Refused when NODE_ENV is
     * `production`; the browser sets Origin, so another website cannot claim to be the UI.
     */
    devTrustedUiOrigins?: readonly string[];
  };
}

type Authed = Request & { approver?: Approver };

/** A redacted copy of what approvers are shown (all rules): they decide on the shape of the call, not on its secrets. */
const redacted = <T>(value: T): T => redactValue(value).value;

/** Creates the express app serving `/healthz`, `/v1/approvals` and `/v1/links`. */
export function createApiApp(deps: ApiDeps): express.Express {
  const { client, verifier, logger } = deps;
  const decisions = new DecisionSender(deps.decisions, logger);
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // Healthy means able to serve: Temporal answers and the namespace exists. Cached a second, so a
  // load balancer polling it does not become load on Temporal.
  let health: { at: number; answer: Promise<{ ok: boolean; detail: string }> } | undefined;
  const checkTemporal = (): Promise<{ ok: boolean; detail: string }> => {
    if (health && Date.now() - health.at < 1_000) return health.answer;
    const namespace = client.options.namespace;
    const answer = client.workflowService.describeNamespace({ namespace }).then(
      () => ({ ok: true, detail: `namespace ${namespace} described` }),
      (err: unknown) => ({ ok: false, detail: `Temporal did not describe namespace ${namespace}: ${(err as Error).message}` }),
    );
    const bounded = Promise.race([
      answer,
      new Promise<{ ok: boolean; detail: string }>((resolve) =>
        setTimeout(() => resolve({ ok: false, detail: 'Temporal did not answer within 2 s' }), 2_000).unref(),
      ),
    ]);
    health = { at: Date.now(), answer: bounded };
    return bounded;
  };
  app.get('/healthz', async (_req, res) => {
    const temporal = await checkTemporal();
    res.status(temporal.ok ? 200 : 503).json({ status: temporal.ok ? 'ok' : 'unavailable', temporal: temporal.detail });
  });
  // This process's metrics (and, in `toolgate dev`, its worker's and the Temporal SDK's), plus the
  // requests waiting for approval across the deployment, counted by visibility at scrape time.
  const pendingApprovals = pendingApprovalsRegistry(client, { logger });
  app.get('/metrics', async (_req, res) => {
    const { contentType, text } = await metricsExposition([pendingApprovals]);
    res.set('Content-Type', contentType).send(text);
  });

  /** The handle of a request of the approver's tenant: request ids are namespaced per tenant, so another tenant's request is never even addressed. */
  const handleOf = (tenant: string, requestId: string) => client.workflow.getHandle(workflowIdFor(tenant, requestId));

  /** Logs and counts a refused attempt that no history records (anonymous, invalid, another tenant's request). */
  const refusedAtEdge = (surface: string, code: string, details: Record<string, unknown>): void => {
    refusedAttempts.inc({ surface, code });
    logger.warn({ event: 'attempt_refused', surface, code, ...details }, 'attempt refused at the edge (not recorded in any history)');
  };

  const requestIdParam = (req: Request): string => {
    const requestId = String(req.params.requestId ?? '');
    if (!IDENTIFIER_PATTERN.test(requestId)) {
      throw new HttpError(400, 'invalid_request_id', 'requestId must be 1-128 characters of letters, digits and . _ : @ -', ['requestId']);
    }
    return requestId;
  };

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
    return { handle, runId: description.runId };
  };

  /** The request's status (after `checkScope`); 503 when no worker answers the query. */
  const loadStatus = async (requestId: string, approver: Approver, via: DecisionChannel): Promise<RequestStatus> => {
    const { handle } = await checkScope(requestId, approver, via);
    try {
      return await handle.query(statusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new HttpError(404, 'not_found', `no request ${requestId}`);
      throw unavailable(err);
    }
  };

  /**
   * Signs the decision of an authenticated approver and sends it to the request's run. The
   * workflow verifies the signature and judges the decision; a refusal becomes an HttpError (and
   * is recorded in the history by the workflow when the approver still has a share of the record).
   */
  const decide = async (requestId: string, input: DecideInput): Promise<RequestStatus> => {
    const { handle, runId } = await checkScope(requestId, input.approver, input.via ?? 'api');
    return decisions.send(requestId, client.workflow.getHandle(handle.workflowId, runId), runId, input);
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
    const status = await loadStatus(requestIdParam(req), approver, 'api');
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
    if (!policy) throw new HttpError(404, 'not_found', 'no such route');
    const body = PreviewBodySchema.safeParse(req.body ?? {});
    if (!body.success) {
      const issues = formatIssues(body.error);
      throw new HttpError(
        400,
        'invalid_body',
        issues.join('; '),
        issues.map((issue) => issue.split(':')[0] ?? ''),
      );
    }
    const status = await loadStatus(requestIdParam(req), approver, 'api');
    const view = approvalView(status, approver);
    if (status.state !== 'pending_approval') throw new HttpError(409, 'not_pending', 'the request is not waiting for approval');
    if (status.digest !== body.data.digest) throw new HttpError(409, 'digest_mismatch', 'the request changed since you read it; read it again');
    if (!view.canDecide) throw new HttpError(403, 'not_eligible', 'you may not decide this request');
    const decision = decidePolicy(policy, {
      requestId: status.requestId,
      actor: status.actor,
      tenant: status.tenant,
      environment: status.environment,
      tool: status.tool,
      args: body.data.args,
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
    const body = DecisionBodySchema.safeParse(req.body ?? {});
    if (!body.success) {
      const issues = formatIssues(body.error);
      throw new HttpError(
        400,
        'invalid_body',
        issues.join('; '),
        issues.map((issue) => issue.split(':')[0] ?? ''),
      );
    }
    const status = await decide(requestId, { ...body.data, approver, via: 'api' });
    res.json(approvalView(status, approver));
  });

  // Break-glass overrides and rollbacks: new requests linked to one of the approver's tenant (src/api/linked.ts).
  router.use(createLinkedRouter({ client, logger, ...(deps.frontDoor ? { frontDoor: deps.frontDoor } : {}), ...(deps.policy ? { policy: deps.policy } : {}) }));

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
    const tenantParam = req.query.tenant;
    if (tenantParam !== undefined && (typeof tenantParam !== 'string' || !IDENTIFIER_PATTERN.test(tenantParam))) {
      throw new HttpError(400, 'invalid_query', 'tenant must be a tenant id', ['tenant']);
    }
    // Request ids are namespaced per tenant: ops of one tenant read their own; ops:all names the tenant.
    const tenant = typeof tenantParam === 'string' ? tenantParam : approver.tenant;
    if (!opsCovers(scope, tenant)) throw new HttpError(404, 'not_found', `no request ${requestId}`);
    let record;
    try {
      record = await buildAuditRecord(client, tenant, requestId);
    } catch (err) {
      if (err instanceof AuditRecordError) throw new HttpError(404, 'not_found', `no request ${requestId}`);
      throw err;
    }
    if (!opsCovers(scope, record.initiatedBy.tenant)) throw new HttpError(404, 'not_found', `no request ${requestId}`);
    logger.info({ requestId, ops: approver.id }, 'audit record read');
    res.json(record);
  });

  if (deps.codec) {
    const devUiOrigins = new Set(deps.codec.devTrustedUiOrigins ?? []);
    if (devUiOrigins.size > 0 && process.env.NODE_ENV === 'production') {
      throw new Error('the dev-only codec trust of the local Temporal UI (toolgate dev) is refused when NODE_ENV=production');
    }
    app.use(
      '/codec',
      createCodecRouter({
        codec: deps.codec.codec,
        uiOrigins: deps.codec.uiOrigins ?? [],
        // Tenant ops decode only their tenant's payloads (each payload is tagged and keyed per tenant); ops:all decodes all.
        authorize: async (req) => {
          const token = bearerToken(req);
          if (!token) {
            const origin = req.get('origin');
            if (devUiOrigins.size > 0 && origin !== undefined && devUiOrigins.has(origin) && isLoopbackAddress(req.socket.remoteAddress) && !proxied(req)) {
              logger.debug({ origin, path: req.path }, 'codec endpoint used by the local dev UI');
              return { allTenants: true };
            }
            return undefined;
          }
          const scope = opsScope(await verifier.verify(token));
          if (!scope) return undefined;
          logger.info({ approver: scope.approver.id, tenant: scope.approver.tenant, allTenants: scope.allTenants, path: req.path }, 'codec endpoint used');
          return scope.allTenants ? { allTenants: true } : { allTenants: false, tenant: scope.approver.tenant };
        },
      }),
    );
  }
  if (deps.links) mountLinks(app, deps.links, { loadStatus, decide, refusedAtEdge });
  deps.mount?.(app);

  app.use((_req, _res, next) => next(new HttpError(404, 'not_found', 'no such route')));
  app.use(errorHandler(logger, 'API'));
  return app;
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
  loadStatus(requestId: string, approver: Approver, via: DecisionChannel): Promise<RequestStatus>;
  decide(requestId: string, input: DecideInput): Promise<RequestStatus>;
  refusedAtEdge(surface: string, code: string, details: Record<string, unknown>): void;
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

  const verify = async (token: string, res: Response, attempt?: string, options: { expiredToInbox?: boolean } = {}) => {
    try {
      return await links.verify(token);
    } catch (err) {
      // A link that does not verify authenticates nobody: logged and counted, never recorded in a history.
      helpers.refusedAtEdge('link', 'invalid_link', {
        ...unverifiedLinkClaims(token),
        ...(attempt ? { decision: attempt } : {}),
        reason: (err as Error).message,
      });
      // Expiry is judged after the signature: a genuine link that only ran out leads to the inbox's
      // sign-in and then the same request, instead of a dead end. It grants nothing by itself.
      if (options.expiredToInbox && (err as { reason?: string }).reason === 'expired') {
        res.redirect(303, `/inbox/from-link/${encodeURIComponent(token)}`);
        return undefined;
      }
      send(res, 401, { kind: 'error', title: 'This link cannot be used', message: (err as Error).message });
      return undefined;
    }
  };

  app.get('/v1/links/:token', async (req, res) => {
    const claims = await verify(String(req.params.token), res, undefined, { expiredToInbox: true });
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
      helpers.refusedAtEdge('link', 'invalid_decision', { requestId: claims.requestId, approver: claims.approver.id, decision });
      send(res, 400, { kind: 'error', title: 'Wrong decision', message: `this link can only ${claims.decision}` });
      return;
    }
    try {
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

/** Whether a socket's peer is this machine (127.0.0.0/8, ::1, or IPv4-mapped loopback). */
function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}

/**
 * Whether a request came through a proxy or tunnel: those connect from loopback on behalf of
 * someone else, so the dev UI's loopback trust must not extend to them. A request naming a Host
 * other than a loopback one, or carrying forwarding headers, is treated as proxied.
 */
function proxied(req: Request): boolean {
  if (req.get('forwarded') !== undefined || req.get('via') !== undefined) return true;
  if (Object.keys(req.headers).some((name) => name.startsWith('x-forwarded-'))) return true;
  const host = (req.get('host') ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return !(host === 'localhost' || host === '::1' || /^127\./.test(host));
}
