/**
 * What every framework adapter shares: a stable request id from the framework's tool-call id, and
 * one way to run a request through the gateway that turns every outcome — result, denial,
 * rejection, expiry, a person still deciding — into something to hand back to the model.
 *
 * Adapters are agent-side code: they reach toolgate only through the front door with the agent's
 * credential (a `ToolGateway`). Who the agent is — actor, roles, tenant, environment, on whose
 * behalf — comes from that credential; a request built here names only the tool, its arguments,
 * and optionally a request id and a reason.
 */
import { createHash } from 'node:crypto';
import { GatewayRequestError, ToolGatewayError, unwrapOutcome, type ToolResultForModel } from '../client/errors.js';
import type { ToolCallInput, ToolGateway, ToolRequestHandle } from '../client/gateway.js';
import { IDENTIFIER_PATTERN, type AgentRequestView, type RequestState, type ToolOutcome } from '../shared/index.js';

/** Options every adapter takes. Identity is not among them: it is the gateway's token. */
export interface AdapterOptions {
  /** The agent's client of the front door; its token says who the agent is. */
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
   * @default the agent id of the gateway's token (`gateway.identity()`)
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
  /** Stops waiting for people (the request carries on; a pending result names it). */
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

/** The scope of derived request ids: the configured one, else the agent id the token names. */
export async function scopeOf(options: Pick<AdapterOptions, 'gateway' | 'scope'>): Promise<string> {
  return options.scope ?? (await options.gateway.identity()).id;
}

/** Builds the front-door request of one tool call: the tool, its arguments, an optional id and reason — nothing about who asks. */
export function toolRequest(options: Pick<AdapterOptions, 'toolName' | 'reason'>, tool: string, args: unknown, requestId?: string): ToolCallInput {
  return {
    ...(requestId !== undefined && { requestId }),
    tool: options.toolName?.(tool) ?? tool,
    args: (args ?? {}) as Record<string, unknown>,
    ...(options.reason !== undefined && { reason: options.reason }),
  };
}

/** The pending-approval result of a request that waits for people. */
export function pendingResult(requestId: string, tool: string, status?: Pick<AgentRequestView, 'expiresAt' | 'eligibleGroups'>): PendingApprovalResult {
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

/** Resolves with the promise's value, or with undefined as soon as `signal` aborts. */
function unlessAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T | undefined> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => {
      // The read still finishes (within its wait); its answer is no longer needed.
      promise.catch(() => undefined);
      resolve(undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Waits for a started request: its outcome, or — once it has waited `wait` ms for approval, or
 * `signal` aborts — a pending result. Policy evaluation and execution are always waited for.
 * Waiting long-polls the front door (`GET /v1/tool-requests/:id?wait=…`), so an outcome arrives
 * as soon as there is one and nothing keeps polling after this returns.
 */
export async function awaitRequest(gateway: ToolGateway, handle: ToolRequestHandle, tool: string, options: RunOptions = {}): Promise<CallResult> {
  const wait = options.wait ?? Number.POSITIVE_INFINITY;
  const every = options.progressEveryMs ?? 1000;
  const longest = gateway.pollSeconds * 1000;
  const started = Date.now();
  let view: AgentRequestView = await handle.status();
  for (;;) {
    if (view.outcome) return fromOutcome(view.outcome);
    const elapsed = Date.now() - started;
    const waitedOut = elapsed >= wait || options.signal?.aborted === true;
    if (waitedOut && view.state === 'pending_approval') return { kind: 'pending', toolResult: pendingResult(handle.requestId, view.tool ?? tool, view) };
    // A long poll returns early only with an outcome; a request that turns pending must still be
    // seen soon once the wait is used up, hence short polls then. Without progress to report,
    // one long poll can cover the whole wait.
    const budget = waitedOut ? Math.min(every, 250) : Math.min(options.onProgress ? every : longest, wait - elapsed, longest);
    const read = gateway.read(handle.requestId, Math.max(0, budget) / 1000);
    // Evaluating or executing after an abort: the request is moments from an outcome; give it that moment.
    const next = waitedOut ? await read : await unlessAborted(read, options.signal);
    if (next) view = next;
    if (!view.outcome && options.onProgress) await options.onProgress({ requestId: handle.requestId, state: view.state, elapsedMs: Date.now() - started });
  }
}

/**
 * Submits a request and waits as `awaitRequest` does. Tool outcomes and the refusals a model can
 * act on (`ToolGatewayError`) become results for the model; a refusal of the credential or the
 * call itself (`GatewayRequestError`: 401, identity mismatch, unreachable) propagates as an error.
 */
export async function runRequest(gateway: ToolGateway, request: ToolCallInput, options: RunOptions = {}): Promise<CallResult> {
  try {
    const handle = await gateway.start(request);
    return await awaitRequest(gateway, handle, request.tool, options);
  } catch (err) {
    if (err instanceof ToolGatewayError) return { kind: 'refused', toolResult: err.toToolResult(), ...(err.outcome && { outcome: err.outcome }) };
    throw err;
  }
}

/**
 * Checks a request an adapter left pending: its outcome if it has one (waiting up to `wait` ms
 * for people), or a pending result. The front door shows an agent only its own requests, so a
 * request of another agent or tenant (a 404) answers, as a result for the model, that this agent
 * has no such request.
 */
export async function checkRequest(gateway: ToolGateway, requestId: string, options: RunOptions = {}): Promise<CallResult> {
  const notYours: CallResult = {
    kind: 'refused',
    toolResult: { ok: false, status: 'invalid_request', requestId, message: `no request ${requestId} of this agent exists` },
  };
  if (!IDENTIFIER_PATTERN.test(requestId)) return notYours;
  const handle = await gateway.get(requestId);
  let status: AgentRequestView;
  try {
    status = await handle.status();
  } catch (err) {
    if (err instanceof GatewayRequestError && err.status === 404) return notYours;
    throw err;
  }
  return awaitRequest(gateway, handle, status.tool ?? status.outcome?.tool ?? 'the tool', { ...options, wait: options.wait ?? 0 });
}

/** The value to hand the model: the tool's result, or the refusal or pending result. */
export function resultForModel(call: CallResult): unknown {
  return call.kind === 'completed' ? call.result : call.toolResult;
}

function fromOutcome(outcome: ToolOutcome): CallResult {
  if (outcome.status === 'completed' && !outcome.withheld) return { kind: 'completed', result: outcome.result, outcome };
  try {
    unwrapOutcome(outcome);
  } catch (err) {
    if (err instanceof ToolGatewayError) return { kind: 'refused', toolResult: err.toToolResult(), outcome };
    throw err;
  }
  throw new Error(`unexpected outcome status ${(outcome as { status: string }).status}`);
}
