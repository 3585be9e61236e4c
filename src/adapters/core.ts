/**
 * What every framework adapter shares: a stable request id from the framework's tool-call id, and
 * one way to run a request through the gateway that turns every outcome — result, denial,
 * rejection, expiry, a person still deciding — into something to hand back to the model.
 */
import { createHash } from 'node:crypto';
import { ToolGatewayError, unwrapOutcome, type ToolResultForModel } from '../client/errors.js';
import type { ToolGateway, ToolRequestHandle } from '../client/gateway.js';
import { IDENTIFIER_PATTERN, type Actor, type RequestState, type ToolOutcome, type ToolRequestInput } from '../shared/index.js';

/** Who calls tools through an adapter, and where. */
export interface AdapterIdentity {
  actor: Actor | { id: string; type: Actor['type']; roles?: string[] };
  tenant: string;
  environment: string;
  /** The principals the actor acts for (e.g. the user behind the agent). */
  onBehalfOf?: ToolRequestInput['onBehalfOf'];
}

/** Options every adapter takes. */
export interface AdapterOptions extends AdapterIdentity {
  gateway: ToolGateway;
  /**
   * How long to wait, in ms, for people to decide a request that needs approval. When the limit
   * passes the adapter returns a `pending_approval` result with the request id instead. `0`
   * returns at once when approval is needed; it never cuts short policy evaluation or execution.
   * @default Infinity
   */
  wait?: number;
  /**
   * Scopes request ids derived from tool-call ids (use the conversation or session id), so that
   * ids reused by a model in different conversations never collide.
   * @default the actor id
   */
  scope?: string;
  /** Maps a framework tool name to the toolgate tool name. @default the same name */
  toolName?: (frameworkName: string) => string;
  /** A reason shown to approvers and kept in the record. */
  reason?: string;
}

/** The result an adapter hands to the model while a person has not decided yet. */
export interface PendingApprovalResult {
  ok: false;
  status: 'pending_approval';
  requestId: string;
  tool: string;
  message: string;
  expiresAt?: string;
  eligibleGroups?: string[];
}

/** Everything a model can get back from a tool call through an adapter. */
export type AdapterToolResult = unknown;

/** Progress reported while a request waits (for MCP progress notifications, logs, UIs). */
export interface WaitProgress {
  requestId: string;
  state: RequestState;
  elapsedMs: number;
}

/** How one call is run. */
export interface RunOptions {
  /** @see AdapterOptions.wait */
  wait?: number;
  /** Called about every `progressEveryMs` while the request is not finished. */
  onProgress?: (progress: WaitProgress) => void | Promise<void>;
  /** @default 1000 */
  progressEveryMs?: number;
  /** Stops waiting (the request carries on; a pending result names it). */
  signal?: AbortSignal;
}

/** A finished call: the tool's result, or a result for the model that says what happened. */
export type CallResult =
  | { kind: 'completed'; result: unknown; outcome: ToolOutcome }
  | { kind: 'refused'; toolResult: ToolResultForModel; outcome?: ToolOutcome }
  | { kind: 'pending'; toolResult: PendingApprovalResult };

/**
 * A request id derived from a framework tool-call id: the same call retried is the same request.
 * Readable (`<scope>:<callId>`) when that is a valid id, otherwise a SHA-256-derived one.
 */
export function requestIdForToolCall(scope: string, toolCallId: string): string {
  const readable = `${scope}:${toolCallId}`;
  if (IDENTIFIER_PATTERN.test(readable)) return readable;
  return `tc:${createHash('sha256').update(readable).digest('hex').slice(0, 48)}`;
}

/** Builds the gateway request of one tool call. */
export function toolRequest(options: AdapterIdentity & Pick<AdapterOptions, 'toolName' | 'reason'>, tool: string, args: unknown, requestId?: string): ToolRequestInput {
  const actor = { ...options.actor, roles: options.actor.roles ?? [] };
  return {
    ...(requestId !== undefined && { requestId }),
    actor,
    tenant: options.tenant,
    environment: options.environment,
    tool: options.toolName?.(tool) ?? tool,
    args: (args ?? {}) as Record<string, unknown>,
    ...(options.onBehalfOf && { onBehalfOf: options.onBehalfOf }),
    ...(options.reason !== undefined && { reason: options.reason }),
  };
}

/** The pending-approval result of a request that waits for people. */
export function pendingResult(requestId: string, tool: string, status?: { expiresAt?: string; eligibleGroups?: string[] }): PendingApprovalResult {
  return {
    ok: false,
    status: 'pending_approval',
    requestId,
    tool,
    message:
      `${tool} needs a human approval and has not been decided yet; it has not run. ` +
      `Do not call it again: check request ${requestId} later, or tell the user it is waiting for approval.`,
    ...(status?.expiresAt !== undefined && { expiresAt: status.expiresAt }),
    ...(status?.eligibleGroups !== undefined && { eligibleGroups: status.eligibleGroups }),
  };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Waits for a started request: its outcome, or — once it has waited `wait` ms for approval, or
 * `signal` aborts — a pending result. Policy evaluation and execution are always waited for.
 */
export async function awaitRequest(handle: ToolRequestHandle, tool: string, options: RunOptions = {}): Promise<CallResult> {
  const wait = options.wait ?? Number.POSITIVE_INFINITY;
  const every = options.progressEveryMs ?? 1000;
  const started = Date.now();
  const outcome = handle.outcome().then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  for (;;) {
    const elapsed = Date.now() - started;
    // Until the wait is used up, wake at its end; after it, only poll (execution is still awaited).
    const budget = elapsed < wait ? Math.min(every, wait - elapsed) : Math.min(every, 250);
    const settled = await Promise.race([outcome, sleep(budget, options.signal).then(() => undefined)]);
    if (settled) {
      if ('error' in settled) throw settled.error;
      return fromOutcome(settled.value);
    }
    const status = await handle.status();
    if (options.onProgress) await options.onProgress({ requestId: handle.requestId, state: status.state, elapsedMs: Date.now() - started });
    const waitedOut = Date.now() - started >= wait || options.signal?.aborted === true;
    if (waitedOut && status.state === 'pending_approval') return { kind: 'pending', toolResult: pendingResult(handle.requestId, tool, status) };
    if (options.signal?.aborted) {
      // Evaluating or executing: the request is moments from an outcome; give it that moment.
      const value = await outcome;
      if ('error' in value) throw value.error;
      return fromOutcome(value.value);
    }
  }
}

/** Submits a request and waits as `awaitRequest` does; gateway errors become results for the model. */
export async function runRequest(gateway: ToolGateway, request: ToolRequestInput, options: RunOptions = {}): Promise<CallResult> {
  try {
    const handle = await gateway.start(request);
    return await awaitRequest(handle, request.tool, options);
  } catch (err) {
    if (err instanceof ToolGatewayError) return { kind: 'refused', toolResult: err.toToolResult(), ...(err.outcome && { outcome: err.outcome }) };
    throw err;
  }
}

/**
 * Checks a request an adapter left pending: its outcome if it has one (waiting up to `wait` ms
 * for people), or a pending result. Refuses (as a result for the model) a request of another tenant or actor.
 */
export async function checkRequest(gateway: ToolGateway, requestId: string, identity: AdapterIdentity, options: RunOptions = {}): Promise<CallResult> {
  const notYours: CallResult = {
    kind: 'refused',
    toolResult: { ok: false, status: 'invalid_request', requestId, message: `no request ${requestId} of this agent exists` },
  };
  if (!IDENTIFIER_PATTERN.test(requestId)) return notYours;
  const handle = await gateway.get(requestId);
  let status;
  try {
    status = await handle.status();
  } catch {
    return notYours;
  }
  if (status.tenant !== identity.tenant || status.actor.id !== identity.actor.id) return notYours;
  return awaitRequest(handle, status.tool, { ...options, wait: options.wait ?? 0 });
}

/** The value to hand the model: the tool's result, or the refusal or pending result. */
export function resultForModel(call: CallResult): unknown {
  return call.kind === 'completed' ? call.result : call.toolResult;
}

function fromOutcome(outcome: ToolOutcome): CallResult {
  if (outcome.status === 'completed') return { kind: 'completed', result: outcome.result, outcome };
  try {
    unwrapOutcome(outcome);
  } catch (err) {
    if (err instanceof ToolGatewayError) return { kind: 'refused', toolResult: err.toToolResult(), outcome };
    throw err;
  }
  throw new Error(`unexpected outcome status ${(outcome as { status: string }).status}`);
}
