/**
 * The HTTP API for agents in any language, mounted at `/v1/tool-requests`: submit a tool request
 * as the agent a bearer token identifies, optionally wait up to 60 s for its outcome, and read a
 * request's state later. The same requestId twice is one request; errors have the approval API's
 * shape, `{ error: { code, message, fields? } }`.
 */
import { HttpError, errorHandler, isTemporalUnavailable } from './errors.js';
import { WorkflowNotFoundError } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AgentIdentity, AgentVerifier } from '../auth/agent-tokens.js';
import { InvalidToolRequest, RequestConflict } from '../client/errors.js';
import type { ToolGateway, ToolRequestHandle } from '../client/gateway.js';
import { ActorSchema, IDENTIFIER_PATTERN, ToolRequestInputSchema, formatIssues, type RequestStatus, type ToolOutcome } from '../shared/index.js';

/** What the agent router needs. */
export interface AgentRouterDeps {
  gateway: ToolGateway;
  verifier: AgentVerifier;
  logger: Logger;
}

/** Longest `wait` an agent may ask for, in seconds. */
export const MAX_AGENT_WAIT_SECONDS = 60;

/** An error answer of the agent API. */
export class AgentApiError extends HttpError {
  override readonly name = 'AgentApiError';
}

const waitSchema = z
  .number({ error: `wait must be a number of seconds from 0 to ${MAX_AGENT_WAIT_SECONDS}` })
  .min(0, { error: `wait must be a number of seconds from 0 to ${MAX_AGENT_WAIT_SECONDS}` })
  .max(MAX_AGENT_WAIT_SECONDS, { error: `wait must be a number of seconds from 0 to ${MAX_AGENT_WAIT_SECONDS}` });

/** The body of `POST /v1/tool-requests`: the request model, with `actor` and `tenant` optional (taken from the token) and `wait`. */
export const AgentRequestBodySchema = ToolRequestInputSchema.extend({
  actor: ActorSchema.optional(),
  tenant: ToolRequestInputSchema.shape.tenant.optional(),
  wait: waitSchema.optional(),
});

type Authed = Request & { agent?: AgentIdentity };

const fieldsOf = (issues: string[]) => [...new Set(issues.map((issue) => issue.split(':')[0] ?? ''))];

/** Creates the router of `/v1/tool-requests` (mount it with `app.use('/v1/tool-requests', createAgentRouter(deps))`). */
export function createAgentRouter(deps: AgentRouterDeps): express.Router {
  const { gateway, verifier, logger } = deps;
  const router = express.Router();
  router.use(express.json({ limit: '300kb', strict: true }));

  router.use(async (req: Authed, _res: Response, next: NextFunction) => {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(req.get('authorization') ?? '');
    if (!match?.[1]) throw new AgentApiError(401, 'unauthenticated', 'Authorization: Bearer <agent token> is required');
    try {
      req.agent = await verifier.verify(match[1]);
    } catch (err) {
      throw new AgentApiError(401, 'invalid_token', (err as Error).message);
    }
    next();
  });

  const statusUrl = (req: Request, requestId: string) => `${req.baseUrl}/${encodeURIComponent(requestId)}`;

  /** The answer for a request: 200 with the outcome when it has one, else 202 with where to look. */
  const answer = async (req: Request, res: Response, handle: ToolRequestHandle, waitSeconds: number, created: boolean) => {
    const waited = await outcomeWithin(handle, waitSeconds * 1000);
    const summary = waited ? undefined : await handle.summary();
    const outcome = waited ?? (summary && !summary.running ? await handle.outcome() : undefined);
    if (outcome) {
      res.status(200).json(view(handle.requestId, outcome.status, outcome));
      return;
    }
    // The details come from the workflow (a worker answers); when none answers in time, the
    // server's own view (search attributes) still says where the request stands.
    let state = summary?.state ?? 'evaluating';
    let details: ReturnType<typeof pendingDetails> = {};
    try {
      const status = await handle.status();
      if (status.outcome) {
        res.status(200).json(view(handle.requestId, status.outcome.status, status.outcome));
        return;
      }
      state = status.state;
      details = pendingDetails(status);
    } catch (err) {
      if (!isTemporalUnavailable(err)) throw err;
    }
    const url = statusUrl(req, handle.requestId);
    res.status(created ? 202 : 200).set('Location', url).json({ requestId: handle.requestId, state, tool: summary?.tool, statusUrl: url, ...details });
  };

  router.post('/', async (req: Authed, res) => {
    const agent = req.agent as AgentIdentity;
    const parsed = AgentRequestBodySchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const issues = formatIssues(parsed.error);
      throw new AgentApiError(400, 'invalid_body', issues.join('; '), fieldsOf(issues));
    }
    const { wait, actor, tenant, ...rest } = parsed.data;
    if (actor) {
      if (actor.id !== agent.id || actor.type !== 'agent') {
        throw new AgentApiError(403, 'actor_mismatch', `actor must be the agent of the token (${agent.id}, type agent) or be left out`, ['actor']);
      }
      const extra = actor.roles.filter((role) => !agent.roles.includes(role));
      if (extra.length > 0) throw new AgentApiError(403, 'actor_mismatch', `the token does not grant the roles ${extra.join(', ')}`, ['actor.roles']);
    }
    if (tenant !== undefined && tenant !== agent.tenant) {
      throw new AgentApiError(403, 'wrong_tenant', `tenant must be the token's tenant (${agent.tenant}) or be left out`, ['tenant']);
    }
    let handle: ToolRequestHandle;
    try {
      handle = await gateway.start({ ...rest, tenant: agent.tenant, actor: { id: agent.id, type: 'agent', roles: actor?.roles ?? agent.roles } });
    } catch (err) {
      if (err instanceof InvalidToolRequest) throw new AgentApiError(400, 'invalid_body', err.issues.join('; '), fieldsOf(err.issues));
      if (err instanceof RequestConflict) throw new AgentApiError(409, 'conflict', err.message, ['requestId']);
      throw err;
    }
    logger.info({ requestId: handle.requestId, tool: rest.tool, agent: agent.id, tenant: agent.tenant }, 'agent tool request submitted');
    await answer(req, res, handle, wait ?? 0, true);
  });

  router.get('/:requestId', async (req: Authed, res) => {
    const agent = req.agent as AgentIdentity;
    const requestId = String(req.params.requestId ?? '');
    if (!IDENTIFIER_PATTERN.test(requestId)) {
      throw new AgentApiError(400, 'invalid_request_id', 'requestId must be 1-128 characters of letters, digits and . _ : @ -', ['requestId']);
    }
    const waitText = req.query.wait;
    const wait = waitText === undefined ? 0 : Number(waitText);
    const waitOk = waitSchema.safeParse(wait);
    if (typeof waitText === 'object' || Number.isNaN(wait) || !waitOk.success) {
      throw new AgentApiError(400, 'invalid_query', `wait must be a number of seconds from 0 to ${MAX_AGENT_WAIT_SECONDS}`, ['wait']);
    }
    const handle = await gateway.get(requestId);
    let tenant: string | undefined;
    try {
      tenant = (await handle.summary()).tenant;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new AgentApiError(404, 'not_found', `no request ${requestId}`);
      throw err;
    }
    if (tenant !== agent.tenant) throw new AgentApiError(404, 'not_found', `no request ${requestId}`);
    await answer(req, res, handle, wait, false);
  });

  router.use((_req, _res, next) => next(new AgentApiError(404, 'not_found', 'no such route')));
  router.use(errorHandler(logger, 'agent API'));
  return router;
}

function view(requestId: string, state: string, outcome: ToolOutcome) {
  return { requestId, state, tool: outcome.tool, outcome, ...(outcome.status === 'completed' ? { result: outcome.result } : {}) };
}

function pendingDetails(status: RequestStatus) {
  return status.state === 'pending_approval'
    ? { expiresAt: status.expiresAt, eligibleGroups: status.eligibleGroups, message: `${status.tool} waits for approval; it has not run` }
    : {};
}

async function outcomeWithin(handle: ToolRequestHandle, ms: number): Promise<ToolOutcome | undefined> {
  if (ms <= 0) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([handle.outcome(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
