/**
 * The client SDK agents use: `gateway.call(request)` waits for the outcome, `gateway.start(request)`
 * returns a handle for agents that do not block. Each request is one Temporal workflow whose id
 * derives from `requestId`, so submitting the same request twice attaches to the same workflow.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { canonicalDigest } from '../approvals/digest.js';
import {
  TASK_QUEUE,
  ToolRequestInputSchema,
  WORKFLOW_TYPE,
  formatIssues,
  searchAttributes,
  statusQuery,
  workflowIdFor,
  type RequestStatus,
  type ToolOutcome,
  type ToolRequest,
  type ToolRequestInput,
} from '../shared/index.js';
import { InvalidToolRequest, RequestConflict, unwrapOutcome } from './errors.js';

/** Options of a gateway client. */
export interface ToolGatewayOptions {
  /** An existing Temporal client; otherwise one is created from `address`. */
  client?: Client;
  /** Temporal frontend address. @default process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' */
  address?: string;
  /** @default 'default' */
  namespace?: string;
  /** @default TASK_QUEUE */
  taskQueue?: string;
  /**
   * How payloads are encoded when this gateway creates its client: the workers' converter, e.g.
   * `dataConverterFor(await loadKeyring())` when history is encrypted. Ignored with `client`.
   * @default Temporal's (clear JSON)
   */
  dataConverter?: DataConverter;
}

/** A request in flight. */
export class ToolRequestHandle {
  constructor(
    /** The request's id (its idempotency key). */
    readonly requestId: string,
    private readonly workflow: WorkflowHandle,
  ) {}

  /** The Temporal workflow id of this request. */
  get workflowId(): string {
    return this.workflow.workflowId;
  }

  /**
   * What the server knows without asking a worker: whether the request is still running and its
   * search attributes (state, tenant, tool). Cheap, and answers even when no worker is free.
   */
  async summary(): Promise<{ running: boolean; state?: string; tenant?: string; tool?: string }> {
    const description = await this.workflow.describe();
    const attributes = description.typedSearchAttributes;
    return {
      running: description.status.name === 'RUNNING',
      state: attributes.get(searchAttributes.status),
      tenant: attributes.get(searchAttributes.tenant),
      tool: attributes.get(searchAttributes.tool),
    };
  }

  /** Where the request stands now. */
  async status(): Promise<RequestStatus> {
    return this.workflow.query(statusQuery);
  }

  /** Waits for the outcome, whatever it is. */
  async outcome(): Promise<ToolOutcome> {
    return (await this.workflow.result()) as ToolOutcome;
  }

  /** Waits for the tool's result; throws `ToolDenied`, `ApprovalRejected`, `ApprovalExpired` or `ToolExecutionFailed` otherwise. */
  async result(): Promise<unknown> {
    return unwrapOutcome(await this.outcome());
  }
}

/** The entry point of agent runtimes into toolgate. */
export class ToolGateway {
  private clientPromise?: Promise<Client>;
  private ownedConnection?: Connection;
  private readonly taskQueue: string;

  constructor(private readonly options: ToolGatewayOptions = {}) {
    this.taskQueue = options.taskQueue ?? TASK_QUEUE;
  }

  /** Validates a request and fixes its `requestId`; throws `InvalidToolRequest` naming each bad field. */
  static validate(input: unknown): ToolRequest {
    const parsed = ToolRequestInputSchema.safeParse(input);
    if (!parsed.success) throw new InvalidToolRequest(formatIssues(parsed.error));
    return { ...parsed.data, requestId: parsed.data.requestId ?? randomUUID() };
  }

  /** Submits a request and waits for the tool's result (see `ToolRequestHandle.result`). */
  async call(input: ToolRequestInput): Promise<unknown> {
    return (await this.start(input)).result();
  }

  /**
   * Submits a request without waiting. The same `requestId` attaches to the existing request;
   * reusing it for a different request throws `RequestConflict`.
   */
  async start(input: ToolRequestInput): Promise<ToolRequestHandle> {
    const request = ToolGateway.validate(input);
    const client = await this.client();
    const workflowId = workflowIdFor(request.requestId);
    const requestHash = canonicalDigest(request);
    let handle: WorkflowHandle;
    try {
      handle = await client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: this.taskQueue,
        workflowId,
        args: [request],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        memo: { requestHash },
        typedSearchAttributes: [
          { key: searchAttributes.tool, value: request.tool },
          { key: searchAttributes.tenant, value: request.tenant },
          { key: searchAttributes.actor, value: request.actor.id },
          { key: searchAttributes.status, value: 'evaluating' },
        ],
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      handle = client.workflow.getHandle(workflowId);
    }
    const description = await handle.describe();
    if (description.memo?.requestHash !== requestHash) throw new RequestConflict(request.requestId);
    return new ToolRequestHandle(request.requestId, handle);
  }

  /** A handle on an existing request by id. */
  async get(requestId: string): Promise<ToolRequestHandle> {
    const client = await this.client();
    return new ToolRequestHandle(requestId, client.workflow.getHandle(workflowIdFor(requestId)));
  }

  /** Closes the connection this gateway opened (not one passed in). */
  async close(): Promise<void> {
    await this.ownedConnection?.close();
  }

  private async client(): Promise<Client> {
    this.clientPromise ??= (async () => {
      if (this.options.client) return this.options.client;
      this.ownedConnection = await Connection.connect({
        address: this.options.address ?? process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
      });
      return new Client({
        connection: this.ownedConnection,
        namespace: this.options.namespace ?? 'default',
        ...(this.options.dataConverter && { dataConverter: this.options.dataConverter }),
      });
    })();
    return this.clientPromise;
  }
}
