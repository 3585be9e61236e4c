/**
 * The client SDK agents use. It speaks to toolgate's front door — the agent API — with the
 * agent's credential and nothing else: no Temporal connection, no codec key, no signing key. Who
 * the agent is (actor, roles, tenant, environment) comes from that credential.
 *
 * `gateway.call(request)` waits for the outcome and returns the tool's result or throws a typed
 * error; `gateway.start(request)` returns a handle for agents that do not block. The same
 * `requestId` twice is one request.
 */
import { hasSubscribers } from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import { context, propagation } from '@opentelemetry/api';
import type { AgentRequestView, ToolOutcome } from '../shared/index.js';
import { jsonBodyOf } from '../shared/json-body.js';
import type { ToolCallFields } from '../shared/tool-call.js';
import { GatewayRequestError, InvalidToolRequest, RequestConflict, ToolNotGranted, unwrapOutcome } from './errors.js';

/** Options of a gateway client. */
export interface ToolGatewayOptions {
  /** Base URL of the toolgate API (the front door). @default process.env.TOOLGATE_URL ?? 'http://127.0.0.1:8787' */
  url?: string;
  /** The agent token (`toolgate token issue --agent`, or your identity provider's). @default process.env.TOOLGATE_AGENT_TOKEN */
  token?: string;
  /** The HTTP client. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** How long one long-poll asks the API to wait, in seconds (the API allows up to 60). @default 55 */
  pollSeconds?: number;
}

/** What an agent sends: the tool, its arguments, and optionally a request id, a reason, a trace id and provenance. */
export type ToolCallInput = ToolCallFields;

/**
 * The end user's answer to a request waiting under a plan that accepts their confirmation
 * (`AgentRequestView.endUserConfirmation`): `confirm`, `decline`, or `adjust` with new arguments.
 * `digest` is the one the end user was shown; the answer counts only for that proposal.
 */
export interface ConfirmInput {
  decision: 'confirm' | 'decline' | 'adjust';
  digest: string;
  /** The end user's words, kept in the record. */
  reason?: string;
  /** The adjusted arguments, with `adjust` only. */
  args?: Record<string, unknown>;
}

/** Front-door answers a confirmation may be sent again after: the decision was certainly not taken. */
const CONFIRMATION_RETRYABLE = new Set(['busy', 'decision_not_verified']);

/** The agent a token identifies, as the front door reads it. */
export interface AgentIdentityView {
  id: string;
  type: 'agent';
  tenant: string;
  environment: string;
  roles: string[];
  onBehalfOf?: { id: string; type: string }[];
  tools?: string[];
}

/** A request in flight. */
export class ToolRequestHandle {
  constructor(
    /** The request's id (its idempotency key). */
    readonly requestId: string,
    private readonly gateway: ToolGateway,
    private last?: AgentRequestView,
  ) {}

  /** Where the request stands now (and its outcome, once it has one). */
  async status(): Promise<AgentRequestView> {
    if (this.last?.outcome) return this.last;
    this.last = await this.gateway.read(this.requestId, 0);
    return this.last;
  }

  /** Waits for the outcome, whatever it is (long-polling the front door). */
  async outcome(): Promise<ToolOutcome> {
    for (;;) {
      if (this.last?.outcome) return this.last.outcome;
      this.last = await this.gateway.read(this.requestId, this.gateway.pollSeconds);
    }
  }

  /**
   * Relays the end user's answer (their confirmation in the conversation) to a request waiting
   * under a plan that accepts it, and returns where the request stands then. The gateway signs it
   * as the request's end user (the token's first on-behalf-of principal). Refusals throw
   * `GatewayRequestError` with the API's status and code: 403 `no_end_user` (the token acts for
   * nobody) or `not_eligible` (the plan does not accept the end user), 409 `digest_mismatch` (the
   * request changed since it was shown), `not_pending`, `duplicate_vote`, `edit_limit`, 400
   * `invalid_body` (fields named), 404 `not_found`.
   */
  async confirm(input: ConfirmInput): Promise<AgentRequestView> {
    const view = await this.gateway.confirmRequest(this.requestId, input);
    this.last = view;
    return view;
  }

  /** Waits for the tool's result; throws `ToolDenied`, `ApprovalRejected`, `ApprovalExpired` or `ToolExecutionFailed` otherwise. */
  async result(): Promise<unknown> {
    return unwrapOutcome(await this.outcome());
  }
}

/** The entry point of agent runtimes into toolgate. */
export class ToolGateway {
  private readonly url: string;
  private readonly token: string;
  private readonly fetchImpl: typeof globalThis.fetch;
  private identityPromise?: Promise<AgentIdentityView>;
  /** @internal */
  readonly pollSeconds: number;

  constructor(options: ToolGatewayOptions = {}) {
    this.url = (options.url ?? process.env.TOOLGATE_URL ?? 'http://127.0.0.1:8787').replace(/\/+$/, '');
    const token = options.token ?? process.env.TOOLGATE_AGENT_TOKEN;
    if (!token)
      throw new TypeError('ToolGateway needs an agent token: pass { token } or set TOOLGATE_AGENT_TOKEN (mint one with `toolgate token issue --agent`)');
    this.token = token;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.pollSeconds = Math.min(60, Math.max(1, options.pollSeconds ?? 55));
  }

  /** Submits a request and waits for the tool's result (see `ToolRequestHandle.result`). */
  async call(input: ToolCallInput): Promise<unknown> {
    return (await this.submit(input, this.pollSeconds)).result();
  }

  /**
   * Submits a request without waiting for people. The same `requestId` attaches to the existing
   * request; reusing it for a different request throws `RequestConflict`.
   */
  async start(input: ToolCallInput): Promise<ToolRequestHandle> {
    return this.submit(input, 0);
  }

  /** A handle on one of this agent's requests by id (another agent's reads as not found). */
  async get(requestId: string): Promise<ToolRequestHandle> {
    return new ToolRequestHandle(requestId, this);
  }

  /** Who the token says this agent is: actor, roles, tenant, environment. */
  async identity(): Promise<AgentIdentityView> {
    this.identityPromise ??= this.send<AgentIdentityView>('GET', '/v1/agent').then(({ body }) => body);
    this.identityPromise.catch(() => {
      this.identityPromise = undefined;
    });
    return this.identityPromise;
  }

  /** Nothing to close: the HTTP client keeps no connection of its own. Kept for callers that close clients. */
  async close(): Promise<void> {}

  /** @internal Reads a request, waiting up to `waitSeconds` for its outcome. */
  async read(requestId: string, waitSeconds: number): Promise<AgentRequestView> {
    const { body } = await this.send<AgentRequestView>('GET', `/v1/tool-requests/${encodeURIComponent(requestId)}?wait=${waitSeconds}`);
    return body;
  }

  /** @internal Relays an end user's answer to one of this agent's requests (see `ToolRequestHandle.confirm`). */
  async confirmRequest(requestId: string, input: ConfirmInput): Promise<AgentRequestView> {
    const { body } = await this.send<AgentRequestView>('POST', `/v1/tool-requests/${encodeURIComponent(requestId)}/confirmation`, input, {
      // Not the tool call's typed errors: every refusal is the API's status and code.
      plainErrors: true,
      // A decision is not idempotent: sent again after a lost answer, it could be refused as a duplicate of itself.
      retryOn503: CONFIRMATION_RETRYABLE,
      retryUnreachable: false,
    });
    return body;
  }

  private async submit(input: ToolCallInput, waitSeconds: number): Promise<ToolRequestHandle> {
    if (input === null || typeof input !== 'object') throw new InvalidToolRequest(['(root): the request must be an object']);
    const { body } = await this.send<AgentRequestView>('POST', '/v1/tool-requests', { ...input, wait: waitSeconds });
    return new ToolRequestHandle(body.requestId, this, body);
  }

  private async send<T>(
    method: string,
    path: string,
    json?: unknown,
    options: { plainErrors?: boolean; retryOn503?: ReadonlySet<string>; retryUnreachable?: boolean } = {},
  ): Promise<{ status: number; body: T }> {
    for (let attempt = 1; ; attempt += 1) {
      let response: Response;
      try {
        response = await this.fetchImpl(`${this.url}${path}`, {
          method,
          headers: { ...traceHeaders(), authorization: `Bearer ${this.token}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(json === undefined ? {} : { body: JSON.stringify(json) }),
        });
      } catch (err) {
        // The request is idempotent by its id only when the caller gave one; GETs are always safe.
        const safe = options.retryUnreachable ?? (method === 'GET' || (json as { requestId?: string } | undefined)?.requestId !== undefined);
        if (safe && attempt < 4) {
          await sleep(250 * attempt);
          continue;
        }
        throw new GatewayRequestError(0, 'unreachable', `toolgate at ${this.url} could not be reached: ${(err as Error).message}`, { cause: err });
      }
      const body = await jsonBodyOf(response);
      if (response.ok) return { status: response.status, body: body as T };
      const error = (body as { error?: { code?: string; message?: string; fields?: string[] } } | undefined)?.error ?? {};
      const code = error.code ?? 'http_error';
      const message = error.message ?? `toolgate answered ${response.status}`;
      if (response.status === 503 && attempt < 4 && (options.retryOn503 === undefined || options.retryOn503.has(code))) {
        await sleep(Math.min(5, Number(response.headers.get('retry-after') ?? 1)) * 1000);
        continue;
      }
      if (options.plainErrors) throw new GatewayRequestError(response.status, code, message, { fields: error.fields });
      if (response.status === 400 && code === 'invalid_body') throw new InvalidToolRequest(message.split('; '));
      if (response.status === 409 && code === 'conflict') throw new RequestConflict((json as { requestId?: string } | undefined)?.requestId ?? '');
      if (response.status === 403 && code === 'tool_not_granted') throw new ToolNotGranted((json as { tool?: string } | undefined)?.tool ?? '', message);
      throw new GatewayRequestError(response.status, code, message, { fields: error.fields });
    }
  }
}

/**
 * The W3C trace context (`traceparent`, `tracestate`) of the caller's active OpenTelemetry context,
 * so the gateway's spans continue the agent's trace. Only `@opentelemetry/api`: without an OTel SDK
 * in the agent's process there is no propagator and this is empty.
 */
function traceHeaders(): Record<string, string> {
  // An instrumented fetch (OpenTelemetry's undici instrumentation listens on undici's request
  // channel) sends the context itself, as a child of its client span: a second `traceparent`
  // would make the header unreadable and the gateway would start a new trace.
  if (hasSubscribers('undici:request:create')) return {};
  const headers: Record<string, string> = {};
  propagation.inject(context.active(), headers);
  return headers;
}
