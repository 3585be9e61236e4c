/**
 * The HTTP API for agents, the front door of every agent integration (the client SDK, the
 * framework adapters, the MCP gateway, agents in any language): `POST /v1/tool-requests` submits
 * a tool request as the agent its bearer token identifies and may wait up to 60 s for the
 * outcome; `GET /v1/tool-requests/:id` reads one of the agent's own requests; `GET /v1/agent` says
 * who the token is. Identity (actor, roles, tenant, environment, on-behalf-of chain) comes from
 * the token only: a body may restate it but never change it (403, logged and counted).
 */
import { HttpError, errorHandler, isTemporalUnavailable, parseBody } from './errors.js';
import { DecisionSender } from './decisions.js';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AgentIdentity, AgentVerifier } from '../auth/agent-tokens.js';
import type { DecisionSigner } from '../trust/signers.js';
import { refusedAttempts } from '../metrics.js';
import { activeTraceId, annotateActiveSpan, nameActiveSpan } from '../telemetry.js';
import {
  ActorSchema,
  ConfirmationBodySchema,
  IDENTIFIER_PATTERN,
  PrincipalSchema,
  ToolRequestInputSchema,
  canonicalId,
  statusQuery,
  type AgentRequestView,
  type ConfirmationBody,
  type DecideInput,
  type RequestStatus,
  type ToolOutcome,
} from '../shared/index.js';
import { AdmissionError, type FrontDoor, type RequestSummary } from './front-door.js';

/** What the agent router needs. */
export interface AgentRouterDeps {
  frontDoor: FrontDoor;
  verifier: AgentVerifier;
  logger: Logger;
  /**
   * Signs the end user's confirmations the agent relays (`POST /v1/tool-requests/:id/confirmation`,
   * channel `end_user`): the approval API's decision key. Without it, that route answers 503.
   */
  decisions?: DecisionSigner;
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

/**
 * The body of `POST /v1/tool-requests`: the tool, its arguments and the optional request id,
 * reason, trace id, provenance (untrusted arguments and prompt metadata; its paths are checked
 * against the arguments when the front door builds the request) and `wait`. `actor`, `tenant`, `environment` and `onBehalfOf` may be given only
 * to restate what the token says.
 */
export const AgentRequestBodySchema = z.strictObject({
  requestId: ToolRequestInputSchema.shape.requestId,
  tool: ToolRequestInputSchema.shape.tool,
  args: ToolRequestInputSchema.shape.args,
  reason: ToolRequestInputSchema.shape.reason,
  traceId: ToolRequestInputSchema.shape.traceId,
  provenance: ToolRequestInputSchema.shape.provenance,
  wait: waitSchema.optional(),
  actor: ActorSchema.extend({ id: z.string({ error: 'actor.id must be a string' }).max(512) }).optional(),
  tenant: ToolRequestInputSchema.shape.tenant.optional(),
  environment: ToolRequestInputSchema.shape.environment.optional(),
  onBehalfOf: z
    .array(PrincipalSchema.extend({ id: z.string({ error: 'onBehalfOf[].id must be a string' }).max(512) }))
    .max(8)
    .optional(),
});
type AgentRequestBody = z.infer<typeof AgentRequestBodySchema>;

type Authed = Request & { agent?: AgentIdentity };

const sameSet = (a: readonly string[], b: readonly string[]) => {
  const left = [...new Set(a)].sort();
  const right = [...new Set(b)].sort();
  return left.length === right.length && left.every((item, i) => item === right[i]);
};

/** The fields where a body names someone or somewhere other than the token does; empty when it only restates it. */
export function identityMismatches(agent: AgentIdentity, body: Pick<AgentRequestBody, 'actor' | 'tenant' | 'environment' | 'onBehalfOf'>): string[] {
  const fields: string[] = [];
  if (body.actor) {
    if (canonicalId(body.actor.id) !== agent.id) fields.push('actor.id');
    if (body.actor.type !== agent.type) fields.push('actor.type');
    // Not even a subset: dropping a role can escape a rule that denies on it.
    if (!sameSet(body.actor.roles, agent.roles)) fields.push('actor.roles');
  }
  if (body.tenant !== undefined && body.tenant !== agent.tenant) fields.push('tenant');
  if (body.environment !== undefined && body.environment !== agent.environment) fields.push('environment');
  if (body.onBehalfOf !== undefined) {
    const chain = agent.onBehalfOf ?? [];
    const same =
      body.onBehalfOf.length === chain.length &&
      body.onBehalfOf.every((principal, i) => canonicalId(principal.id) === chain[i]?.id && principal.type === chain[i]?.type);
    if (!same) fields.push('onBehalfOf');
  }
  return fields;
}

/** Creates the router of `/v1/tool-requests` (mount it with `app.use('/v1/tool-requests', createAgentRouter(deps))`). */
export function createAgentRouter(deps: AgentRouterDeps): express.Router {
  const { frontDoor, logger } = deps;
  const decisions = deps.decisions ? new DecisionSender(deps.decisions, logger) : undefined;
  const router = express.Router();
  router.use(express.json({ limit: '300kb', strict: true }));
  router.use(authenticateAgents(deps));

  const statusUrl = (req: Request, requestId: string) => `${req.baseUrl}/${encodeURIComponent(requestId)}`;

  /**
   * The answer for a request: 200 with the outcome when it has one, else 202 (just submitted) or
   * 200 with where it stands. `known` is the server's view if the caller just read it; after a
   * wait it is read again. Only a request waiting for approval costs a query (a worker answers).
   */
  const answer = async (
    req: Request,
    res: Response,
    requestId: string,
    handle: WorkflowHandle,
    waitSeconds: number,
    submitted: boolean,
    known: RequestSummary,
  ) => {
    let summary: RequestSummary | undefined = known;
    if (known.running && waitSeconds > 0) {
      const waited = await outcomeWithin(handle, waitSeconds * 1000);
      if (waited) {
        res.status(200).json(outcomeView(requestId, waited));
        return;
      }
      summary = await frontDoor.find((req as Authed).agent as AgentIdentity, requestId);
      if (!summary) throw new AgentApiError(404, 'not_found', `no request ${requestId} of this agent`);
    }
    if (!summary?.running) {
      res.status(200).json(outcomeView(requestId, await finalOutcome(handle, requestId, (req as Authed).agent as AgentIdentity, summary?.tool)));
      return;
    }
    let view: AgentRequestView = {
      requestId,
      state: (summary.state ?? 'evaluating') as AgentRequestView['state'],
      ...(summary.tool ? { tool: summary.tool } : {}),
    };
    if (view.state === 'pending_approval') {
      // The details come from the workflow; when no worker answers in time, the server's view stands.
      try {
        const status = await handle.query(statusQuery);
        if (status.outcome) {
          res.status(200).json(outcomeView(requestId, status.outcome));
          return;
        }
        view = { requestId, state: status.state, tool: status.tool, ...pendingDetails(status) };
      } catch (err) {
        if (!isTemporalUnavailable(err)) throw err;
      }
    }
    const url = statusUrl(req, requestId);
    res
      .status(submitted ? 202 : 200)
      .set('Location', url)
      .json({ ...view, statusUrl: url });
  };

  router.post('/', async (req: Authed, res) => {
    const agent = req.agent as AgentIdentity;
    const { wait, actor, tenant, environment, onBehalfOf, ...given } = parseBody(AgentRequestBodySchema, req.body);
    // Tracing (no-ops when off): the request's trace id where the agent gave none is the trace it
    // arrived in — only when the gateway picks the request id, because a request id the agent
    // chose must name the same request whatever trace it is sent again in.
    nameActiveSpan('POST /v1/tool-requests');
    const traceId = given.traceId ?? (given.requestId === undefined ? activeTraceId() : undefined);
    const fields = { ...given, ...(traceId === undefined ? {} : { traceId }) };
    annotateActiveSpan({ requestId: fields.requestId, tool: fields.tool, tenant: agent.tenant, traceId });
    const mismatched = identityMismatches(agent, { actor, tenant, environment, onBehalfOf });
    if (mismatched.length > 0) {
      refusedAttempts.inc({ surface: 'agent_api', code: 'identity_mismatch' });
      logger.warn(
        { event: 'identity_mismatch', agent: agent.id, tenant: agent.tenant, fields: mismatched, claimed: { actor, tenant, environment } },
        'agent request refused: the body names another identity than the token',
      );
      throw new AgentApiError(
        403,
        'identity_mismatch',
        `the request names another identity than the agent's token (${mismatched.join(', ')}); identity comes from the token: leave these fields out`,
        mismatched,
      );
    }
    if (agent.tools && !agent.tools.includes(fields.tool)) {
      refusedAttempts.inc({ surface: 'agent_api', code: 'tool_not_granted' });
      logger.warn(
        { event: 'tool_not_granted', agent: agent.id, tenant: agent.tenant, tool: fields.tool },
        'agent request refused: the token does not grant this tool',
      );
      throw new AgentApiError(403, 'tool_not_granted', `this agent's token does not grant the tool ${fields.tool}`, ['tool']);
    }
    let admitted;
    try {
      admitted = await frontDoor.admit(agent, fields);
    } catch (err) {
      if (err instanceof AdmissionError) throw new AgentApiError(err.code, err.message, { fields: err.fields, cause: err });
      throw err;
    }
    annotateActiveSpan({ requestId: admitted.request.requestId });
    logger.info({ requestId: admitted.request.requestId, tool: fields.tool, agent: agent.id, tenant: agent.tenant }, 'agent tool request admitted');
    await answer(req, res, admitted.request.requestId, admitted.handle, wait ?? 0, true, admitted.summary);
  });

  /** One of this agent's requests by the route's id, or a 404 (a token narrowed to some tools reads only requests of those tools). */
  const ownRequest = async (agent: AgentIdentity, requestId: string) => {
    const found = await frontDoor.find(agent, requestId);
    if (!found || (agent.tools && !agent.tools.includes(found.tool ?? ''))) throw new AgentApiError(404, 'not_found', `no request ${requestId} of this agent`);
    return found;
  };

  router.get('/:requestId', async (req: Authed, res) => {
    const agent = req.agent as AgentIdentity;
    const requestId = requestIdParam(req);
    const waitText = req.query.wait;
    const wait = waitText === undefined ? 0 : Number(waitText);
    const waitOk = waitSchema.safeParse(wait);
    if (typeof waitText === 'object' || Number.isNaN(wait) || !waitOk.success) {
      throw new AgentApiError(400, 'invalid_query', `wait must be a number of seconds from 0 to ${MAX_AGENT_WAIT_SECONDS}`, ['wait']);
    }
    nameActiveSpan('GET /v1/tool-requests/:requestId');
    annotateActiveSpan({ requestId, tenant: agent.tenant });
    const found = await ownRequest(agent, requestId);
    await answer(req, res, requestId, found.handle, wait, false, found);
  });

  /**
   * The end user's answer to a request of this agent waiting under a plan that accepts it,
   * relayed by the agent runtime: signed as a decision of the request's first on-behalf-of
   * principal (channel `end_user`, no groups) and judged by the workflow like any decision.
   */
  router.post('/:requestId/confirmation', async (req: Authed, res) => {
    const agent = req.agent as AgentIdentity;
    const requestId = requestIdParam(req);
    nameActiveSpan('POST /v1/tool-requests/:requestId/confirmation');
    annotateActiveSpan({ requestId, tenant: agent.tenant });
    const body = parseBody(ConfirmationBodySchema, req.body);
    const found = await ownRequest(agent, requestId);
    // find() matched the identity the request was admitted under, on-behalf-of chain included: its first principal is the request's end user.
    const endUser = agent.onBehalfOf?.[0];
    if (!endUser) {
      throw new AgentApiError(
        403,
        'no_end_user',
        'this request was made on behalf of nobody: there is no end user to confirm it (the agent token has no on_behalf_of)',
      );
    }
    if (!decisions)
      throw new AgentApiError(503, 'confirmation_unavailable', 'this gateway cannot relay end-user confirmations (no decision-signing key)', undefined, 5);
    await decisions.send(
      requestId,
      found.handle.client.getHandle(found.handle.workflowId, found.runId),
      found.runId,
      confirmationDecision(body, { id: canonicalId(endUser.id), tenant: agent.tenant }),
    );
    logger.info({ requestId, agent: agent.id, endUser: canonicalId(endUser.id), decision: body.decision }, 'end-user confirmation relayed');
    // The decide update answers before the workflow acts on it: read the request again, so the
    // agent sees where it stands now (executing, rejected, or a new proposal to confirm).
    const now = await frontDoor.find(agent, requestId);
    if (!now) throw new AgentApiError(404, 'not_found', `no request ${requestId} of this agent`);
    await answer(req, res, requestId, now.handle, 0, false, now);
  });

  router.use((_req, _res, next) => next(new AgentApiError(404, 'not_found', 'no such route')));
  router.use(errorHandler(logger, 'agent API'));
  return router;
}

/** `GET /v1/agent`: who the bearer token says the agent is (the MCP gateway and SDK read their identity here). */
export function createAgentIdentityRouter(deps: Omit<AgentRouterDeps, 'frontDoor'>): express.Router {
  const router = express.Router();
  router.use(authenticateAgents(deps));
  router.get('/', (req: Authed, res) => {
    res.json(req.agent);
  });
  router.use(errorHandler(deps.logger, 'agent API'));
  return router;
}

/** Authenticates the agent's bearer token; anything else is a 401, logged and counted, never recorded in a history. */
function authenticateAgents(deps: Omit<AgentRouterDeps, 'frontDoor'>) {
  return async (req: Authed, _res: Response, next: NextFunction) => {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(req.get('authorization') ?? '');
    if (!match?.[1]) {
      refusedAttempts.inc({ surface: 'agent_api', code: 'unauthenticated' });
      throw new AgentApiError(401, 'unauthenticated', 'Authorization: Bearer <agent token> is required');
    }
    try {
      req.agent = await deps.verifier.verify(match[1]);
    } catch (err) {
      refusedAttempts.inc({ surface: 'agent_api', code: 'invalid_token' });
      deps.logger.warn({ event: 'invalid_agent_token', reason: (err as Error).message }, 'agent token refused');
      throw new AgentApiError(401, 'invalid_token', (err as Error).message);
    }
    next();
  };
}

function requestIdParam(req: Request): string {
  const requestId = String(req.params.requestId ?? '');
  if (!IDENTIFIER_PATTERN.test(requestId)) {
    throw new AgentApiError(400, 'invalid_request_id', 'requestId must be 1-128 characters of letters, digits and . _ : @ -', ['requestId']);
  }
  return requestId;
}

/**
 * The decision an end user's answer stands for: confirm approves, decline rejects, adjust edits
 * (the workflow judges the new arguments again). Signed as the end user, with no groups.
 */
export function confirmationDecision(body: ConfirmationBody, endUser: { id: string; tenant: string }): DecideInput {
  const decision: DecideInput['decision'] = body.decision === 'confirm' ? 'approve' : body.decision === 'decline' ? 'reject' : 'edit';
  return {
    decision,
    digest: body.digest,
    approver: { id: endUser.id, tenant: endUser.tenant, groups: [] },
    via: 'end_user',
    ...(body.reason === undefined ? {} : { reason: body.reason }),
    ...(decision === 'edit' && body.args !== undefined ? { args: body.args } : {}),
  };
}

function outcomeView(requestId: string, outcome: ToolOutcome): AgentRequestView {
  return { requestId, state: outcome.status, tool: outcome.tool, outcome, ...(outcome.status === 'completed' ? { result: outcome.result } : {}) };
}

/**
 * What an agent is told about a request waiting for approval; under a plan that accepts the end
 * user's confirmation, also what to show the end user and the digest their answer is bound to.
 */
export function pendingDetails(status: RequestStatus): Partial<AgentRequestView> {
  if (status.state !== 'pending_approval') return {};
  const plan = status.proposal?.approval;
  const confirmable = plan?.endUser === true && status.digest !== undefined && status.proposal !== undefined;
  return {
    expiresAt: status.expiresAt,
    eligibleGroups: status.eligibleGroups,
    message: confirmable
      ? `${status.tool} waits for the end user's confirmation${status.eligibleGroups.length > 0 ? ' or an approver' : ''}; it has not run`
      : `${status.tool} waits for approval; it has not run`,
    ...(confirmable
      ? {
          endUserConfirmation: {
            digest: status.digest as string,
            args: status.proposal?.args ?? {},
            ...(status.proposal?.preview === undefined ? {} : { preview: status.proposal.preview }),
            plan: plan.name,
          },
        }
      : {}),
  };
}

/**
 * The outcome of a closed request. A workflow that ended without one (terminated or failed by
 * ops) reads as a failed outcome, so an agent waiting for it is told, not left polling forever.
 */
async function finalOutcome(handle: WorkflowHandle, requestId: string, agent: AgentIdentity, tool: string | undefined): Promise<ToolOutcome> {
  try {
    return (await handle.result()) as ToolOutcome;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    return {
      requestId,
      workflowId: handle.workflowId,
      tool: tool ?? '',
      tenant: agent.tenant,
      actor: { id: agent.id, type: agent.type, roles: agent.roles },
      risk: 'critical',
      rule: '',
      policyDigest: '',
      approvals: [],
      status: 'failed',
      error: {
        type: 'RequestEnded',
        message: 'the request ended without an outcome (terminated or failed by an operator); whether the tool ran is in its audit record',
      },
    };
  }
}

async function outcomeWithin(handle: WorkflowHandle, ms: number): Promise<ToolOutcome | undefined> {
  if (ms <= 0) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([handle.result() as Promise<ToolOutcome>, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
