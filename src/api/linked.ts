/**
 * Linked requests, started by a person through the approval API (mounted under `/v1/approvals`,
 * after its approver authentication):
 *  - `POST /:requestId/override` — a break-glass override of a request policy denied: the same
 *    call again (tool, arguments, actor, on-behalf-of chain, tenant, environment), linked to the
 *    original. The workflow decides whether a break-glass rule lets this person ask, and a second
 *    person of the rule's groups must approve it.
 *  - `POST /:requestId/rollback` — the undo of a completed request: the undo tool the original's
 *    manifest names, with arguments derived from what the original ran and returned, asked for by
 *    the person (who is its actor, so someone else approves it).
 * The original's history is closed and never changes; the new request carries `link` (signed with
 * the rest of the request by the front door's key) and the `ToolgateLink` search attribute, by
 * which the original finds it. At most one linked request of a kind is running or has completed
 * per original.
 */
import { createHash } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { decodeFirstPayload, startInputOf, withWorkflowContext } from '../audit/history-payloads.js';
import { UndoUnavailable, deriveUndoArgs } from '../policy/undo.js';
import type { PolicyStore } from '../policy/store.js';
import {
  IDENTIFIER_PATTERN,
  ToolRequestSchema,
  WORKFLOW_TYPE,
  formatIssues,
  linkAttributeValue,
  linkedRequestsQuery,
  parseRequestWorkflowId,
  searchAttributes,
  workflowIdFor,
  type Approver,
  type LinkKind,
  type RequestLink,
  type ToolOutcome,
  type ToolRequest,
} from '../shared/index.js';
import { unavailable } from './decisions.js';
import { HttpError, fieldsOfIssues, parseBody } from './errors.js';
import type { FrontDoor } from './front-door.js';

/** What the linked-request routes need. */
export interface LinkedRouterDeps {
  client: Client;
  /** Signs and starts the new request; without it the routes answer 503 `requests_unavailable`. */
  frontDoor?: FrontDoor;
  /** The policy the workers run: rollbacks derive the undo tool's arguments with it (503 `policy_unavailable` without). */
  policy?: PolicyStore;
  logger: Logger;
}

/** The body of `POST /v1/approvals/:id/override` and `/rollback`: why, in the person's words (kept in the new request's link). */
export const LinkBodySchema = z.strictObject({
  reason: z
    .string({ error: 'reason must be a string saying why (1-2000 characters)' })
    .trim()
    .min(1, { error: 'reason must say why (1-2000 characters)' })
    .max(2000, { error: 'reason must be at most 2000 characters' })
    .refine((text) => text.isWellFormed(), { error: 'reason must be well-formed Unicode text (no lone surrogates)' }),
});

/** The answer of a started linked request (202). */
export interface LinkedRequestStarted {
  requestId: string;
  link: RequestLink;
  state: string;
  /** The approval API's view of the new request. */
  statusUrl: string;
}

/** How many times a start is tried again under the next id when the id is taken (by an ended linked request visibility had not listed yet, or by anyone else). */
const START_ATTEMPTS = 8;
/** At most this many linked requests of one original are read from visibility. */
const MAX_LINKED_LISTED = 1000;

/**
 * The id of the `n`th linked request of `kind` of `original`: `<original>.<kind>-<n>`. When that is
 * longer than a request id may be (128), the original's part is shortened and an 8-hex hash of the
 * whole original id keeps it distinct: `<prefix>-<hash>.<kind>-<n>`.
 */
export function linkedRequestId(original: string, kind: LinkKind, n: number): string {
  const suffix = `.${kind}-${n}`;
  const plain = `${original}${suffix}`;
  if (plain.length <= 128) return plain;
  const hash = createHash('sha256').update(original).digest('hex').slice(0, 8);
  return `${original.slice(0, 128 - suffix.length - hash.length - 1)}-${hash}${suffix}`;
}

/**
 * The override of `original` (a denied request): the same call by the same actor for the same
 * principals, as admitted — only its id is new and it carries the link (never the original's own
 * link: an override of an override links to the request it overrides).
 */
export function overrideRequest(original: ToolRequest, requestId: string, link: RequestLink): ToolRequest {
  return { ...original, requestId, link };
}

/**
 * The rollback of `original` (a completed request): the undo tool with the derived arguments,
 * asked for by the person (a human actor whose roles are their groups), in the original's tenant
 * and environment.
 */
export function rollbackRequest(
  original: Pick<ToolRequest, 'tenant' | 'environment'>,
  requestId: string,
  person: Approver,
  undo: { tool: string; args: Record<string, unknown> },
  link: RequestLink,
): ToolRequest {
  return {
    requestId,
    actor: { id: person.id, type: 'human', roles: [...person.groups] },
    tenant: original.tenant,
    environment: original.environment,
    tool: undo.tool,
    args: undo.args,
    link,
  };
}

/** A linked request of an original, as visibility lists it. */
export interface LinkedListing {
  requestId: string;
  kind: LinkKind;
  running: boolean;
  /** The `ToolgateStatus` search attribute: the request's state (its outcome's status once closed). */
  state?: string;
}

/** Whether a linked request stands in the way of another of its kind: it still runs, or it completed (its tool ran). */
export function blocksAnother(linked: LinkedListing): boolean {
  return linked.running || linked.state === 'completed';
}

/** Creates the router of the linked-request routes (mount it inside the approval router, after authentication). */
export function createLinkedRouter(deps: LinkedRouterDeps): express.Router {
  const { client, logger } = deps;
  const router = express.Router();

  const route = (kind: LinkKind) => async (req: Request & { approver?: Approver }, res: Response) => {
    const person = req.approver;
    if (!person) throw new HttpError(401, 'unauthenticated', 'Authorization: Bearer <token> is required');
    const original = String(req.params.requestId ?? '');
    if (!IDENTIFIER_PATTERN.test(original)) {
      throw new HttpError(400, 'invalid_request_id', 'requestId must be 1-128 characters of letters, digits and . _ : @ -', ['requestId']);
    }
    const body = parseBody(LinkBodySchema, req.body);
    const frontDoor = deps.frontDoor;
    if (!frontDoor) {
      throw new HttpError(503, 'requests_unavailable', 'this API cannot start requests (it holds no request-signing key)', undefined, 30);
    }
    const found = await readOriginal(client, person.tenant, original);
    const link: RequestLink = {
      kind,
      requestId: original,
      tool: found.request.tool,
      by: { id: person.id, groups: [...person.groups] },
      reason: body.reason,
    };

    let build: (requestId: string) => ToolRequest;
    if (kind === 'override') {
      const outcome = found.outcome;
      if (outcome?.status !== 'denied') {
        throw new HttpError(409, 'not_denied', `request ${original} ${endedAs(found)}: only a denied request can be overridden`);
      }
      // A start that never carried a valid admission is no agent's request: re-signing it would launder it.
      if (outcome.code === 'unverified_request') {
        throw new HttpError(409, 'not_denied', `request ${original} was refused before admission (unverified_request): only a policy denial can be overridden`);
      }
      build = (requestId) => overrideRequest(found.request, requestId, link);
    } else {
      const outcome = found.outcome;
      if (outcome?.status !== 'completed') {
        throw new HttpError(409, 'not_completed', `request ${original} ${endedAs(found)}: only a completed request can be rolled back`);
      }
      const policy = deps.policy?.current().policy;
      if (!policy) throw new HttpError(503, 'policy_unavailable', 'this API holds no policy to derive the undo from; retry when it has loaded', undefined, 30);
      let undo: { tool: string; args: Record<string, unknown> };
      try {
        // What the original ran (after any approver's edit) and returned, not only what it asked.
        undo = deriveUndoArgs(policy, found.request.tool, { args: outcome.args, result: outcome.result, requestId: original });
      } catch (err) {
        if (!(err instanceof UndoUnavailable)) throw err;
        if (err.code === 'no_undo') throw new HttpError(409, 'no_undo', err.message);
        throw new HttpError(422, 'undo_failed', err.message, err.argument === undefined ? undefined : [`undo.args.${err.argument}`]);
      }
      build = (requestId) => rollbackRequest(found.request, requestId, person, undo, link);
    }

    const earlier = await listLinked(client, person.tenant, original, kind);
    const blocking = earlier.find(blocksAnother);
    if (blocking) return alreadyLinked(res, kind, original, blocking.requestId);

    let n = earlier.length + 1;
    for (let attempt = 1; ; attempt += 1) {
      const requestId = linkedRequestId(original, kind, n);
      const request = build(requestId);
      const valid = ToolRequestSchema.safeParse(request);
      if (!valid.success) {
        // Only derived arguments can make a valid original's copy invalid.
        const issues = formatIssues(valid.error);
        throw new HttpError(422, 'undo_failed', `the ${kind} request is not valid: ${issues.join('; ')}`, fieldsOfIssues(issues));
      }
      let started;
      try {
        started = await frontDoor.startLinked(request);
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw unavailable(err);
        // Taken: a linked request visibility did not list yet (perhaps started by a concurrent call), or an unrelated request under that id.
        const taken = await describeOrUndefined(client, workflowIdFor(person.tenant, requestId));
        const takenLink = taken?.typedSearchAttributes.get(searchAttributes.link);
        if (taken && takenLink === linkAttributeValue(kind, original) && blocksAnother(listingOf(taken, kind))) {
          return alreadyLinked(res, kind, original, requestId);
        }
        if (attempt >= START_ATTEMPTS) throw new HttpError(409, 'conflict', `no free request id for the ${kind} of ${original}; retry`);
        n += 1;
        continue;
      }
      logger.info(
        { event: `${kind}_requested`, original, requestId, by: person.id, tenant: person.tenant, tool: request.tool },
        `${kind} of ${original} requested by ${person.id}`,
      );
      const statusUrl = `${req.baseUrl}/${encodeURIComponent(requestId)}`;
      const answer: LinkedRequestStarted = { requestId, link, state: started.summary.state ?? 'evaluating', statusUrl };
      res.status(202).set('Location', statusUrl).json(answer);
      return;
    }
  };

  router.post('/:requestId/override', route('override'));
  router.post('/:requestId/rollback', route('rollback'));
  return router;
}

function alreadyLinked(res: Response, kind: LinkKind, original: string, requestId: string): void {
  res.status(409).json({
    error: {
      code: 'already_linked',
      message: `request ${original} already has a ${kind} that is running or completed: ${requestId}`,
      requestId,
    },
  });
}

/** The original as it was admitted, and how it ended (undefined while it runs, or when it ended without an outcome). */
interface Original {
  request: ToolRequest;
  running: boolean;
  outcome?: ToolOutcome;
  /** The workflow's status name (RUNNING, COMPLETED, TERMINATED…). */
  executionStatus: string;
}

function endedAs(found: Original): string {
  if (found.running) return 'is still running';
  if (found.outcome) return `ended ${found.outcome.status}`;
  return `ended without an outcome (${found.executionStatus.toLowerCase()})`;
}

async function describeOrUndefined(client: Client, workflowId: string): Promise<WorkflowExecutionDescription | undefined> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw unavailable(err);
  }
}

/**
 * The request `requestId` of `tenant` exactly as it was admitted (its workflow's start input,
 * decoded with the client's data converter as the request's own workflow) and its outcome; 404
 * for anything else — another tenant's, a workflow that is no tool request.
 */
async function readOriginal(client: Client, tenant: string, requestId: string): Promise<Original> {
  const workflowId = workflowIdFor(tenant, requestId);
  const notFound = () => new HttpError(404, 'not_found', `no request ${requestId}`);
  const description = await describeOrUndefined(client, workflowId);
  if (!description || description.type !== WORKFLOW_TYPE || description.typedSearchAttributes.get(searchAttributes.tenant) !== tenant) throw notFound();
  let input: unknown;
  try {
    // Only the first event: the start, with the admitted request.
    const page = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId, runId: description.runId },
      maximumPageSize: 1,
    });
    const started = page.history?.events?.[0]?.workflowExecutionStartedEventAttributes;
    input = await decodeFirstPayload<unknown>(withWorkflowContext(client.options.loadedDataConverter, workflowId), started?.input?.payloads);
  } catch (err) {
    throw unavailable(err);
  }
  const { request } = startInputOf(input);
  if (!request || request.tenant !== tenant || request.requestId !== requestId) throw notFound();
  const executionStatus = description.status.name;
  const running = executionStatus === 'RUNNING';
  let outcome: ToolOutcome | undefined;
  if (executionStatus === 'COMPLETED') {
    try {
      outcome = (await client.workflow.getHandle(workflowId, description.runId).result()) as ToolOutcome;
    } catch (err) {
      throw unavailable(err);
    }
  }
  return { request, running, executionStatus, ...(outcome ? { outcome } : {}) };
}

function listingOf(description: Pick<WorkflowExecutionDescription, 'workflowId' | 'status' | 'typedSearchAttributes'>, kind: LinkKind): LinkedListing {
  const state = description.typedSearchAttributes.get(searchAttributes.status);
  return {
    requestId: parseRequestWorkflowId(description.workflowId)?.requestId ?? description.workflowId,
    kind,
    running: description.status.name === 'RUNNING',
    ...(state ? { state } : {}),
  };
}

/** The linked requests of `kind` of `original`, from visibility (`linkedRequestsQuery`). */
async function listLinked(client: Client, tenant: string, original: string, kind: LinkKind): Promise<LinkedListing[]> {
  const value = linkAttributeValue(kind, original);
  const found: LinkedListing[] = [];
  try {
    for await (const execution of client.workflow.list({ query: linkedRequestsQuery(tenant, original) })) {
      if (execution.typedSearchAttributes.get(searchAttributes.link) === value) found.push(listingOf(execution, kind));
      if (found.length >= MAX_LINKED_LISTED) break;
    }
  } catch (err) {
    throw unavailable(err);
  }
  return found;
}
