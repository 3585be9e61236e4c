/**
 * The approver HTTP API (express 5): the wiring of its routers, in order. Approvers authenticate
 * with a bearer token or a signed one-click link; the API then signs a decision assertion — who,
 * of which tenant and groups, decided what, on which digest of which run, through which channel —
 * and sends it to the request's workflow as a Temporal Update, whose validator verifies the
 * signature and applies the approval rules with the final word. An authenticated approver's
 * refused attempt is recorded in the request's history by the workflow (bounded); anonymous or
 * invalid attempts are logged and counted, never written into any history.
 *
 *   /healthz, /metrics   monitoring-router.ts
 *   /v1/approvals        approvals-router.ts (with linked.ts: override, rollback)
 *   /v1/audit            audit-router.ts
 *   /codec               codec-router.ts
 *   /v1/links            links-router.ts (with link-page.ts)
 *   `mount`              e.g. the agent API (agents.ts) and the inbox
 */
import type { Client } from '@temporalio/client';
import express from 'express';
import type { Logger } from 'pino';
import type { ApproverVerifier } from '../auth/tokens.js';
import type { PolicyStore } from '../policy/store.js';
import type { DecisionSigner } from '../trust/signers.js';
import { createApprovalsRouter } from './approvals-router.js';
import { createAuditRouter } from './audit-router.js';
import { createApiCodecRouter, type ApiCodecOptions } from './codec-router.js';
import { DecisionSender } from './decisions.js';
import { HttpError, errorHandler } from './errors.js';
import type { FrontDoor } from './front-door.js';
import { createLinksRouter, type LinkVerifierLike } from './links-router.js';
import { createMonitoringRouter } from './monitoring-router.js';
import { edgeRefusals, requestAccess } from './request-access.js';
import type { KnownRuns } from './known-runs.js';

export { HttpError };
export type { LinkVerifierLike };

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
  /**
   * The runs this process has seen (give the front door the same one): decisions to them are sent
   * without a describe first. Default: a cache of the runs approvers' reads found.
   */
  runs?: KnownRuns;
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
  codec?: ApiCodecOptions;
}

/** Creates the express app serving `/healthz`, `/metrics`, `/v1/approvals`, `/v1/audit`, `/codec`, `/v1/links` and what `mount` adds. */
export function createApiApp(deps: ApiDeps): express.Express {
  const { client, verifier, logger } = deps;
  const refusedAtEdge = edgeRefusals(logger);
  const access = requestAccess(client, new DecisionSender(deps.decisions, logger), refusedAtEdge, deps.runs);
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.use(createMonitoringRouter({ client, logger }));
  app.use(
    '/v1/approvals',
    createApprovalsRouter({
      client,
      verifier,
      access,
      refusedAtEdge,
      logger,
      ...(deps.policy ? { policy: deps.policy } : {}),
      ...(deps.frontDoor ? { frontDoor: deps.frontDoor } : {}),
    }),
  );
  app.use('/v1/audit', createAuditRouter({ client, verifier, logger }));
  if (deps.codec) app.use('/codec', createApiCodecRouter(deps.codec, { verifier, logger }));
  if (deps.links) app.use('/v1/links', createLinksRouter({ links: deps.links, access, refusedAtEdge }));
  deps.mount?.(app);

  app.use((_req, _res, next) => next(new HttpError(404, 'not_found', 'no such route')));
  app.use(errorHandler(logger, 'API'));
  return app;
}
