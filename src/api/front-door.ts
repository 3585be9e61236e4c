/**
 * The front door: the one place an agent's tool request enters toolgate. It takes the identity
 * from the agent's verified credential — never from the body — builds the request, signs the
 * request assertion the workflow verifies before anything else, and starts the request's workflow
 * under a tenant-scoped id. Reads are scoped the same way: an agent finds only requests its own
 * identity started.
 */
import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import type { AgentIdentity } from '../auth/agent-tokens.js';
import {
  TASK_QUEUE,
  ToolRequestSchema,
  WORKFLOW_TYPE,
  canonicalSha256,
  formatIssues,
  linkAttributeValue,
  searchAttributes,
  workflowIdFor,
  type ToolRequest,
  type ToolRequestStart,
} from '../shared/index.js';
import type { ToolCallFields } from '../shared/tool-call.js';
import { tracedClient } from '../telemetry.js';
import type { RequestSigner } from '../trust/signers.js';
import { ToolgateError } from '../errors.js';
import { fieldsOfIssues } from './errors.js';
import type { KnownRuns } from './known-runs.js';

/** The fields of a request an agent chooses; everything about who and where comes from its credential. */
export type AgentRequestFields = ToolCallFields;

/** A request the front door refused to admit as given; `fields` name what was wrong. */
export class AdmissionError extends ToolgateError {
  override readonly name = 'AdmissionError';
  declare readonly code: 'invalid_body' | 'conflict';
  declare readonly fields: string[];
  constructor(code: 'invalid_body' | 'conflict', message: string, fields: string[], options?: { cause?: unknown }) {
    super(code, message, { fields, ...options });
  }
}

/** Where a request stands in the server's view (search attributes), without asking a worker. */
export interface RequestSummary {
  running: boolean;
  state?: string;
  tool?: string;
}

/** A request admitted (or found again under the same id). */
export interface Admitted {
  request: ToolRequest;
  workflowId: string;
  handle: WorkflowHandle;
  /** The server's view right after admission. */
  summary: RequestSummary;
}

/** Admits agents' requests and finds them again. */
export class FrontDoor {
  private readonly client: Client;

  constructor(
    client: Client,
    private readonly signer: RequestSigner,
    private readonly taskQueue: string = TASK_QUEUE,
    /** Where the runs it starts are remembered, so the approval API can send decisions without a describe. */
    private readonly runs?: KnownRuns,
  ) {
    // With tracing on (src/telemetry.ts), the workflow start carries the HTTP request's trace into the workflow.
    this.client = tracedClient(client);
  }

  /**
   * Admits a request of `agent`: builds it from the credential's identity and the agent's fields,
   * signs it, and starts its workflow. The same request id with the same request attaches to the
   * existing one; with another request (or another agent's) it is a conflict.
   */
  async admit(agent: AgentIdentity, fields: AgentRequestFields): Promise<Admitted> {
    const parsed = ToolRequestSchema.safeParse({
      requestId: fields.requestId ?? randomUUID(),
      actor: { id: agent.id, type: agent.type, roles: agent.roles },
      tenant: agent.tenant,
      environment: agent.environment,
      tool: fields.tool,
      args: fields.args ?? {},
      ...(agent.onBehalfOf ? { onBehalfOf: agent.onBehalfOf } : {}),
      ...(fields.reason === undefined ? {} : { reason: fields.reason }),
      ...(fields.traceId === undefined ? {} : { traceId: fields.traceId }),
      // Inside the request, so the assertion's digest covers it: nobody can drop or change a flag after admission.
      ...(fields.provenance === undefined ? {} : { provenance: fields.provenance }),
    });
    if (!parsed.success) {
      const issues = formatIssues(parsed.error);
      throw new AdmissionError('invalid_body', issues.join('; '), fieldsOfIssues(issues));
    }
    // Exactly what the workflow receives (a JSON round trip drops undefined), so the digests agree.
    const request = JSON.parse(JSON.stringify(parsed.data)) as ToolRequest;
    const workflowId = workflowIdFor(request.tenant, request.requestId);
    let requestHash: string;
    try {
      requestHash = canonicalSha256(request);
    } catch (err) {
      // The schema refuses what canonical JSON cannot hold; should anything slip through, it is the body's fault.
      throw new AdmissionError('invalid_body', `the request has no canonical JSON form: ${(err as Error).message}`, ['(root)']);
    }
    let handle: WorkflowHandle;
    try {
      handle = await this.startWorkflow(request, workflowId, requestHash, { memo: { requestHash, agent: agentDigest(agent) }, conflict: 'USE_EXISTING' });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      handle = this.client.workflow.getHandle(workflowId);
    }
    const description = await handle.describe();
    if (description.memo?.requestHash !== requestHash) {
      throw new AdmissionError('conflict', `requestId ${request.requestId} was already used for a different request; use a new requestId`, ['requestId']);
    }
    this.runs?.remember(workflowId, description.runId);
    return { request, workflowId, handle, summary: summarize(description) };
  }

  /**
   * Starts a request the approval API built for a person (a break-glass override or a rollback,
   * `request.link` set): signed and started exactly like an agent's, with the `ToolgateLink`
   * search attribute so the original finds it. Never attaches to an existing request: the id is
   * new or this throws `WorkflowExecutionAlreadyStartedError`. Agents do not read it through the
   * front door (its memo names no agent identity).
   */
  async startLinked(request: ToolRequest): Promise<Admitted> {
    if (!request.link) throw new TypeError('startLinked needs a request with a link');
    const parsed = ToolRequestSchema.parse(request);
    const admitted = JSON.parse(JSON.stringify(parsed)) as ToolRequest;
    const workflowId = workflowIdFor(admitted.tenant, admitted.requestId);
    const requestHash = canonicalSha256(admitted);
    const handle = await this.startWorkflow(admitted, workflowId, requestHash, {
      memo: { requestHash, linkedBy: admitted.link?.by.id },
      conflict: 'FAIL',
      link: linkAttributeValue(request.link.kind, request.link.requestId),
    });
    const description = await handle.describe();
    this.runs?.remember(workflowId, description.runId);
    return { request: admitted, workflowId, handle, summary: summarize(description) };
  }

  /** Signs `request` for `workflowId` and starts its workflow (the one start path of agents' and linked requests). */
  private async startWorkflow(
    request: ToolRequest,
    workflowId: string,
    requestHash: string,
    options: { memo: Record<string, unknown>; conflict: 'USE_EXISTING' | 'FAIL'; link?: string },
  ): Promise<WorkflowHandle> {
    const start: ToolRequestStart = { request, admission: await this.signer.sign(request, workflowId, { requestDigest: requestHash }) };
    const who = request.link ? `${request.actor.id} (${request.link.kind} of ${request.link.requestId})` : request.actor.id;
    return this.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: this.taskQueue,
      workflowId,
      args: [start],
      workflowIdConflictPolicy: options.conflict,
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      memo: options.memo,
      // What ops read in the Temporal UI's list and details: who asked for which tool. Never the
      // arguments or the reason, which may carry secrets (they stay in the encrypted input).
      staticSummary: `${request.tool} · ${request.tenant} · ${who}`,
      staticDetails: [
        `**Tool** ${request.tool}`,
        `**Tenant** ${request.tenant} (${request.environment})`,
        `**${request.actor.type === 'agent' ? 'Agent' : 'Actor'}** ${request.actor.id}${request.onBehalfOf?.length ? ` on behalf of ${request.onBehalfOf.map((p) => p.id).join(', ')}` : ''}`,
        `**Request** ${request.requestId}`,
        ...(request.link
          ? [`**${request.link.kind === 'override' ? 'Overrides' : 'Rolls back'}** ${request.link.requestId} (asked by ${request.link.by.id})`]
          : []),
      ].join('\n\n'),
      typedSearchAttributes: [
        { key: searchAttributes.tool, value: request.tool },
        { key: searchAttributes.tenant, value: request.tenant },
        { key: searchAttributes.actor, value: request.actor.id },
        { key: searchAttributes.status, value: 'evaluating' },
        ...(options.link ? [{ key: searchAttributes.link, value: options.link }] : []),
      ],
    });
  }

  /**
   * The request `requestId` of this agent, or undefined when there is none — another agent's or
   * another tenant's request (or this actor's in another environment, or for someone else) is
   * indistinguishable from one that does not exist. Answered from the server's view (search
   * attributes and memo), so it needs no worker.
   */
  async find(agent: AgentIdentity, requestId: string): Promise<({ handle: WorkflowHandle; runId: string } & RequestSummary) | undefined> {
    const handle = this.client.workflow.getHandle(workflowIdFor(agent.tenant, requestId));
    let description;
    try {
      description = await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
    const attributes = description.typedSearchAttributes;
    if (attributes.get(searchAttributes.actor) !== agent.id || attributes.get(searchAttributes.tenant) !== agent.tenant) return undefined;
    // The same actor id in another environment, or acting for someone else, is another identity.
    if (description.memo?.agent !== agentDigest(agent)) return undefined;
    return { handle, runId: description.runId, ...summarize(description) };
  }
}

/** The identity a request was admitted under, beyond actor and tenant: environment and the on-behalf-of chain. */
function agentDigest(agent: AgentIdentity): string {
  return canonicalSha256({ id: agent.id, tenant: agent.tenant, environment: agent.environment, onBehalfOf: agent.onBehalfOf ?? [] });
}

function summarize(description: WorkflowExecutionDescription): RequestSummary {
  const attributes = description.typedSearchAttributes;
  const state = attributes.get(searchAttributes.status);
  const tool = attributes.get(searchAttributes.tool);
  return { running: description.status.name === 'RUNNING', ...(state ? { state } : {}), ...(tool ? { tool } : {}) };
}
